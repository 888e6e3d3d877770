"""The ledger's money rule as a pure plan (`ledger.settle`, `ledger.plan`): never lower,
exactly once, order-free. The plans are applied here to documents held in memory the way
`ledger._Write.commit` writes them (create the record, replace the object doc and the set
totals, add the deltas), and the books are compared with what the rules say, computed here
independently: per object the largest of each counter over its generations, per set the sum
of its objects, the final set counting once it bills at least what the incremental one does
(cost, then rows)."""

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cost import ledger
from shared.cost.usage import COUNTER_FIELDS

# Objects a, b are final files, i an incremental one (an object's path fixes its set).
GROUPS = {"a": ledger.FINAL, "b": ledger.FINAL, "i": ledger.INCREMENTAL}
ROLLUP_SETS = [("spend_daily/x-1",), ("spend_daily/x-1", "spend_labels/y-1"), ("spend_daily/z-1",)]


def zero() -> dict[str, int]:
    return dict.fromkeys(COUNTER_FIELDS, 0)


@dataclass
class Books:
    """Every document `record_generation` writes, in memory."""

    objects: dict[str, dict] = field(default_factory=dict)
    records: set[str] = field(default_factory=set)
    totals: dict = field(default_factory=dict)
    job: dict[str, int] = field(default_factory=zero)
    rollups: dict[str, dict[str, int]] = field(default_factory=dict)
    final: bool = False

    def deliver(self, name: str, generation: int, counters: dict, rollups=ROLLUP_SETS[0]) -> str:
        record_id = f"{name}#{generation}"
        if record_id in self.records:
            return "duplicate"
        previous = self.objects.get(name)
        early = ledger.settle(
            previous=previous, job_final=self.final, uri=name, generation=generation, new=counters
        )
        if early is not None:
            if early.outcome == "tamper":
                self.records.add(record_id)
            return early.outcome
        planned = ledger.plan(
            previous=previous,
            stored=self.totals,
            uri=name,
            generation=generation,
            record_id=record_id,
            group=GROUPS[name],
            new=counters,
            rollups=set(rollups),
        )
        self.records.add(record_id)
        self.objects[name] = planned.object_doc
        self.totals = {**planned.totals, "counted": planned.counted, "rollups": sorted(rollups)}
        for name_, delta in planned.job_delta.items():
            self.job[name_] += delta
        for path, delta in planned.rollup_deltas.items():
            target = self.rollups.setdefault(path, zero())
            for name_, value in delta.items():
                target[name_] += value
        return planned.outcome.outcome

    def state(self) -> tuple:
        return (
            {n: o["counters"] for n, o in self.objects.items()},
            {g: self.totals.get(g) for g in ledger.SETS},
            self.totals.get("counted"),
            dict(self.job),
            {p: r for p, r in self.rollups.items() if any(r.values())},
        )


def expected_books(deliveries) -> tuple:
    """The books by the rules, from the generations delivered (any order, any repeats)."""
    counted: dict[str, dict[str, int]] = {}
    for name, _generation, counters in deliveries:
        held = counted.setdefault(name, zero())
        for f in COUNTER_FIELDS:
            held[f] = max(held[f], counters[f])
    sets = {g: zero() for g in ledger.SETS}
    for name, counters in counted.items():
        for f in COUNTER_FIELDS:
            sets[GROUPS[name]][f] += counters[f]
    final, incremental = sets[ledger.FINAL], sets[ledger.INCREMENTAL]
    weight = lambda s: (s["cost_nanos"], s["rows"])  # noqa: E731
    counts = ledger.FINAL if weight(final) >= weight(incremental) else ledger.INCREMENTAL
    return counted, sets, counts


COUNTS = st.integers(min_value=0, max_value=50)


@st.composite
def generations(draw) -> list[tuple[str, int, dict]]:
    """Distinct object generations, each with its own counters (a generation's bytes, and so
    its usage, never change)."""
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(GROUPS)), st.integers(1, 6)), unique=True, max_size=8
        )
    )
    out = []
    for name, generation in keys:
        counters = zero()
        for f in ("rows", "prompt_tokens", "cost_nanos"):
            counters[f] = draw(COUNTS)
        out.append((name, generation, counters))
    return out


@settings(max_examples=300, deadline=None)
@given(gens=generations(), data=st.data())
def test_books_are_order_free_exactly_once_and_the_larger_of_each_counter(gens, data):
    # Every generation at least once, some twice, in any order.
    repeats = data.draw(st.lists(st.sampled_from(gens), max_size=4)) if gens else []
    deliveries = data.draw(st.permutations(gens + repeats))
    books = Books()
    for name, generation, counters in deliveries:
        books.deliver(name, generation, counters)
    counted, sets, counts = expected_books(deliveries)
    objects, totals, counted_set, job, rollups = books.state()
    assert objects == counted
    assert totals == (sets if gens else {g: None for g in ledger.SETS})
    assert counted_set == (counts if gens else None)
    assert job == (sets[counts] if gens else zero())
    assert all(r == job for r in rollups.values())
    assert set(rollups) <= set(ROLLUP_SETS[0])
    # The same generations in another order: the same books.
    again = Books()
    for name, generation, counters in reversed(deliveries):
        again.deliver(name, generation, counters)
    assert again.state() == books.state()


@settings(max_examples=300, deadline=None)
@given(
    gens=generations(),
    data=st.data(),
)
def test_the_books_never_go_down_and_a_redelivery_changes_nothing(gens, data):
    deliveries = data.draw(st.permutations(gens))
    books = Books()
    for name, generation, counters in deliveries:
        before = books.state()
        rollups = data.draw(st.sampled_from(ROLLUP_SETS))
        outcome = books.deliver(name, generation, counters, rollups)
        objects, totals, _, job, spend = books.state()
        assert job["cost_nanos"] >= before[3]["cost_nanos"]
        for obj, held in before[0].items():
            assert all(objects[obj][f] >= held[f] for f in COUNTER_FIELDS)
        for group, held in before[1].items():
            assert all(totals[group][f] >= (held or zero())[f] for f in COUNTER_FIELDS)
        # Spend moves whole to the rollups the job adds to now; the others hold nothing.
        if outcome in ("recorded", "tamper"):
            assert all(spend.get(p, zero()) == job for p in rollups if any(job.values()))
            assert set(spend) <= set(rollups)
        # The same generation again: its record stops it; without the record (a delivery
        # that read before the record was written), the plan itself adds nothing twice.
        after = books.state()
        again = books.deliver(name, generation, counters, rollups)
        assert again == ("stale" if outcome == "stale" else "duplicate")
        books.records.discard(f"{name}#{generation}")
        assert books.deliver(name, generation, counters, rollups) == "stale"
        assert books.state() == after


@settings(max_examples=200, deadline=None)
@given(gens=generations(), late=generations(), data=st.data())
def test_after_the_cost_is_final_nothing_changes(gens, late, data):
    books = Books()
    for name, generation, counters in gens:
        books.deliver(name, generation, counters)
    frozen = books.state()
    books.final = True
    for name, generation, counters in data.draw(st.permutations(late)):
        outcome = books.deliver(name, generation, counters)
        assert outcome in ("tamper", "stale", "duplicate")
    assert books.state() == frozen


def counters(**values) -> dict[str, int]:
    return {**zero(), **values}


def test_a_newer_generation_holding_less_counts_the_larger_and_is_tamper():
    previous = {
        "generation": 1,
        "record_id": "r1",
        "group": "final",
        "counters": counters(rows=4, prompt_tokens=100, cost_nanos=2_000),
    }
    stored = {"final": counters(rows=4, prompt_tokens=100, cost_nanos=2_000), "rollups": ["p"]}
    planned = ledger.plan(
        previous=previous,
        stored=stored,
        uri="gs://b/o",
        generation=2,
        record_id="r2",
        group="final",
        new=counters(rows=6, prompt_tokens=40, cost_nanos=1_000),
        rollups={"p"},
    )
    assert planned.outcome == ledger.Recorded(
        "tamper",
        uri="gs://b/o",
        generation=2,
        previous_generation=1,
        counted_nanos=2_000,
        file_nanos=1_000,
    )
    assert planned.record["tamper"] == {
        "reason": "the generation holds less than what counts for its object",
        "previous_generation": 1,
        "lowered": ["cost_nanos", "prompt_tokens"],
        "counted_nanos": 2_000,
        "file_nanos": 1_000,
        "difference_nanos": -1_000,
    }
    assert planned.object_doc["counters"] == counters(rows=6, prompt_tokens=100, cost_nanos=2_000)
    assert (planned.object_doc["generation"], planned.replaces) == (2, "r1")
    assert planned.job_delta == counters(rows=2)
    assert planned.rollup_deltas == {"p": counters(rows=2)}


def test_the_final_set_takes_over_once_it_bills_as_much():
    stored = {
        "final": counters(),
        "incremental": counters(rows=3, cost_nanos=900, prompt_tokens=30),
        "rollups": ["old"],
    }
    common = {"previous": None, "stored": stored, "uri": "gs://b/f", "generation": 1}
    less = ledger.plan(
        **common,
        record_id="f",
        group="final",
        new=counters(rows=3, cost_nanos=899),
        rollups={"new"},
    )
    assert less.counted == "incremental" and less.job_delta == counters()
    # The job's spend moves from the rollup it was added to, to the one it adds to now.
    assert less.rollup_deltas == {
        "old": counters(rows=-3, cost_nanos=-900, prompt_tokens=-30),
        "new": counters(rows=3, cost_nanos=900, prompt_tokens=30),
    }
    same = ledger.plan(
        **common,
        record_id="f",
        group="final",
        new=counters(rows=3, cost_nanos=900),
        rollups={"old"},
    )
    assert same.counted == "final"
    assert same.job_delta == counters(prompt_tokens=-30)
    assert same.totals == {
        "final": counters(rows=3, cost_nanos=900),
        "incremental": stored["incremental"],
    }


@pytest.mark.parametrize("generation, expected", [(3, "stale"), (2, "stale"), (4, None)])
def test_settle_stops_what_adds_nothing_and_is_not_newer(generation, expected):
    previous = {"generation": 3, "record_id": "r3", "counters": counters(rows=2, cost_nanos=5)}
    found = ledger.settle(
        previous=previous,
        job_final=False,
        uri="u",
        generation=generation,
        new=counters(rows=2, cost_nanos=5),
    )
    assert (found.outcome if found is not None else None) == expected
    more = ledger.settle(
        previous=previous, job_final=False, uri="u", generation=2, new=counters(rows=3)
    )
    assert more is None
    final = ledger.settle(
        previous=previous, job_final=True, uri="u", generation=4, new=counters(cost_nanos=9)
    )
    assert final == ledger.Recorded(
        "tamper",
        uri="u",
        generation=4,
        previous_generation=3,
        counted_nanos=5,
        file_nanos=9,
        job_final=True,
    )


def test_a_generation_never_supersedes_itself_and_an_older_one_is_superseded():
    previous = {"generation": 3, "record_id": "r3", "group": "final", "counters": counters(rows=1)}
    common = {"previous": previous, "stored": {}, "uri": "u", "group": "final", "rollups": set()}
    # The same generation holding more (a re-priced delivery whose record write lost a race:
    # its create fails and it finds the record): it is not newer than itself.
    same = ledger.plan(**common, generation=3, record_id="r3", new=counters(rows=2))
    assert (same.replaces, same.object_doc["generation"]) == (None, 3)
    assert same.record == {"superseded": True, "superseded_by": "r3"}
    older = ledger.plan(**common, generation=2, record_id="r2", new=counters(rows=2))
    assert older.record == {"superseded": True, "superseded_by": "r3"}
    assert (older.object_doc["record_id"], older.replaces) == ("r3", None)
    newer = ledger.plan(**common, generation=4, record_id="r4", new=counters(rows=2))
    assert newer.record == {} and newer.replaces == "r3"
    assert (newer.object_doc["generation"], newer.object_doc["record_id"]) == (4, "r4")
