"""infra/ checked against the Terraform providers' own schema, without Terraform.

No provider can be downloaded here, so `terraform validate` never ran on infra/. The
`@cdktf/provider-*` npm packages are generated from the providers' schemas and are on the
npm registry: each `lib/<resource>/index.js` holds the resource's `terraformResourceType`,
one `...ToHclTerraform` mapping per block (Terraform's snake_case names, `isBlock` telling
blocks from attributes), `reset<Name>()` methods only for optional arguments, and getters
for every readable attribute. This module extracts that (per provider package, cached as
JSON) and compares the resources, data sources, provider blocks, attributes, blocks and
references of the HCL with it. Pure: fetching runs `npm pack`, nothing else touches the
network, and nothing is written outside the cache directory.
"""

from __future__ import annotations

import bisect
import difflib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import hcl2

# Terraform provider local name -> (npm package, version). Each version was generated from
# the provider version in its package.json `cdktf.provider` (checked by the tests against
# infra/versions.tf).
PACKAGES = {
    "google": ("@cdktf/provider-google", "16.12.1"),  # hashicorp/google 6.50.0
    "google-beta": ("@cdktf/provider-google-beta", "16.12.1"),  # hashicorp/google-beta 6.50.0
    "random": ("@cdktf/provider-random", "12.0.1"),  # hashicorp/random 3.7.2
}

# Bumped whenever the extracted JSON changes shape: old caches are then rebuilt.
EXTRACTOR_VERSION = 2

DEFAULT_CACHE = Path(os.environ.get("VBG_CACHE_DIR", Path.home() / ".cache" / "vbg"))

META_ARGUMENTS = {
    "resource": {"count", "for_each", "depends_on", "provider"},
    "data": {"count", "for_each", "depends_on", "provider"},
}
META_BLOCKS = {
    "resource": {"lifecycle", "provisioner", "connection"},
    "data": {"lifecycle"},
}
LIFECYCLE = {
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
    "precondition",
    "postcondition",
}
DYNAMIC_META = {"for_each", "iterator", "labels"}


class PackageUnavailable(RuntimeError):
    """npm is missing or the registry cannot be reached: the check cannot run here."""


# --- the packages -------------------------------------------------------------------------


def fetch_package(package: str, version: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The package tarball in the cache, fetched with `npm pack` the first time.

    `npm pack` rather than `npm install`: the tarball is all that is read, and an install
    would also pull the packages' peer dependencies (cdktf, constructs).
    """
    target = cache / "npm" / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise PackageUnavailable("npm is not installed: cannot fetch the provider schema")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", target.parent],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=target.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise PackageUnavailable(f"npm pack {package}@{version} timed out") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PackageUnavailable(f"npm pack {package}@{version} failed: {' / '.join(tail)}")
    packed = target.parent / json.loads(done.stdout)[0]["filename"].replace("/", "-").lstrip("@")
    if packed != target:
        packed.replace(target)
    return target


def load_schema(provider: str, cache: Path = DEFAULT_CACHE) -> dict:
    """The extracted schema of one provider, from the JSON cache or built once from npm."""
    package, version = PACKAGES[provider]
    cached = cache / "provider-schema" / f"{provider}-{version}-v{EXTRACTOR_VERSION}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    schema = extract_schema(fetch_package(package, version, cache))
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))
    partial.replace(cached)
    return schema


def extract_schema(tarball: Path) -> dict:
    """Every resource, data source and the provider block of one cdktf provider package.

    The result: `{"package", "version", "provider": {"name", "version"}, "provider_config",
    "resources": {type: block}, "data_sources": {type: block}}`, where a block is
    `{"attributes": {name: required}, "blocks": {name: {"required", "block"}},
    "readable": [names]}`.
    """
    schema: dict = {"resources": {}, "data_sources": {}, "provider_config": None}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if member.name == "package/package.json":
                meta = json.load(tar.extractfile(member))
                schema["package"], schema["version"] = meta["name"], meta["version"]
                schema["provider"] = meta.get("cdktf", {}).get("provider", {})
                continue
            if not (member.name.startswith("package/lib/") and member.name.endswith("/index.js")):
                continue
            text = io.TextIOWrapper(tar.extractfile(member), encoding="utf-8").read()
            parsed = parse_module(text)
            if parsed is None:
                continue
            kind, type_name, block = parsed
            if kind == "provider":
                schema["provider_config"] = block
            else:
                schema[kind][type_name] = block
    return schema


# --- one generated module -----------------------------------------------------------------

# Anchored on "\n" rather than `^` with re.M: a literal first character is found fast.
_CLASS = re.compile(r"\nclass (\w+) extends ([\w.]+) \{\n")
_FUNCTION = re.compile(r"\nfunction (\w+)ToHclTerraform\(struct\) \{\n")
_TOP_LEVEL = re.compile(r"\n(?:class |function |exports\.|[A-Z]\w*\[_)")
_ENTRY = re.compile(
    r'\n\s+"?(\w+)"?: \{\n\s+value: (.+),\n\s+isBlock: (true|false),\n'
    r'\s+type: "(\w+)",\n\s+storageClassType: "(\w+)",\n\s+\},(?=\n)'
)
_NESTED_FN = re.compile(r"(?:cdktf\.listMapperHcl\()?(\w+)ToHclTerraform\b")
_SOURCE = re.compile(r"(?:struct\.|this\._)(\w+)")
_TYPE = re.compile(r"\.tfResourceType = \"([\w-]+)\";")
_READABLE = re.compile(
    r"get\w*Attribute\('(\w+)'\)|interpolationForAttribute\('(\w+)'\)|new [\w.]+\(this, \"(\w+)\""
)
_KINDS = {
    "cdktf.TerraformResource": "resources",
    "cdktf.TerraformDataSource": "data_sources",
    "cdktf.TerraformProvider": "provider",
}


def _segments(text: str, pattern: re.Pattern) -> dict[str, str]:
    """Top-level definitions (classes or functions) by name, each up to the next one."""
    ends = [m.start() for m in _TOP_LEVEL.finditer(text)] + [len(text)]
    out = {}
    for m in pattern.finditer(text):
        end = ends[bisect.bisect_right(ends, m.start())]
        out[m.group(1)] = text[m.start() : end]
    return out


def _entries(body: str) -> list[tuple[str, str, bool, str]]:
    """(terraform name, camelCase source, is block, nested function or '') of a mapping."""
    out = []
    for name, value, is_block, _kind, _storage in _ENTRY.findall(body):
        source = _SOURCE.search(value)
        nested = ""
        if is_block == "true":
            found = _NESTED_FN.search(value)
            nested = found.group(1) if found else ""
        out.append((name, source.group(1) if source else name, is_block == "true", nested))
    return out


def _readable(class_body: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _READABLE.finditer(class_body)}


def _optional(class_body: str, camel: str) -> bool:
    return f"reset{camel[:1].upper()}{camel[1:]}()" in class_body


def parse_module(text: str) -> tuple[str, str, dict] | None:
    """(kind, Terraform type, block) of one generated `index.js`, or None for helpers."""
    classes = {}
    kind = None
    for m in _CLASS.finditer(text):
        classes[m.group(1)] = m.group(2)
        if m.group(2) in _KINDS:
            kind, main = _KINDS[m.group(2)], m.group(1)
    type_name = _TYPE.search(text)
    if kind is None or type_name is None or "synthesizeHclAttributes() {" not in text:
        return None
    class_bodies = _segments(text, _CLASS)
    functions = _segments(text, _FUNCTION)
    main_body = class_bodies[main]
    synth_body = main_body[main_body.index("synthesizeHclAttributes() {") :]

    def build(entries, class_body: str | None, seen: frozenset) -> dict:
        block = {"attributes": {}, "blocks": {}, "readable": sorted(_readable(class_body or ""))}
        for name, camel, is_block, nested in entries:
            # Without a class (provider-level structs) nothing says which are required.
            required = class_body is not None and not _optional(class_body, camel)
            if not is_block:
                block["attributes"][name] = required
                continue
            child = {"attributes": {}, "blocks": {}, "readable": []}
            if nested and nested in functions and nested not in seen:
                pascal = nested[:1].upper() + nested[1:]
                child = build(
                    _entries(functions[nested]),
                    class_bodies.get(f"{pascal}OutputReference"),
                    seen | {nested},
                )
            block["blocks"][name] = {"required": required, "block": child}
        block["readable"] = sorted(
            set(block["readable"]) | set(block["attributes"]) | set(block["blocks"])
        )
        return block

    return kind, type_name.group(1), build(_entries(synth_body), main_body, frozenset())


# --- the HCL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing `terraform validate` would reject, with where it is."""

    file: str
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.address}: {self.message}"


@dataclass
class Stats:
    """What was compared, for the report."""

    resources: int = 0
    data_sources: int = 0
    providers: int = 0
    attributes: int = 0
    blocks: int = 0
    references: int = 0


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def is_block_list(value) -> bool:
    """python-hcl2 8 writes a block as a list of dicts marked `__is_block__`."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def load_hcl(directory: Path) -> dict[str, dict]:
    """Every `*.tf` of a directory, parsed, by file name."""
    return {p.name: hcl2.loads(p.read_text()) for p in sorted(directory.glob("*.tf"))}


def provider_of(type_name: str, body: dict) -> str:
    """The provider local name: the `provider` meta-argument, else the type's prefix."""
    explicit = body.get("provider")
    if isinstance(explicit, str):
        return explicit.removeprefix("${").removesuffix("}").split(".")[0].strip('"')
    return type_name.split("_", 1)[0]


def _near(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown(what: str, key: str, path: tuple, block: dict, top: dict) -> str:
    """Names the nesting levels where `key` does exist (a misplaced block), else a near name."""
    message = f"no {what} {key} at {'.'.join(path) or 'the top level'}"
    elsewhere = [p for p in _where_else(key, top) if p != ".".join(path)]
    if key in top["attributes"] or key in top["blocks"]:
        elsewhere.insert(0, "the top level")
    if elsewhere:
        return f"{message}; it exists at {', '.join(elsewhere)}"
    return message + _near(key, list(block["attributes"]) + list(block["blocks"]))


def _where_else(name: str, block: dict, path: str = "") -> list[str]:
    """Paths of nested blocks of the whole schema that do have `name`: for the message."""
    found = []
    for child, spec in block["blocks"].items():
        here = f"{path}{child}"
        if name in spec["block"]["attributes"] or name in spec["block"]["blocks"]:
            found.append(here)
        found.extend(_where_else(name, spec["block"], here + "."))
    return found


class Checker:
    """Compares parsed HCL documents with the extracted provider schemas."""

    def __init__(self, schemas: dict[str, dict]):
        self.schemas = schemas
        self.problems: list[Problem] = []
        self.stats = Stats()

    def check(self, documents: dict[str, dict]) -> list[Problem]:
        declared: dict[tuple[str, str], dict] = {}
        for file, doc in documents.items():
            for kind, section in (("resource", "resources"), ("data", "data_sources")):
                for entry in doc.get(kind, []):
                    for type_label, named in _labelled(entry):
                        for name_label, body in _labelled(named):
                            type_name, name = unquote(type_label), unquote(name_label)
                            block = self._resource(file, kind, section, type_name, name, body)
                            if block is not None:
                                declared[(kind, type_name)] = block
            for entry in doc.get("provider", []):
                for label, body in _labelled(entry):
                    self._provider(file, unquote(label), body)
        for file, doc in documents.items():
            self._references(file, doc, declared)
        return self.problems

    def _schema(self, provider: str) -> dict | None:
        return self.schemas.get(provider)

    def _resource(self, file, kind, section, type_name, name, body) -> dict | None:
        prefix = "data." if kind == "data" else ""
        address = f"{prefix}{type_name}.{name}"
        provider = provider_of(type_name, body)
        schema = self._schema(provider)
        if schema is None:
            self.problems.append(Problem(file, address, f"no schema for provider {provider!r}"))
            return None
        known = schema[section]
        if type_name not in known:
            what = "data source" if kind == "data" else "resource type"
            hint = _near(type_name, known)
            self.problems.append(
                Problem(file, address, f"{provider} has no {what} {type_name}{hint}")
            )
            return None
        if kind == "data":
            self.stats.data_sources += 1
        else:
            self.stats.resources += 1
        top = known[type_name]
        self._body(file, address, (), body, top, top, META_ARGUMENTS[kind], META_BLOCKS[kind])
        return top

    def _provider(self, file, name, body) -> None:
        schema = self._schema(name)
        address = f'provider "{name}"'
        if schema is None:
            self.problems.append(Problem(file, address, f"no schema for provider {name!r}"))
            return
        self.stats.providers += 1
        config = schema["provider_config"]
        self._body(file, address, (), body, config, config, {"alias"})

    def _body(self, file, address, path, body, block, top, meta_args=(), meta_blocks=()) -> None:  # noqa: C901 (one branch per kind of schema node)
        """One body (`path` = the nested block names from the resource) against its block."""
        where = ".".join((address, *path))
        present = set()
        for key, value in body.items():
            if key.startswith("__"):
                continue
            if key == "dynamic" and isinstance(value, list):
                for dyn in value:
                    for label, spec in dyn.items():
                        if not label.startswith("__"):
                            present.add(unquote(label))
                            self._dynamic(file, address, path, unquote(label), spec, block, top)
                continue
            present.add(key)
            if key in meta_blocks and is_block_list(value):
                if key == "lifecycle":
                    self._lifecycle(file, where, value)
            elif is_block_list(value):
                for item in value:
                    self._nested(file, address, path, key, item, block, top)
            elif key not in meta_args:
                self._attribute(file, where, path, key, block, top)
        for name, required in block["attributes"].items():
            if required and name not in present:
                self.problems.append(Problem(file, where, f"required argument {name} is missing"))
        for name, spec in block["blocks"].items():
            if spec["required"] and name not in present:
                self.problems.append(Problem(file, where, f"required block {name} is missing"))

    def _attribute(self, file, where, path, key, block, top) -> None:
        self.stats.attributes += 1
        if key in block["attributes"]:
            return
        if key in block["blocks"]:
            message = f"{key} is a block, written here as an argument (`{key} = ...`)"
        else:
            message = _unknown("argument", key, path, block, top)
        self.problems.append(Problem(file, where, message))

    def _nested(self, file, address, path, key, item, block, top) -> None:
        self.stats.blocks += 1
        if key in block["blocks"]:
            child = block["blocks"][key]["block"]
            self._body(file, address, (*path, key), item, child, top)
            return
        if key in block["attributes"]:
            message = f"{key} is an argument, written here as a block (`{key} {{ ... }}`)"
        else:
            message = _unknown("block", key, path, block, top)
        self.problems.append(Problem(file, ".".join((address, *path)), message))

    def _dynamic(self, file, address, path, label, spec, block, top) -> None:
        self.stats.blocks += 1
        where = ".".join((address, *path, f"dynamic.{label}"))
        if label not in block["blocks"]:
            self.problems.append(Problem(file, where, _unknown("block", label, path, block, top)))
            return
        for key in spec:
            if not key.startswith("__") and key not in DYNAMIC_META and key != "content":
                self.problems.append(
                    Problem(file, where, f"{key} is not allowed in a dynamic block")
                )
        contents = spec.get("content")
        if not is_block_list(contents):
            self.problems.append(Problem(file, where, "the content block is missing"))
            return
        child = block["blocks"][label]["block"]
        for content in contents:
            self._body(file, address, (*path, label), content, child, top)

    def _lifecycle(self, file, where, value) -> None:
        for item in value:
            for key in item:
                if not key.startswith("__") and key not in LIFECYCLE:
                    self.problems.append(
                        Problem(file, f"{where}.lifecycle", f"{key} is not a lifecycle argument")
                    )

    # --- references: <type>.<name>.<attr> and data.<type>.<name>.<attr> -------------------

    _REF = re.compile(
        r"(?<![\w.])(data\.)?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\.(\w+)((?:\[[^\]]*\])?)\.(\w+)"
        r"((?:\[\d+\])?)(?:\.(\w+))?"
    )

    def _references(self, file, doc, declared) -> None:
        for text in _strings(doc):
            for m in self._REF.finditer(text):
                data, type_name, _name, _index, attr, index2, sub = m.groups()
                kind = "data" if data else "resource"
                block = declared.get((kind, type_name))
                if block is None:
                    continue
                self.stats.references += 1
                address = f"{data or ''}{type_name}.{_name}"
                if attr not in block["readable"]:
                    hint = _near(attr, block["readable"])
                    self.problems.append(
                        Problem(file, m.group(0), f"{address} has no attribute {attr}{hint}")
                    )
                    continue
                nested = block["blocks"].get(attr)
                if nested and index2 and sub and sub not in nested["block"]["readable"]:
                    hint = _near(sub, nested["block"]["readable"])
                    self.problems.append(
                        Problem(file, m.group(0), f"{address}.{attr} has no attribute {sub}{hint}")
                    )


def _labelled(node: dict):
    """The labelled entries of a parsed block, without python-hcl2's `__comments__` & co."""
    return ((k, v) for k, v in node.items() if not k.startswith("__"))


def _strings(node):
    """Every string in a parsed document: where references live."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            if not key.startswith("__"):
                yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def check_directory(directory: Path, schemas: dict[str, dict]) -> tuple[list[Problem], Stats]:
    """Every problem of the `*.tf` files of `directory`, and what was compared."""
    checker = Checker(schemas)
    problems = checker.check(load_hcl(directory))
    return problems, checker.stats
