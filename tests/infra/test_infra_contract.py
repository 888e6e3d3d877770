"""The Terraform in infra/ against the code: functions, triggers, env, IAM, Firestore indexes.

Static (python-hcl2, no providers, no network). python-hcl2 8 keeps string literals with
their quotes (`'"x"'`) and expressions as `'${...}'`; blocks are lists of dicts.
"""

import ast
import re
from pathlib import Path

import hcl2
import pytest

from shared.core.config import ENV_BY_FUNCTION

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SHARED = ROOT / "shared"
FUNCTIONS = ("passthrough", "on_job_event", "on_output_finalized")
SECRET_ENV = {"VBG_MASTER_KEY", "VBG_ALERT_WEBHOOK_SECRET"}
OPTIONAL_ENV = {"VBG_ALERT_WEBHOOK_URL", "VBG_ALERT_WEBHOOK_SECRET"}
FINALIZED = "google.cloud.storage.object.v1.finalized"

# (target, role) per principal; exactly these, nothing more.
EXPECTED_ROLES = {
    "passthrough": {
        ("project", "roles/aiplatform.user"),
        ("project", "roles/datastore.user"),
        ("topic:events", "roles/pubsub.publisher"),
        ("secret:master_key", "roles/secretmanager.secretAccessor"),
        ("bucket:inputs", "roles/storage.objectViewer"),
        ("bucket:staging", "roles/storage.objectAdmin"),
    },
    "on_job_event": {
        ("project", "roles/aiplatform.user"),
        ("project", "roles/datastore.user"),
        ("topic:alerts", "roles/pubsub.publisher"),
        ("topic:cost_records", "roles/pubsub.publisher"),
        ("topic:events", "roles/pubsub.publisher"),  # a run's events (shared/runs/drive.py)
        ("bucket:outputs", "roles/storage.objectUser"),
        ("bucket:staging", "roles/storage.objectUser"),  # a run's merge buckets
        ("secret:alert_webhook_secret", "roles/secretmanager.secretAccessor"),
        ("project", "roles/bigquery.jobUser"),
        ("bq_dataset:books", "roles/bigquery.dataViewer"),
        ("bq_table:billing_export", "roles/bigquery.dataViewer"),
    },
    "on_output_finalized": {
        ("project", "roles/aiplatform.user"),
        ("project", "roles/datastore.user"),
        ("topic:alerts", "roles/pubsub.publisher"),
        ("topic:events", "roles/pubsub.publisher"),
        ("topic:cost_records", "roles/pubsub.publisher"),
        ("bucket:outputs", "roles/storage.objectUser"),
        ("bucket:staging", "roles/storage.objectViewer"),
        ("secret:alert_webhook_secret", "roles/secretmanager.secretAccessor"),
    },
    "trigger": {
        ("project", "roles/eventarc.eventReceiver"),
        ("run:on_job_event", "roles/run.invoker"),
        ("run:on_output_finalized", "roles/run.invoker"),
    },
    "allUsers": {("run:passthrough", "roles/run.invoker")},
    "gcs_agent": {("project", "roles/pubsub.publisher")},
    "pubsub_agent": {
        ("topic:dead_letter", "roles/pubsub.publisher"),
        ("subscription:events_to_on_job_event", "roles/pubsub.subscriber"),
        ("subscription:cost_records_to_bigquery", "roles/pubsub.subscriber"),
        ("sa:trigger", "roles/iam.serviceAccountTokenCreator"),
        ("bq_table:cost_records", "roles/bigquery.dataEditor"),
    },
    "aiplatform_agent": {
        ("bucket:created_outputs", "roles/storage.objectAdmin"),
        ("bucket:staging", "roles/storage.objectViewer"),
        ("bucket:staging", "roles/storage.objectAdmin"),  # outputs/ only: see below
    },
}


# --- reading the HCL ----------------------------------------------------------------------


def unq(value):
    """The literal inside python-hcl2's quotes; expressions (`${...}`) come back as they are."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def expr(value) -> str:
    return value[2:-1] if isinstance(value, str) and value.startswith("${") else str(value)


@pytest.fixture(scope="module")
def tf():
    resources: dict[str, dict[str, dict]] = {}
    data: dict[str, dict[str, dict]] = {}
    local_values: dict = {}
    variables: dict[str, dict] = {}
    for path in sorted(INFRA.glob("*.tf")):
        with open(path, encoding="utf-8") as handle:
            parsed = hcl2.load(handle)
        for section, target in (("resource", resources), ("data", data)):
            for block in parsed.get(section, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        target.setdefault(unq(rtype), {})[unq(name)] = body
        for block in parsed.get("locals", []):
            local_values.update({k: v for k, v in block.items() if not k.startswith("__")})
        for block in parsed.get("variable", []):
            for name, body in block.items():
                variables[unq(name)] = body
    return {"resource": resources, "data": data, "locals": local_values, "variable": variables}


def block(body: dict, name: str) -> dict:
    blocks = body.get(name) or []
    assert len(blocks) == 1, f"expected one {name} block, found {len(blocks)}"
    return blocks[0]


def env_keys(value, local_values: dict, seen: frozenset = frozenset()) -> set[str]:
    """VBG_* names an env expression can set: map keys, object literal keys, via locals."""
    if isinstance(value, dict):
        keys = {k for k in value if k.startswith("VBG_")}
        for item in value.values():
            keys |= env_keys(item, local_values, seen)
        return keys
    if not isinstance(value, str):
        return set()
    keys = set(re.findall(r"\b(VBG_[A-Z0-9_]+)\s*=", value))
    for name in re.findall(r"\blocal\.(\w+)", value):
        if name not in seen and name in local_values:
            keys |= env_keys(local_values[name], local_values, seen | {name})
    return keys


def resolve_local(value, local_values: dict):
    """A literal string, following `local.a.b` references."""
    match = re.fullmatch(r"\$\{local\.([\w.]+)\}", value) if isinstance(value, str) else None
    if not match:
        return unq(value)
    current = local_values
    for part in match.group(1).split("."):
        current = current[part]
    return resolve_local(current, local_values)


# --- functions, entry points, triggers ------------------------------------------------------


def test_three_functions_one_bundle_python312(tf):
    functions = tf["resource"]["google_cloudfunctions2_function"]
    assert set(functions) == set(FUNCTIONS)
    for name, body in functions.items():
        build = block(body, "build_config")
        assert unq(build["entry_point"]) == name
        assert unq(build["runtime"]) == "python312"
        service = block(body, "service_config")
        assert service["min_instance_count"] == 0, f"{name}: nothing may run at rest"
        assert f"google_service_account.{name}.email" in service["service_account_email"]
    source = tf["locals"]["source"]
    assert "google_storage_bucket_object.bundle.name" in source["object"]
    bundle = tf["resource"]["google_storage_bucket_object"]["bundle"]
    assert "filesha256(local.bundle_zip)" in bundle["name"], "bundle must be named by its hash"


def test_entry_points_exist_in_functions_main():
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(FUNCTIONS) <= defined


def test_passthrough_is_http_and_the_others_are_internal(tf):
    functions = tf["resource"]["google_cloudfunctions2_function"]
    for name, body in functions.items():
        # Triggers are the subscription and the Eventarc triggers below: see pubsub.tf.
        assert "event_trigger" not in body, f"{name}: triggers are managed outside"
        ingress = unq(block(body, "service_config")["ingress_settings"])
        assert ingress == ("ALLOW_ALL" if name == "passthrough" else "ALLOW_INTERNAL_ONLY")


def test_on_job_event_is_pushed_batch_job_events_with_dead_letters(tf):
    topics = tf["resource"]["google_pubsub_topic"]
    names = {key: resolve_local(body["name"], tf["locals"]) for key, body in topics.items()}
    assert names["events"] == "batch-job-events"
    assert names["alerts"] == "batch-job-alerts"
    assert names["dead_letter"] == "batch-job-events-dead-letter"
    pushes = {
        key: body
        for key, body in tf["resource"]["google_pubsub_subscription"].items()
        if "push_config" in body
    }
    assert set(pushes) == {"events_to_on_job_event"}
    sub = pushes["events_to_on_job_event"]
    assert expr(sub["topic"]) == "google_pubsub_topic.events.id"
    push = block(sub, "push_config")
    endpoint = unq(push["push_endpoint"])
    assert endpoint.startswith(
        "${google_cloudfunctions2_function.on_job_event.service_config[0].uri}"
    )
    # functions-framework builds the messagePublished CloudEvent from a path naming the topic.
    assert endpoint.endswith("/projects/${var.project_id}/topics/${local.topics.events}")
    oidc = block(push, "oidc_token")
    assert expr(oidc["service_account_email"]) == "google_service_account.trigger.email"
    dead = block(sub, "dead_letter_policy")
    assert expr(dead["dead_letter_topic"]) == "google_pubsub_topic.dead_letter.id"
    assert dead["max_delivery_attempts"] >= 5
    assert "retry_policy" in sub
    keep = tf["resource"]["google_pubsub_subscription"]["dead_letter_keep"]
    assert expr(keep["topic"]) == "google_pubsub_topic.dead_letter.id"


def test_on_output_finalized_gets_a_trigger_per_watched_bucket_in_its_location(tf):
    triggers = tf["resource"]["google_eventarc_trigger"]
    assert set(triggers) == {"output_finalized"}
    trigger = triggers["output_finalized"]
    assert expr(trigger["for_each"]) == "local.watched_buckets"
    assert expr(trigger["location"]) == "each.value"
    criteria = {unq(c["attribute"]): c["value"] for c in trigger["matching_criteria"]}
    assert unq(criteria["type"]) == FINALIZED
    assert expr(criteria["bucket"]) == "each.key"
    run = block(block(trigger, "destination"), "cloud_run_service")
    assert expr(run["service"]) == "google_cloudfunctions2_function.on_output_finalized.name"
    assert expr(trigger["service_account"]) == "google_service_account.trigger.email"
    outputs = tf["locals"]["output_bucket_locations"]
    assert "var.output_buckets" in outputs and "local.created_output_bucket" in outputs
    assert "lower(b.location)" in outputs
    watched = tf["locals"]["watched_buckets"]
    assert "local.output_bucket_locations" in watched and "local.staging_bucket" in watched


@pytest.mark.parametrize(("resource", "kind"), [("sync", "sync"), ("run_tick", "run.tick")])
def test_scheduler_publishes_sync_and_run_tick_every_minute(tf, resource, kind):
    job = tf["resource"]["google_cloud_scheduler_job"][resource]
    assert expr(job["schedule"]) == "var.sync_schedule"
    assert unq(tf["variable"]["sync_schedule"]["default"]) == "* * * * *"
    target = block(job, "pubsub_target")
    assert expr(target["topic_name"]) == "google_pubsub_topic.events.id"
    assert re.fullmatch(
        r'base64encode\(jsonencode\(\{\s*type\s*=\s*"' + re.escape(kind) + r'"\s*\}\)\)',
        expr(target["data"]),
    )
    assert unq(target["attributes"]["type"]) == kind


# --- environment ---------------------------------------------------------------------------


def function_env(tf, name: str) -> tuple[set[str], set[str]]:
    service = block(tf["resource"]["google_cloudfunctions2_function"][name], "service_config")
    plain = env_keys(service.get("environment_variables", {}), tf["locals"])
    secret = set()
    for item in service.get("secret_environment_variables", []):
        secret.add(unq(item["key"]))
    for dynamic in service.get("dynamic", []):
        for label, body in dynamic.items():
            if unq(label) == "secret_environment_variables":
                secret |= env_keys(body["for_each"], tf["locals"])
    return plain, secret


@pytest.mark.parametrize("name", FUNCTIONS)
def test_env_matches_what_the_code_reads(tf, name):
    plain, secret = function_env(tf, name)
    reads = set(ENV_BY_FUNCTION[name])
    assert not plain & secret, f"{name}: set twice: {sorted(plain & secret)}"
    assert not plain & SECRET_ENV, f"{name}: secrets in plain env: {sorted(plain & SECRET_ENV)}"
    missing = reads - plain - secret
    assert not missing, f"{name} reads {sorted(missing)} but Terraform does not set them"
    extra = (plain | secret) - reads
    assert not extra, f"{name} is given {sorted(extra)} which it does not read"
    assert reads & SECRET_ENV <= secret


def test_env_key_finder_sees_merges_conditionals_and_locals():
    local_values = {
        "common": {"VBG_A": "${var.a}"},
        "env": "${merge(local.common, {VBG_B = var.b}, var.c ? {VBG_C = 1} : {})}",
    }
    assert env_keys("${local.env}", local_values) == {"VBG_A", "VBG_B", "VBG_C"}


# --- IAM -------------------------------------------------------------------------------------


def principal(member: str) -> str:
    if unq(member) == "allUsers":
        return "allUsers"
    if match := re.search(r"google_service_account\.(\w+)\.email", member):
        return match.group(1)
    if "data.google_storage_project_service_account.gcs" in member:
        return "gcs_agent"
    if match := re.search(r"google_project_service_identity\.(\w+)\.", member):
        return f"{match.group(1)}_agent"
    raise AssertionError(f"unknown principal {member}")


# IAM targets named by the resource they reference: kind -> the prefix the tests use.
NAMED_TARGETS = {
    "pubsub_topic": "topic",
    "pubsub_subscription": "subscription",
    "bigquery_table": "bq_table",
    "bigquery_dataset": "bq_dataset",
    "secret_manager_secret": "secret",
    "service_account": "sa",
}


def targets(rtype: str, body: dict) -> list[str]:
    text = " ".join(str(v) for k, v in body.items() if k not in ("member", "role"))
    kind = rtype.removeprefix("google_").removesuffix("_iam_member")
    if kind == "project":
        return ["project"]
    if kind == "bigquery_table" and "local.billing_table_parts" in text:
        return ["bq_table:billing_export"]
    if kind in NAMED_TARGETS:
        return [f"{NAMED_TARGETS[kind]}:" + re.search(rf"google_{kind}\.(\w+)", text).group(1)]
    if kind == "cloud_run_v2_service":
        found = re.findall(r"google_cloudfunctions2_function\.(\w+)\.name", text)
        assert found, f"invoker binding on an unknown service: {text}"
        return [f"run:{name}" for name in found]
    if kind == "storage_bucket":
        if "local.watched_buckets" in text:
            return ["bucket:watched"]
        if "local.output_bucket_locations" in text:
            return ["bucket:outputs"]
        if "var.input_buckets" in text:
            return ["bucket:inputs"]
        if "google_storage_bucket.outputs" in text:
            return ["bucket:created_outputs"]
        if "google_storage_bucket.staging" in text:
            return ["bucket:staging"]
    raise AssertionError(f"unknown IAM target {rtype}: {text}")


def roles(body: dict) -> list[str]:
    role = body["role"]
    if expr(role) == "each.value":
        return re.findall(r'"(roles/[\w.]+)"', body["for_each"])
    return [unq(role)]


def test_each_principal_has_exactly_its_roles(tf):
    granted: dict[str, set] = {}
    for rtype, named in tf["resource"].items():
        if rtype.endswith("_iam_binding") or rtype.endswith("_iam_policy"):
            pytest.fail(f"{rtype}: authoritative IAM would remove others' grants; use members")
        if not rtype.endswith("_iam_member"):
            continue
        for body in named.values():
            who = principal(body["member"])
            for target in targets(rtype, body):
                for role in roles(body):
                    granted.setdefault(who, set()).add((target, role))
    assert granted == EXPECTED_ROLES


def test_public_invoker_only_when_asked(tf):
    public = tf["resource"]["google_cloud_run_v2_service_iam_member"]["public_gateway"]
    assert expr(public["count"]) == "var.public_gateway ? 1 : 0"


# --- variables --------------------------------------------------------------------------------


def test_variables_are_typed_described_and_defaulted(tf):
    for name, body in tf["variable"].items():
        assert "type" in body and unq(body.get("description", "")), name
        if name != "project_id":
            assert "default" in body, f"variable {name} needs a default"
    for name in ("master_key", "alert_webhook_secret"):
        assert tf["variable"][name]["sensitive"] is True


# --- Firestore queries and their indexes ------------------------------------------------------

EQUALITY_OPS = {"==", "in", "array_contains", "array-contains", "array_contains_any"}
EQUALITY_OPS |= {"array-contains-any"}


def _const(node):
    return node.value if isinstance(node, ast.Constant) else None


def _direction(call: ast.Call) -> str:
    for keyword in call.keywords:
        if keyword.arg == "direction":
            text = ast.unparse(keyword.value)
            return "DESCENDING" if "DESC" in text.upper() else "ASCENDING"
    if len(call.args) > 1:
        return "DESCENDING" if "DESC" in ast.unparse(call.args[1]).upper() else "ASCENDING"
    return "ASCENDING"


def _chain(node) -> tuple[list[ast.Call], ast.AST]:
    """Method calls of `a.b(..).c(..)` from the innermost, and the root they hang from."""
    calls = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        calls.append(node)
        node = node.func.value
    calls.reverse()
    return calls, node


EXEC_METHODS = {"stream", "get", "count", "sum", "avg"}


def module_constants(source: str) -> dict[str, str]:
    """Module-level `NAME = "literal"` assignments."""
    constants = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], _const(stmt.value)
            if isinstance(target, ast.Name) and isinstance(value, str):
                constants[target.id] = value
    return constants


class _QueryFinder:
    """Walks statements keeping, per variable, every query it may hold (if/else fork it)."""

    def __init__(self, where: str, constants: dict, modules: dict):
        self.where, self.constants, self.modules = where, constants, modules
        self.found: dict[tuple, dict] = {}

    def text(self, node):
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self.modules.get(node.value.id, {}).get(node.attr)
        return _const(node)

    def filters(self, node) -> list[tuple[str, str]] | None:
        if not isinstance(node, ast.Call):
            return None
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name == "FieldFilter":
            args = [self.text(a) for a in node.args]
            kwargs = {k.arg: self.text(k.value) for k in node.keywords}
            field = args[0] if args else kwargs.get("field_path")
            op = args[1] if len(args) > 1 else kwargs.get("op_string")
            ok = isinstance(field, str) and isinstance(op, str)
            return [(field, op)] if ok else None
        if name == "And" and node.args and isinstance(node.args[0], ast.List | ast.Tuple):
            parts = [self.filters(e) for e in node.args[0].elts]
            return None if any(p is None for p in parts) else [f for p in parts for f in p]
        return None

    def chain(self, node, env) -> tuple[list[dict] | None, bool]:
        calls, root = _chain(node)
        queries = None
        if isinstance(root, ast.Name) and root.id in env:
            queries = [dict(q) for q in env[root.id]]
        executed = False
        for call in calls:
            method = call.func.attr
            executed |= method in EXEC_METHODS
            if method in ("collection", "collection_group") and call.args:
                name = self.text(call.args[-1])
                if isinstance(name, str):
                    group = method == "collection_group"
                    queries = [
                        {
                            "collection": name.rstrip("/").split("/")[-1],
                            "scope": "COLLECTION_GROUP" if group else "COLLECTION",
                            "filters": (),
                            "order": (),
                            "unreadable": False,
                            "where": self.where,
                            "line": call.lineno,
                        }
                    ]
            elif queries is None:
                continue
            elif method == "where":
                fields = None
                for keyword in call.keywords:
                    if keyword.arg == "filter":
                        fields = self.filters(keyword.value)
                if not call.keywords and len(call.args) >= 2:
                    field, op = self.text(call.args[0]), self.text(call.args[1])
                    ok = isinstance(field, str) and isinstance(op, str)
                    fields = [(field, op)] if ok else None
                for q in queries:
                    if fields is None:
                        q["unreadable"] = True
                    else:
                        q["filters"] = q["filters"] + tuple(fields)
            elif method == "order_by" and call.args:
                field = self.text(call.args[0])
                for q in queries:
                    if isinstance(field, str):
                        q["order"] = q["order"] + ((field, _direction(call)),)
                    else:
                        q["unreadable"] = True
        return queries, executed

    def record(self, queries, line):
        for q in queries or []:
            if q["filters"] or q["order"]:
                key = (q["collection"], q["scope"], q["filters"], q["order"], q["unreadable"])
                self.found.setdefault(key, {**q, "line": line})

    def run(self, stmts, env):
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                left, right = dict(env), dict(env)
                self.run(stmt.body, left)
                self.run(stmt.orelse, right)
                for name in set(left) | set(right):
                    both = list(left.get(name, []))
                    both += [q for q in right.get(name, []) if q not in both]
                    env[name] = both
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.run(stmt.body, {})
            elif isinstance(stmt, ast.For | ast.While | ast.With | ast.AsyncFor | ast.AsyncWith):
                # What the loop or with runs first: `for s in q.stream()` runs the query.
                for head in self.heads(stmt):
                    self.statement(ast.Expr(value=head), env)
                self.run(stmt.body + getattr(stmt, "orelse", []), env)
            elif isinstance(stmt, ast.Try):
                handlers = [s for h in stmt.handlers for s in h.body]
                self.run(stmt.body + handlers + stmt.orelse + stmt.finalbody, env)
            else:
                self.statement(stmt, env)

    @staticmethod
    def heads(stmt) -> list:
        if isinstance(stmt, ast.For | ast.AsyncFor):
            return [stmt.iter]
        if isinstance(stmt, ast.While):
            return [stmt.test]
        return [item.context_expr for item in stmt.items]

    def statement(self, stmt, env):
        nodes = [n for n in ast.walk(stmt) if isinstance(n, ast.Call)]
        inner = {id(n.func.value) for n in nodes if isinstance(n.func, ast.Attribute)}
        for call in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
            if id(call) not in inner:
                queries, executed = self.chain(call, env)
                if executed or (isinstance(stmt, ast.Return) and stmt.value is call):
                    self.record(queries, call.lineno)
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                queries, _ = self.chain(stmt.value, env)
                if queries is not None:
                    env[target.id] = queries
                else:
                    env.pop(target.id, None)
        if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name):
            self.record(env.get(stmt.value.id), stmt.lineno)


def find_queries(source: str, where: str = "<code>", modules: dict | None = None) -> list[dict]:
    """Firestore queries that Python source runs: collection, scope, filters, order_by.

    Follows chains (`db.collection("x").where(...).order_by(...)`), queries carried in a
    variable across statements and if/elif/else branches (each path is its own query shape),
    names resolved through module constants (`COLLECTION`, `keys.COLLECTION`). A query counts
    when it is run (`.stream()`, `.get()`, `.count()`) or returned.
    """
    finder = _QueryFinder(where, module_constants(source), modules or {})
    finder.run(ast.parse(source).body, {})
    queries = []
    for q in finder.found.values():
        queries.append({**q, "filters": list(q["filters"]), "order": list(q["order"])})
    return sorted(queries, key=lambda q: q["line"])


def required_index(query: dict) -> dict | None:
    """The composite index a query needs, or None when single-field indexes serve it.

    Equality-only queries are served by merging single-field indexes; so is a query on one
    field alone. Anything that mixes an inequality or an order_by with another field needs a
    composite index: equality fields first (any order), then the inequality and order_by
    fields in query order (an inequality field without order_by is ascending).
    """
    equality = sorted({f for f, op in query["filters"] if op in EQUALITY_OPS})
    ranged = []
    for field, op in query["filters"]:
        if op not in EQUALITY_OPS and field not in [r[0] for r in ranged]:
            ranged.append((field, "ASCENDING"))
    ordered = list(query["order"])
    for field, direction in ranged:
        if field not in [o[0] for o in ordered]:
            ordered.append((field, direction))
    fields = set(equality) | {f for f, _ in ordered}
    if not ordered or len(fields) <= 1:
        return None
    ordered = [(f, d) for f, d in ordered if f not in equality or (f, d) in query["order"]]
    return {
        "collection": query["collection"],
        "scope": query["scope"],
        "equality": equality,
        "ordered": ordered,
    }


def index_serves(index: dict, need: dict) -> bool:
    if unq(index["collection"]) != need["collection"]:
        return False
    if unq(index["query_scope"]) != need["scope"]:
        return False
    fields = [(unq(f["field_path"]), unq(f.get("order", '"ASCENDING"'))) for f in index["fields"]]
    head, tail = fields[: len(need["equality"])], fields[len(need["equality"]) :]
    if sorted(f for f, _ in head) != need["equality"]:
        return False
    tail = [(f, d) for f, d in tail if f != "__name__"]
    return tail == need["ordered"]


def code_queries() -> list[dict]:
    paths = sorted(SHARED.rglob("*.py"))
    modules = {p.stem: module_constants(p.read_text(encoding="utf-8")) for p in paths}
    queries = []
    for path in paths:
        where = str(path.relative_to(ROOT))
        queries.extend(find_queries(path.read_text(encoding="utf-8"), where, modules))
    return queries


def test_every_firestore_query_has_its_index(tf):
    indexes = tf["locals"].get("firestore_indexes") or {}
    cg_fields = tf["locals"].get("firestore_collection_group_fields") or {}
    problems = []
    for query in code_queries():
        at = f"{query['where']}:{query['line']}"
        if query["unreadable"]:
            problems.append(f"{at}: cannot read the query statically; use literal field names")
            continue
        need = required_index(query)
        if need is None:
            fields = {f for f, _ in query["filters"]} | {f for f, _ in query["order"]}
            if query["scope"] == "COLLECTION_GROUP" and not any(
                unq(v["collection"]) == query["collection"] and unq(v["field"]) in fields
                for v in cg_fields.values()
            ):
                problems.append(
                    f"{at}: collection group {query['collection']} on {sorted(fields)} needs "
                    "an entry in local.firestore_collection_group_fields (infra/firestore.tf)"
                )
            continue
        if not any(index_serves(index, need) for index in indexes.values()):
            wanted = [f'{{ field_path = "{f}", order = "ASCENDING" }}' for f in need["equality"]]
            wanted += [f'{{ field_path = "{f}", order = "{d}" }}' for f, d in need["ordered"]]
            problems.append(
                f"{at}: add to local.firestore_indexes in infra/firestore.tf: "
                f'collection = "{need["collection"]}", query_scope = "{need["scope"]}", '
                f"fields = [{', '.join(wanted)}]"
            )
    assert not problems, "\n".join(problems)


SAMPLE = """
from google.cloud.firestore_v1 import FieldFilter, And

def open_jobs(db):
    return (
        db.collection("jobs")
        .where(filter=FieldFilter("terminal", "==", False))
        .order_by("create_time", direction=firestore.Query.DESCENDING)
        .limit(10)
        .stream()
    )

def by_owner(db, key):
    q = db.collection("jobs")
    q = q.where(filter=FieldFilter("owner_key_id", "==", key))
    q = q.where(filter=FieldFilter("team", "==", "x"))
    return list(q.stream())

def recent_outputs(db):
    return db.collection_group("outputs").where(filter=FieldFilter("created", ">", 0)).get()

def spend(db, day):
    return db.collection("spend").where(filter=And([FieldFilter("key", "==", "k"),
        FieldFilter("day", ">=", day)])).stream()

def single(db):
    return db.collection("keys").order_by("created").stream()

def dynamic(db, field):
    return db.collection("keys").where(filter=FieldFilter(field, "==", 1)).order_by("x").get()
"""


def test_query_finder_reads_chains_variables_and_filters():
    found = {(q["collection"], q["line"]): q for q in find_queries(SAMPLE)}
    queries = sorted(found.values(), key=lambda q: q["line"])
    assert [q["collection"] for q in queries] == [
        "jobs",
        "jobs",
        "outputs",
        "spend",
        "keys",
        "keys",
    ]
    jobs, owner, outputs, spend, keys, dynamic = queries
    assert jobs["filters"] == [("terminal", "==")]
    assert jobs["order"] == [("create_time", "DESCENDING")]
    assert owner["filters"] == [("owner_key_id", "=="), ("team", "==")]
    assert outputs["scope"] == "COLLECTION_GROUP"
    assert spend["filters"] == [("key", "=="), ("day", ">=")]
    assert dynamic["unreadable"] is True
    assert required_index(jobs) == {
        "collection": "jobs",
        "scope": "COLLECTION",
        "equality": ["terminal"],
        "ordered": [("create_time", "DESCENDING")],
    }
    assert required_index(owner) is None  # equality only: merged single-field indexes
    assert required_index(outputs) is None  # one field (needs a collection-group field config)
    assert required_index(spend)["ordered"] == [("day", "ASCENDING")]
    assert required_index(keys) is None


def test_index_matching_is_strict():
    need = required_index(find_queries(SAMPLE)[0])
    good = {
        "collection": '"jobs"',
        "query_scope": '"COLLECTION"',
        "fields": [
            {"field_path": '"terminal"', "order": '"ASCENDING"'},
            {"field_path": '"create_time"', "order": '"DESCENDING"'},
        ],
    }
    assert index_serves(good, need)
    wrong_direction = {
        **good,
        "fields": [good["fields"][0], {**good["fields"][1], "order": '"ASCENDING"'}],
    }
    assert not index_serves(wrong_direction, need)
    assert not index_serves({**good, "collection": '"keys"'}, need)
    assert not index_serves({**good, "fields": list(reversed(good["fields"]))}, need)


BRANCHES = """
DAILY = "spend_daily"

def rows(db, key_id, team):
    query = db.collection(DAILY)
    if key_id:
        query = query.where(filter=FieldFilter("key_id", "==", key_id))
    elif team:
        query = query.where(filter=FieldFilter("team", "==", team))
    query = query.where(filter=FieldFilter("day", ">=", 1))
    return [s.to_dict() for s in query.stream()]

def not_run(db):
    q = db.collection("jobs").where(filter=FieldFilter("a", "==", 1)).order_by("b")
    del q

def by_module_constant(db):
    return db.collection(keys.COLLECTION).where(filter=FieldFilter("x", ">", 1)).order_by("y")

def looped(db):
    q = db.collection("jobs").where(filter=FieldFilter("owner", "==", 1)).order_by("created")
    for s in q.stream():
        yield s
"""


def test_query_finder_forks_on_branches_and_resolves_constants():
    found = find_queries(BRANCHES, modules={"keys": {"COLLECTION": "keys"}})
    shapes = {(q["collection"], tuple(q["filters"]), tuple(q["order"])) for q in found}
    assert shapes == {
        ("spend_daily", (("key_id", "=="), ("day", ">=")), ()),
        ("spend_daily", (("team", "=="), ("day", ">=")), ()),
        ("spend_daily", (("day", ">="),), ()),
        ("keys", (("x", ">"),), (("y", "ASCENDING"),)),
        ("jobs", (("owner", "=="),), (("created", "ASCENDING"),)),
    }
    needs = [required_index(q) for q in found if q["collection"] == "keys"]
    assert needs == [
        {
            "collection": "keys",
            "scope": "COLLECTION",
            "equality": [],
            "ordered": [("y", "ASCENDING"), ("x", "ASCENDING")],
        }
    ]


def test_staging_bucket_expires_sealed_copies_and_is_the_gateways(tf):
    """Sealed inputs (issue #10 finding 2): a lifecycle rule, and the bucket the code reads."""
    staging = tf["resource"]["google_storage_bucket"]["staging"]
    [rule] = staging["lifecycle_rule"]
    assert expr(rule["condition"][0]["age"]) == "var.staging_lifecycle_days"
    assert unq(rule["action"][0]["type"]) == "Delete"
    assert tf["variable"]["staging_lifecycle_days"]["default"] == 30
    assert unq(staging["public_access_prevention"]) == "enforced"
    env = tf["locals"]["env_passthrough"]
    assert "google_storage_bucket.staging.name" in str(env)


def test_sealed_outputs_keys_cannot_write_the_staging_bucket(tf):
    """Issue #22 item 1: the books read sealed outputs from the staging bucket. No principal
    but the gateway's own functions and Vertex's service agent holds a role there, and the
    agent writes only below outputs/ (an IAM condition), where the finalize trigger watches."""
    staging = tf["resource"]["google_storage_bucket"]["staging"]
    assert expr(staging["name"]) == "local.staging_bucket"
    holders = set()
    for body in tf["resource"]["google_storage_bucket_iam_member"].values():
        if "google_storage_bucket.staging" in str(body.get("bucket")):
            holders.add(principal(body["member"]))
    assert holders == {"passthrough", "on_job_event", "on_output_finalized", "aiplatform_agent"}
    writes = tf["resource"]["google_storage_bucket_iam_member"]["vertex_writes_staging_outputs"]
    condition = block(writes, "condition")
    assert (
        "resource.name.startsWith" in condition["expression"]
        and "${local.staging_bucket}/objects/outputs/" in condition["expression"]
    )
    reads = tf["resource"]["google_storage_bucket_iam_member"]["on_output_finalized_reads_staging"]
    assert unq(reads["role"]) == "roles/storage.objectViewer"
