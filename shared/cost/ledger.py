"""Cost records, job totals and spend rollups, each written exactly once per object generation.

Documents (integer counters: `usage.COUNTER_FIELDS`, i.e. rows, succeeded, failed, malformed,
prompt_tokens, cached_tokens, candidates_tokens, thoughts_tokens, tool_use_prompt_tokens,
audio_prompt_tokens, embedding_tokens, cost_nanos, unpriced_rows, no_usage_rows):

- `jobs/{job_id}/outputs/{record_id}`: the cost record of one object generation;
  `record_id` = sha256 hex of `bucket/object#generation`. Fields: `bucket`, `name`, `uri`,
  `generation` (int), `size`, `model`, `counters` (map), `by_model` (model -> counters),
  `group` (`final` or `incremental`), `failed_samples`, `malformed_samples`,
  `unpriced_samples`, `created`, `superseded` (bool: a newer generation of the object
  replaced it), `superseded_by` (record id or null), `counted` (false: it changed nothing,
  see Monotonic books), `tamper` (map, when it held less than what counts or came after the
  cost was final), `error` (string, when the file could not be priced at all: zero counters).
- `jobs/{job_id}/objects/{object_id}`: the generation of one object that currently counts;
  `object_id` = sha256 hex of `bucket/object`. Fields: `uri`, `generation`, `record_id`,
  `group`, `counters` (what counts for the object: per counter the largest any of its
  generations held), `rollups`, `updated`.
- `jobs/{job_id}/cost_groups/totals`: the job's two file sets, `final` and `incremental`
  (counter maps: the sum of their objects' live generations), `counted` (which set the job's
  totals are), `rollups` (the rollup doc paths the counted set was added to).
- `jobs/{job_id}.cost`: the job's totals (map of the counters) = the counted set,
  `cost_basis` (`final` or `incremental`), `cost_updated` (timestamp).

What Vertex bills, exactly once: a job's incremental files (rows written while it runs) and
its final files hold the same rows, so the job counts one set, never both: see
`counted_group` (the final set once it bills at least what the incremental set does).
- `spend_daily/{sha256 of day|key_id|model}-{shard}`: `day` ("YYYY-MM-DD"), `key_id`,
  `alias`, `team`, `model` (public name), `shard`, the counters at top level, `updated`.
- `spend_labels/{sha256 of day|key_id|label|value}-{shard}`: `day`, `key_id`, `alias`, `team`,
  `label` (name), `value`, `shard`, the counters at top level, `updated`. One per label of
  the job.

Sharded rollups: Firestore sustains about one write per second on one document, and every
priced file increments its day x key x model rollup: a key whose files land together (many
jobs ending at once) passes that. So each rollup is `ROLLUP_SHARDS` documents; a job adds to
the shard its id picks (`rollup_shard`), and `daily_rows` / `label_rows` sum the shards back
into one row per rollup (a shard exists once incremented). One job's files are serialised by
its set totals anyway, so a job's shard is no hotter than its own documents. Rollup paths
written before sharding (no `-{shard}`) are read the same way, and a job's next file moves
its total from the paths kept in its set totals to its shard.

Monotonic books: what Vertex produced and billed is never lowered by a later write (a key
holder may be able to write to their own output folder). Per object, what counts is,
counter by counter, the largest any of its generations held, whatever order their events
arrive in (the books are order-free): Vertex rewriting a file with more rows adds cost; a
rewrite with fewer rows or less usage removes none (its record carries `tamper`); an older
generation priced after a newer one adds what it holds more (its record is `superseded` by
the newer one), or, holding no more, is `stale`. Once the job's `cost_final` is set, a new
generation (or a new object) changes nothing: its record is written with `counted: false`
and `tamper` ({previous_generation, counted_nanos, file_nanos, difference_nanos}); the caller
(jobs/finalize.py) raises the `tamper` alert. The job's `cost_final` is read right before the
batch is committed: a generation landing within those milliseconds of finalisation can still
count (it is then in the final figures).

The day of a job's spend is the UTC day of its `create_time`: the day the budget admitted it,
so one job's cost lands in one day whenever its files arrive, and a replaced generation is
subtracted from the rollups it was added to.

Exactly once, without transactions (contended ones are slow, on the emulator very): read the
record (exists: done), the object doc (this or a newer generation counts and it adds nothing:
done) and the job's set totals; `plan` (pure) computes what the generation does to each
document; then commit ONE batch that creates the record (precondition: absent), creates or
updates the object doc and the set totals (precondition: unchanged since the read), marks
the old record superseded, and adds (counted set after - counted set before) to the job and
the rollups with `Increment`. A concurrent writer makes the batch fail whole on a
precondition; then it is re-read and retried, and a duplicate finds the record and writes
nothing. The set totals serialise one job's files (not different jobs').

Queries (composite indexes production needs, declared in Terraform):
- `spend_daily`: (`key_id` ASC, `day` ASC), (`team` ASC, `day` ASC).
- `spend_labels`: (`label` ASC, `day` ASC), (`key_id` ASC, `day` ASC), (`team` ASC, `day` ASC).
"""

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from shared.core import clients, docids, logs
from shared.cost.usage import COUNTER_FIELDS

OUTPUTS = "outputs"
OBJECTS = "objects"
GROUPS = "cost_groups"
GROUP_DOC = "totals"
FINAL, INCREMENTAL = "final", "incremental"
_T = TypeVar("_T")
SETS = (FINAL, INCREMENTAL)
DAILY = "spend_daily"
LABELS = "spend_labels"
DAILY_IDENTITY = ("day", "key_id", "model")
LABEL_IDENTITY = ("day", "key_id", "label", "value")
ROLLUP_SHARDS = 16
WRITE_ATTEMPTS = 16
SAMPLE_BYTES = 4096
INT64_MAX = 2**63 - 1
FLOOR_DOC = "floor"
# Rows Vertex ran that no file holds, booked at the estimate's rate (shared/cost/floor.py):
# on the job's `cost` map and the rollups beside the counters, and inside `cost_nanos`.
ESTIMATED_FIELDS = ("estimated_rows", "estimated_nanos")


class Unrecordable(ValueError):
    """Counters Firestore cannot hold (negative or beyond int64): a bug or a hostile file."""


@dataclass(frozen=True)
class Recorded:
    """What `record_generation` did with one object generation.

    `outcome`: `recorded` (the books changed), `duplicate` (this generation has its record),
    `stale` (an equal or newer generation counts and it adds nothing), `tamper` (recorded,
    lowered nothing: the job's cost was final, or the generation held less than what counts
    for its object).
    """

    outcome: str
    uri: str = ""
    generation: int = 0
    previous_generation: int | None = None
    counted_nanos: int = 0
    file_nanos: int = 0
    job_final: bool = False

    def __bool__(self) -> bool:
        return self.outcome == "recorded"

    @property
    def difference_nanos(self) -> int:
        """What this generation would have changed the object's cost by, had it replaced it."""
        return self.file_nanos - self.counted_nanos


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record_id(bucket: str, name: str, generation: int) -> str:
    return _sha(f"{bucket}/{name}#{int(generation)}")


def object_id(bucket: str, name: str) -> str:
    return _sha(f"{bucket}/{name}")


def _job_ref(job_id: str):
    return clients.firestore().collection("jobs").document(docids.doc_id(job_id))


def spend_day(job: dict) -> str:
    created = job.get("create_time")
    if isinstance(created, datetime):
        return created.astimezone(UTC).date().isoformat()
    return datetime.now(UTC).date().isoformat()


def rollup_shard(job_id: str) -> int:
    """The rollup shard a job adds to: fixed by its id, so its files all move one document."""
    return int(_sha(job_id)[:8], 16) % ROLLUP_SHARDS


def _rollup_docs(job: dict, shard: int) -> dict[str, dict]:
    """Rollup doc path -> the descriptive fields it carries, for one job's spend."""
    day = spend_day(job)
    key_id = job.get("owner_key_id") or ""
    common = {
        "day": day,
        "key_id": key_id,
        "alias": job.get("owner_alias") or "",
        "team": job.get("team") or "",
        "shard": shard,
    }
    model = job.get("model") or ""
    docs = {f"{DAILY}/{_sha(f'{day}|{key_id}|{model}')}-{shard}": {**common, "model": model}}
    for label, value in sorted((job.get("labels") or {}).items()):
        path = f"{LABELS}/{_sha(f'{day}|{key_id}|{label}|{value}')}-{shard}"
        docs[path] = {**common, "label": label, "value": value}
    return docs


def _merged(rows: list[dict], identity: tuple[str, ...]) -> list[dict]:
    """One row per rollup: the counters of its shards summed (see ROLLUP_SHARDS)."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row.get(f) for f in identity)
        if key not in merged:
            merged[key] = {k: v for k, v in row.items() if k != "shard"}
            continue
        target = merged[key]
        for field in COUNTER_FIELDS + ESTIMATED_FIELDS:
            if field in row or field in target:
                target[field] = int(target.get(field) or 0) + int(row.get(field) or 0)
        if row.get("updated") and (not target.get("updated") or row["updated"] > target["updated"]):
            target["updated"] = row["updated"]
    return list(merged.values())


def _bounded(samples: list[dict]) -> list[dict]:
    """Samples stay small: a failed row may echo a huge request, and a doc holds 1 MiB."""
    out = []
    for sample in samples:
        text = json.dumps(sample, default=str)
        if len(text) > SAMPLE_BYTES:
            sample = {"truncated": True, "json": text[:SAMPLE_BYTES]}
        out.append(sample)
    return out


def _counters(usage) -> dict[str, int]:
    return {name: int(getattr(usage, name)) for name in COUNTER_FIELDS}


def counted_group(totals: dict) -> str:
    """Which of a job's two file sets counts (never both): the final set once it bills at least
    what the incremental set does (cost, then rows), else the incremental set.

    Vertex's final file holds every row the incremental files held (inferred: they are the
    same rows written early), so for a job that ends well the final set wins as soon as it is
    whole; a final set that bills less (shards still arriving, or a file written by someone
    else) does not lower what the incremental rows already showed."""

    def weight(group: str) -> tuple[int, int]:
        counters = totals.get(group) or {}
        return int(counters.get("cost_nanos") or 0), int(counters.get("rows") or 0)

    # Counters are never negative (_check_recordable), so with no incremental rows this is
    # the final set, even while it is empty.
    return FINAL if weight(FINAL) >= weight(INCREMENTAL) else INCREMENTAL


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTER_FIELDS, 0)


def _group_totals(job_ref) -> tuple[dict, Any]:
    """The job's per-set totals doc and its snapshot; a job recorded before sets existed
    gets them summed from its object docs (every such object is a final file)."""
    ref = job_ref.collection(GROUPS).document(GROUP_DOC)
    snapshot = ref.get()
    if snapshot.exists:
        return snapshot.to_dict() or {}, snapshot
    totals: dict[str, Any] = {FINAL: _zero(), INCREMENTAL: _zero(), "rollups": []}
    rollups: set[str] = set()
    for doc in job_ref.collection(OBJECTS).stream():
        data = doc.to_dict() or {}
        target = totals[data.get("group") or FINAL]
        for name in COUNTER_FIELDS:
            target[name] += int((data.get("counters") or {}).get(name) or 0)
        rollups.update(data.get("rollups") or [])
    totals["rollups"] = sorted(rollups)
    return totals, snapshot


_retries = {"count": 0}
_retries_lock = threading.Lock()


def _count_retry() -> None:
    with _retries_lock:
        _retries["count"] += 1


def _backoff(round_: int) -> float:
    """Seconds before the next try: random, so contenders spread out; the bound doubles from
    50 ms and stops at 1 s, so a hot document costs a writer seconds, not minutes."""
    return random.uniform(0, min(1.0, 0.05 * 2**round_))


def write_retries() -> int:
    """Contended cost-record writes retried by this process so far (benches report it)."""
    return _retries["count"]


def _check_recordable(counters: dict[str, int]) -> None:
    bad = {k: v for k, v in counters.items() if not 0 <= v <= INT64_MAX}
    if bad:
        raise Unrecordable(f"counters out of range: {bad}")


# --- the plan: what one object generation does to the books (pure) ------------------------


@dataclass(frozen=True)
class Plan:
    """What one object generation does to the books, decided from what was read (`plan`) and
    written in one batch (`_Write.commit`).

    `record`: what the generation's record carries beyond its usage and the defaults
    (`superseded` and `superseded_by` for a generation not newer than the one that counts,
    `tamper`); `object_doc`: the object doc after (the newest generation, what counts for
    the object); `replaces`: the record id the generation supersedes (None: none, or it is
    not the newest, which its own record says); `totals`: the job's two sets after;
    `counted`: the set that counts after; `job_delta` and `rollup_deltas`: what the job's
    totals and each rollup doc change by.
    """

    outcome: Recorded
    record: dict
    object_doc: dict
    replaces: str | None
    totals: dict[str, dict[str, int]]
    counted: str
    job_delta: dict[str, int]
    rollup_deltas: dict[str, dict[str, int]]


def counters_of(doc: dict | None) -> dict[str, int]:
    """A stored counter map (an object doc's, a set's) with every counter, 0 when absent."""
    stored = (doc or {}).get("counters") or {}
    return {f: int(stored.get(f) or 0) for f in COUNTER_FIELDS}


def settle(
    *, previous: dict | None, job_final: bool, uri: str, generation: int, new: dict[str, int]
) -> Recorded | None:
    """Whether a generation stops short of the books, and how; None when it counts.

    `stale`: it adds nothing to what counts for its object and is not newer than the
    generation that does (a second delivery, or an older generation holding no more);
    `tamper`: the job's cost is final, so it changes nothing (its record says so).
    `previous` is the object doc as read (None: the object's first generation)."""
    held = counters_of(previous)
    previous_generation = int(previous["generation"]) if previous else None
    adds = any(new[f] > held[f] for f in COUNTER_FIELDS)
    if previous_generation is not None and previous_generation >= generation and not adds:
        return Recorded("stale", uri=uri, previous_generation=previous_generation)
    if job_final:
        return Recorded(
            "tamper",
            uri=uri,
            generation=generation,
            previous_generation=previous_generation,
            counted_nanos=held["cost_nanos"],
            file_nanos=new["cost_nanos"],
            job_final=True,
        )
    return None


def plan(
    *,
    previous: dict | None,
    stored: dict,
    uri: str,
    generation: int,
    record_id: str,
    group: str,
    new: dict[str, int],
    rollups: Collection[str],
) -> Plan:
    """The books after one generation that counts (`settle` returned None), from the object
    doc and the job's set totals as read.

    What counts for the object becomes, counter by counter, the larger of what counted and
    what the generation holds, whatever order generations arrive in (an older generation
    arriving late still adds what it holds more). A newer generation holding less on any
    counter is `tamper` (it changes nothing it would lower). The object's counters move from
    its set's totals to `group`'s; the job's totals follow the set that counts
    (`counted_group`), and each rollup doc gets (the counted set after if the job adds to it
    now) - (the counted set before if it did so far)."""
    held = counters_of(previous)
    previous_generation = int(previous["generation"]) if previous else None
    newest = previous_generation is None or generation > previous_generation
    counted = {f: max(held[f], new[f]) for f in COUNTER_FIELDS}
    lowered = sorted(f for f in COUNTER_FIELDS if new[f] < held[f]) if newest else []
    found = Recorded(
        "tamper" if lowered else "recorded",
        uri=uri,
        generation=generation,
        previous_generation=previous_generation,
        counted_nanos=held["cost_nanos"],
        file_nanos=new["cost_nanos"],
    )
    record: dict = {}
    if not newest:
        record = {"superseded": True, "superseded_by": (previous or {}).get("record_id")}
    if lowered:
        record["tamper"] = _tamper_fields(found, lowered=lowered)

    totals = {g: {f: int((stored.get(g) or {}).get(f) or 0) for f in COUNTER_FIELDS} for g in SETS}
    before_group = counted_group(totals)
    before = dict(totals[before_group])
    if previous is not None:
        target = totals[previous.get("group") or FINAL]
        for field in COUNTER_FIELDS:
            target[field] -= held[field]
    for field in COUNTER_FIELDS:
        totals[group][field] += counted[field]
    after_group = counted_group(totals)
    after = totals[after_group]
    old_rollups = set(stored.get("rollups") or [])
    return Plan(
        outcome=found,
        record=record,
        object_doc={
            "uri": uri,
            "generation": generation if newest else previous_generation,
            "record_id": record_id if newest else (previous or {}).get("record_id"),
            "group": group,
            "counters": counted,
            "rollups": sorted(rollups),
        },
        replaces=(previous or {}).get("record_id") if newest else None,
        totals=totals,
        counted=after_group,
        job_delta={f: after[f] - before[f] for f in COUNTER_FIELDS},
        rollup_deltas={
            path: {
                f: (after[f] if path in rollups else 0) - (before[f] if path in old_rollups else 0)
                for f in COUNTER_FIELDS
            }
            for path in sorted(old_rollups | set(rollups))
        },
    )


def _tamper_fields(found: Recorded, lowered: list[str] | None = None) -> dict:
    """The `tamper` map of a record that changed nothing it would have lowered."""
    if found.job_final:
        reason = {"reason": "a new generation after the job's cost was final"}
    else:
        reason = {"reason": "the generation holds less than what counts for its object"}
    return {
        **reason,
        "previous_generation": found.previous_generation,
        **({"lowered": lowered} if lowered else {}),
        "counted_nanos": found.counted_nanos,
        "file_nanos": found.file_nanos,
        "difference_nanos": found.difference_nanos,
    }


# --- the commit: one generation's record and the books, exactly once ----------------------


def record_generation(
    *,
    job_id: str,
    job: dict,
    bucket: str,
    name: str,
    generation: int,
    size,
    usage,
    group: str = FINAL,
) -> Recorded:
    """Record one object generation's usage, exactly once and monotonically (see the module
    docstring). `group` is FINAL or INCREMENTAL (shared/jobs/finalize.py says which)."""
    generation = int(generation)
    new = _counters(usage)
    _check_recordable(new)
    write = _Write(
        job_id=job_id,
        uri=f"gs://{bucket}/{name}",
        generation=generation,
        record_id=record_id(bucket, name, generation),
        object_id=object_id(bucket, name),
        group=group,
        new=new,
        rollups=_rollup_docs(job, rollup_shard(job_id)),
        record=_record_fields(job, bucket, name, generation, size, usage, group, new),
    )

    def once() -> Recorded:
        if write.record_ref().get().exists:
            return Recorded("duplicate", uri=write.uri, generation=generation)
        return write.attempt()

    outcome = _until_written(once, f"cost record {write.record_id}")
    _log_outcome(outcome, write)
    return outcome


def _until_written(attempt: Callable[[], _T], what: str) -> _T:
    """`attempt()` until it commits. A contended attempt wrote nothing (a concurrent writer
    won: the record exists now, or a document read moved on; or Firestore aborted the batch
    on a hot document), so it is tried again after a backoff."""
    from google.api_core import exceptions

    contended = (
        exceptions.AlreadyExists,
        exceptions.Conflict,
        exceptions.FailedPrecondition,
        exceptions.Aborted,
    )
    for round_ in range(WRITE_ATTEMPTS):
        try:
            return attempt()
        except contended:
            _count_retry()
            time.sleep(_backoff(round_))
    raise RuntimeError(f"{what}: still contended after {WRITE_ATTEMPTS} tries")


def _record_fields(job, bucket, name, generation, size, usage, group, new) -> dict:
    """The cost record of one generation, as its usage gives it (the plan adds the rest)."""
    return {
        "bucket": bucket,
        "name": name,
        "uri": f"gs://{bucket}/{name}",
        "generation": generation,
        "size": int(size) if size not in (None, "") else None,
        "model": job.get("model"),
        "group": group,
        "counters": new,
        # What priced it: a later catalog never re-prices this record (a reprice is explicit).
        "catalog_version": usage.catalog_version,
        "by_model": {m: u.counters() for m, u in sorted(usage.by_model.items())},
        "failed_samples": _bounded(usage.failed_samples),
        "malformed_samples": _bounded(usage.malformed_samples),
        "unpriced_samples": _bounded(usage.unpriced_samples),
        "created": datetime.now(UTC),
        "superseded": False,
        "superseded_by": None,
        "counted": True,
    }


@dataclass(frozen=True)
class _Write:
    """One generation on its way into the books: what it is, and the documents it touches."""

    job_id: str
    uri: str
    generation: int
    record_id: str
    object_id: str
    group: str
    new: dict[str, int]
    rollups: dict[str, dict]
    record: dict

    def job_ref(self):
        return _job_ref(self.job_id)

    def record_ref(self):
        return self.job_ref().collection(OUTPUTS).document(self.record_id)

    def attempt(self) -> Recorded:
        """One optimistic try: read the object doc and the job (then the job's set totals),
        plan, and write the plan in one batch whose preconditions fail if the record exists
        or a doc changed since it was read."""
        client = clients.firestore()
        job_ref = self.job_ref()
        obj_ref = job_ref.collection(OBJECTS).document(self.object_id)
        current, job_now = _read_pair(client, obj_ref, job_ref)
        previous = current.to_dict()  # None when the object has no generation yet
        early = settle(
            previous=previous,
            job_final=bool((job_now.to_dict() or {}).get("cost_final")),
            uri=self.uri,
            generation=self.generation,
            new=self.new,
        )
        if early is not None:
            if early.outcome == "tamper":
                fields = {**self.record, "counted": False, "tamper": _tamper_fields(early)}
                self.record_ref().create(fields)
            return early
        stored, groups_snapshot = _group_totals(job_ref)
        planned = plan(
            previous=previous,
            stored=stored,
            uri=self.uri,
            generation=self.generation,
            record_id=self.record_id,
            group=self.group,
            new=self.new,
            rollups=set(self.rollups),
        )
        self.commit(planned, client, current, groups_snapshot)
        return planned.outcome

    def commit(self, planned: Plan, client, current, groups_snapshot) -> None:
        """Write the plan: one batch, with a precondition on every doc it was computed from."""
        from google.cloud import firestore

        now = datetime.now(UTC)
        job_ref = self.job_ref()
        obj_ref = job_ref.collection(OBJECTS).document(self.object_id)
        groups_ref = job_ref.collection(GROUPS).document(GROUP_DOC)
        batch = client.batch()
        batch.create(self.record_ref(), {**self.record, **planned.record})
        object_doc = {**planned.object_doc, "updated": now}
        if current.exists:
            unchanged = client.write_option(last_update_time=current.update_time)
            batch.update(obj_ref, object_doc, option=unchanged)
        else:
            batch.create(obj_ref, object_doc)
        if planned.replaces:
            batch.update(
                job_ref.collection(OUTPUTS).document(planned.replaces),
                {"superseded": True, "superseded_by": self.record_id},
            )
        group_doc = {
            **planned.totals,
            "counted": planned.counted,
            "rollups": sorted(self.rollups),
            "updated": now,
        }
        if groups_snapshot.exists:
            unchanged = client.write_option(last_update_time=groups_snapshot.update_time)
            batch.update(groups_ref, group_doc, option=unchanged)
        else:
            batch.create(groups_ref, group_doc)
        job_update = {
            f"cost.{f}": firestore.Increment(v) for f, v in planned.job_delta.items() if v
        }
        batch.update(job_ref, {**job_update, "cost_basis": planned.counted, "cost_updated": now})
        for path, delta in planned.rollup_deltas.items():
            increments = {f: firestore.Increment(v) for f, v in delta.items() if v}
            if increments:
                fields = {**self.rollups.get(path, {}), **increments, "updated": now}
                batch.set(client.document(path), fields, merge=True)
        batch.commit()


def _log_outcome(outcome: Recorded, write: _Write) -> None:
    where = {
        "job_id": write.job_id,
        "uri": f"{write.uri}#{write.generation}",
        "record_id": write.record_id,
    }
    if outcome.outcome == "duplicate":
        logs.info("cost record exists; nothing to do", **where)
    elif outcome.outcome == "stale":
        logs.info(
            "an equal or newer generation already counts; nothing to do",
            current_generation=outcome.previous_generation,
            **where,
        )
    elif outcome.outcome == "tamper":
        logs.warning(
            "output generation not counted in full (tamper)",
            job_final=outcome.job_final,
            previous_generation=outcome.previous_generation,
            counted_nanos=outcome.counted_nanos,
            file_nanos=outcome.file_nanos,
            **where,
        )
    else:
        logs.info(
            "cost recorded",
            group=write.group,
            replaced_generation=outcome.previous_generation,
            cost_nanos=write.new["cost_nanos"],
            rows=write.new["rows"],
            **where,
        )


def _read_pair(client, obj_ref, job_ref):
    """The object doc and the job doc, in one round trip."""
    found = {s.reference.path: s for s in client.get_all([obj_ref, job_ref])}
    return found[obj_ref.path], found[job_ref.path]


def record_failure(
    *,
    job_id: str,
    job: dict,
    bucket: str,
    name: str,
    generation: int,
    size,
    error: str,
    tamper: dict | None = None,
) -> bool:
    """A file that cannot be priced at all still gets its record (zero counters, the error),
    so that the reconciliation does not try it forever and the cost view names it. `tamper`
    (a generation that vanished before it was read) is kept on the record."""
    from google.api_core import exceptions

    rid = record_id(bucket, name, int(generation))
    ref = _job_ref(job_id).collection(OUTPUTS).document(rid)
    try:
        ref.create(
            {
                "bucket": bucket,
                "name": name,
                "uri": f"gs://{bucket}/{name}",
                "generation": int(generation),
                "size": int(size) if size not in (None, "") else None,
                "model": job.get("model"),
                "counters": dict.fromkeys(COUNTER_FIELDS, 0),
                "by_model": {},
                "failed_samples": [],
                "malformed_samples": [],
                "unpriced_samples": [],
                "created": datetime.now(UTC),
                "superseded": False,
                "superseded_by": None,
                "counted": False,
                "error": error[:SAMPLE_BYTES],
                **({"tamper": tamper} if tamper else {}),
            }
        )
    except (exceptions.AlreadyExists, exceptions.Conflict):
        return False
    logs.error(
        "output file could not be priced; recorded with its error",
        job_id=job_id,
        uri=f"gs://{bucket}/{name}#{generation}",
        error=error[:500],
    )
    return True


def get_record(job_id: str, bucket: str, name: str, generation) -> dict | None:
    ref = _job_ref(job_id).collection(OUTPUTS).document(record_id(bucket, name, int(generation)))
    snapshot = ref.get()
    return snapshot.to_dict() if snapshot.exists else None


def recorded_of(record: dict) -> Recorded:
    """The `tamper` outcome a stored record describes (for re-sending its alert)."""
    tamper = record.get("tamper") or {}
    return Recorded(
        "tamper",
        uri=record.get("uri") or "",
        generation=int(record.get("generation") or 0),
        previous_generation=tamper.get("previous_generation"),
        counted_nanos=int(tamper.get("counted_nanos") or 0),
        file_nanos=int(tamper.get("file_nanos") or 0),
        job_final=not record.get("counted", True),
    )


def has_record(job_id: str, bucket: str, name: str, generation) -> bool:
    ref = _job_ref(job_id).collection(OUTPUTS).document(record_id(bucket, name, int(generation)))
    return ref.get().exists


def job_cost(job_id: str) -> dict | None:
    """The job's totals, its per-file records (oldest first) and samples; None: no job."""
    snapshot = _job_ref(job_id).get()
    if not snapshot.exists:
        return None
    job = snapshot.to_dict()
    records = [s.to_dict() | {"id": s.id} for s in _job_ref(job_id).collection(OUTPUTS).stream()]
    records.sort(key=lambda r: (r.get("created") or datetime.min.replace(tzinfo=UTC), r["uri"]))
    totals = {
        f: int((job.get("cost") or {}).get(f) or 0) for f in COUNTER_FIELDS + ESTIMATED_FIELDS
    }
    basis = job.get("cost_basis") or FINAL
    for record in records:
        record["counted"] = (
            record.get("counted", True)
            and not record.get("superseded")
            and (record.get("group") or FINAL) == basis
        )
    live = [r for r in records if r["counted"]]
    samples = {
        kind: [{"uri": r["uri"], **s} for r in live for s in r.get(kind) or []]
        for kind in ("failed_samples", "malformed_samples", "unpriced_samples")
    }
    return {
        "job_id": job_id,
        "job": job,
        "totals": totals,
        "records": records,
        "floor": get_floor(job_id),
        **samples,
    }


def _parse_day(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()


def daily_rows(
    *, start: date | str, end: date | str, key_id: str | None = None, team: str | None = None
) -> list[dict]:
    """`spend_daily` docs with start <= day <= end, for one key, one team, or all."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = clients.firestore().collection(DAILY)
    if key_id is not None:
        query = query.where(filter=FieldFilter("key_id", "==", key_id))
    elif team is not None:
        query = query.where(filter=FieldFilter("team", "==", team))
    query = query.where(filter=FieldFilter("day", ">=", _parse_day(start))).where(
        filter=FieldFilter("day", "<=", _parse_day(end))
    )
    rows = _merged([s.to_dict() for s in query.stream()], DAILY_IDENTITY)
    if key_id is not None and team is not None:
        rows = [r for r in rows if r.get("team") == team]
    return rows


def label_rows(
    *,
    label: str,
    start: date | str,
    end: date | str,
    key_id: str | None = None,
    team: str | None = None,
) -> list[dict]:
    """`spend_labels` docs of one label name in the period, for one key, one team, or all."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = clients.firestore().collection(LABELS)
    if key_id is not None:
        query = query.where(filter=FieldFilter("key_id", "==", key_id))
    elif team is not None:
        query = query.where(filter=FieldFilter("team", "==", team))
    else:
        query = query.where(filter=FieldFilter("label", "==", label))
    query = query.where(filter=FieldFilter("day", ">=", _parse_day(start))).where(
        filter=FieldFilter("day", "<=", _parse_day(end))
    )
    rows = _merged([s.to_dict() for s in query.stream()], LABEL_IDENTITY)
    return [
        r
        for r in rows
        if r.get("label") == label
        and (key_id is None or r.get("key_id") == key_id)
        and (team is None or r.get("team") == team)
    ]


def spend_nanos(
    *, start: date, end: date, key_id: str | None = None, team: str | None = None
) -> int:
    """Actual spend (nano-dollars) of jobs created from `start` to `end`, both days included."""
    rows = daily_rows(start=start, end=end, key_id=key_id, team=team)
    return sum(int(r.get("cost_nanos") or 0) for r in rows)


# --- the floor: rows Vertex ran that the books lack ------------------------------------------


@dataclass(frozen=True)
class Floored:
    """What `record_floor` did: `booked` (the estimated rows changed), `unchanged`, or `final`
    (the job's cost is final: its books are closed). `rows`/`nanos` are the gap now booked."""

    outcome: str
    rows: int = 0
    nanos: int = 0
    per_row_nanos: int = 0
    booked_succeeded: int = 0
    vertex_succeeded: int = 0
    vertex_failed: int = 0

    def __bool__(self) -> bool:
        return self.outcome == "booked"


def get_floor(job_id: str) -> dict | None:
    """The job's floor document (`jobs/{id}/cost_groups/floor`), or None."""
    snapshot = _job_ref(job_id).collection(GROUPS).document(FLOOR_DOC).get()
    return snapshot.to_dict() if snapshot.exists else None


@dataclass(frozen=True)
class FloorPlan:
    """What the floor does to the books (`plan_floor`, pure): the figures, the floor doc to
    write (None: nothing changes) and what the job's `cost` and each rollup doc change by."""

    floored: Floored
    doc: dict | None
    job_delta: dict[str, int]
    rollup_deltas: dict[str, dict[str, int]]


def plan_floor(
    *,
    previous: dict | None,
    stored: dict,
    job_final: bool,
    vertex_succeeded: int,
    vertex_failed: int,
    per_row_nanos: int,
    rollups: Collection[str],
) -> FloorPlan:
    """The floor after a check, from the floor doc and the job's set totals as read: the gap
    (shared/cost/floor.py) against the `succeeded` rows of the set the job counts, at
    `per_row_nanos` a row; the job's `cost` and the rollups move by (gap now - gap booked
    before), so a check repeated with the same figures moves nothing and one after a late
    file shrinks the estimate by the rows it brought. Closed books (`job_final`) stay."""
    from shared.cost import floor

    if job_final:
        return FloorPlan(Floored("final"), None, {}, {})
    totals = {g: {f: int((stored.get(g) or {}).get(f) or 0) for f in COUNTER_FIELDS} for g in SETS}
    booked = totals[counted_group(totals)]["succeeded"]
    rows = floor.gap_rows(vertex_succeeded, booked)
    nanos = rows * per_row_nanos
    _check_recordable({"estimated_rows": rows, "estimated_nanos": nanos})
    old = previous or {}
    old_rows, old_nanos = int(old.get("rows") or 0), int(old.get("nanos") or 0)
    old_paths = set(old.get("rollups") or [])
    moved = old_paths != set(rollups) and bool(old_nanos or old_rows)
    changed = (rows, nanos) != (old_rows, old_nanos) or moved
    figures = Floored(
        "booked" if changed else "unchanged",
        rows=rows,
        nanos=nanos,
        per_row_nanos=per_row_nanos,
        booked_succeeded=booked,
        vertex_succeeded=vertex_succeeded,
        vertex_failed=vertex_failed,
    )
    if not changed:
        return FloorPlan(figures, None, {}, {})
    after = {"cost_nanos": nanos, "estimated_nanos": nanos, "estimated_rows": rows}
    before = {"cost_nanos": old_nanos, "estimated_nanos": old_nanos, "estimated_rows": old_rows}
    return FloorPlan(
        floored=figures,
        doc={
            "rows": rows,
            "nanos": nanos,
            "per_row_nanos": per_row_nanos,
            "booked_succeeded": booked,
            "vertex_succeeded": vertex_succeeded,
            "vertex_failed": vertex_failed,
            "rollups": sorted(rollups),
        },
        job_delta={f: after[f] - before[f] for f in after},
        rollup_deltas={
            path: {
                f: (after[f] if path in rollups else 0) - (before[f] if path in old_paths else 0)
                for f in after
            }
            for path in sorted(old_paths | set(rollups))
        },
    )


def record_floor(
    *, job_id: str, job: dict, vertex_succeeded: int, vertex_failed: int, per_row_nanos: int
) -> Floored:
    """Book (or re-book) the successful rows Vertex ran that the job's counted file set lacks,
    at `per_row_nanos` each, as the job's one estimated record: `jobs/{id}/cost_groups/floor`.

    Exactly once, as `record_generation`: read the floor doc, the job and its set totals,
    plan (`plan_floor`), then ONE batch that writes the floor doc and touches the set totals
    (both under a precondition: unchanged since the read, so a file landing meanwhile sends
    this round again) and adds the plan's deltas to the job's `cost` (`cost_nanos`,
    `estimated_rows`, `estimated_nanos`) and the rollups by `Increment`."""
    from google.cloud import firestore

    client = clients.firestore()
    job_ref = _job_ref(job_id)
    floor_ref = job_ref.collection(GROUPS).document(FLOOR_DOC)
    groups_ref = job_ref.collection(GROUPS).document(GROUP_DOC)
    rollups = _rollup_docs(job, rollup_shard(job_id))

    def attempt() -> Floored:
        found: dict[str, Any] = {s.reference.path: s for s in client.get_all([floor_ref, job_ref])}
        floor_snapshot, job_snapshot = found[floor_ref.path], found[job_ref.path]
        stored, groups_snapshot = _group_totals(job_ref)
        planned = plan_floor(
            previous=floor_snapshot.to_dict() if floor_snapshot.exists else None,
            stored=stored,
            job_final=bool((job_snapshot.to_dict() or {}).get("cost_final")),
            vertex_succeeded=vertex_succeeded,
            vertex_failed=vertex_failed,
            per_row_nanos=per_row_nanos,
            rollups=set(rollups),
        )
        if planned.doc is None:
            return planned.floored
        now = datetime.now(UTC)
        batch = client.batch()
        if floor_snapshot.exists:
            option = client.write_option(last_update_time=floor_snapshot.update_time)
            batch.update(floor_ref, {**planned.doc, "updated": now}, option=option)
        else:
            batch.create(floor_ref, {**planned.doc, "created": now, "updated": now})
        if groups_snapshot.exists:
            option = client.write_option(last_update_time=groups_snapshot.update_time)
            batch.update(groups_ref, {"floor_checked": now}, option=option)
        else:
            totals = {g: {**_zero(), **(stored.get(g) or {})} for g in SETS}
            fields = {**totals, "counted": counted_group(totals), "rollups": [], "updated": now}
            batch.create(groups_ref, fields)
        job_update = {f"cost.{f}": firestore.Increment(v) for f, v in planned.job_delta.items()}
        batch.update(job_ref, {**job_update, "cost_updated": now})
        for path, delta in planned.rollup_deltas.items():
            increments = {f: firestore.Increment(v) for f, v in delta.items() if v}
            if increments:
                fields = {**rollups.get(path, {}), **increments, "updated": now}
                batch.set(client.document(path), fields, merge=True)
        batch.commit()
        return planned.floored

    outcome = _until_written(attempt, f"floor of job {job_id}")
    logs.info(
        "floor checked",
        job_id=job_id,
        outcome=outcome.outcome,
        gap_rows=outcome.rows,
        estimated_nanos=outcome.nanos,
        vertex_succeeded=vertex_succeeded,
        booked_succeeded=outcome.booked_succeeded,
    )
    return outcome
