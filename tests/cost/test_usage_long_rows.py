"""Rows longer than the parser holds (issue #22, item 5): an echoed request padded past 64 MiB
is priced from the row's own `response.usageMetadata`, never from a decoy, in bounded memory.
Every figure is computed by hand from the batch rates of tests/cost/reference.py."""

import json
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cost import usage
from shared.cost.usage import parse_predictions
from tests.cost import reference
from tests.cost.test_usage_properties import JSON_VALUES
from tests.cost.test_usage_properties import gemini_row as gemini_lines

MIB = 1024 * 1024
# A gemini-2.5-pro row of 516k prompt tokens (16,384 of them cached), as Vertex writes it.
LONG_USAGE = {
    "promptTokenCount": 516_000,
    "cachedContentTokenCount": 16_384,
    "candidatesTokenCount": 1_200,
    "thoughtsTokenCount": 800,
    "totalTokenCount": 518_000,
}
# Above 200k prompt tokens, batch: input $1.25, cached $0.25, output $7.5 per 1M tokens.
# (516,000 - 16,384) x 1.25 + 16,384 x 0.25 + (1,200 + 800) x 7.5 = 624,520 + 4,096 + 15,000
# = 643,616 micro-dollars.
LONG_NANOS = 643_616_000
SHORT_USAGE = {"promptTokenCount": 1_000, "candidatesTokenCount": 100}
# Up to 200k, batch: 1,000 x 0.625 + 100 x 5 = 1,125 micro-dollars.
SHORT_NANOS = 1_125_000
DECOY = {"promptTokenCount": 1, "candidatesTokenCount": 1}


def line(row: dict) -> bytes:
    return json.dumps(row).encode() + b"\n"


def short_row() -> bytes:
    return line({"status": "", "request": {}, "response": {"usageMetadata": SHORT_USAGE}})


def padded_row_chunks(pad_bytes: int, chunk: int = usage.CHUNK_SIZE):
    """A row whose echoed request holds `pad_bytes` of text (and decoys), yielded in chunks
    made as they are needed, so that the test holds one chunk at a time too."""
    decoy_text = 'pad "usageMetadata": {"promptTokenCount": 1} \\ { ['
    head = (
        b'{"status": "", "processed_time": "2026-01-01T00:00:00.000+00:00", "request": '
        b'{"generationConfig": {"responseSchema": {"properties": {"usageMetadata": '
        + json.dumps({"type": "OBJECT", "status": "x", "response": DECOY}).encode()
        + b'}}}, "usageMetadata": '
        + json.dumps(DECOY).encode()
        + b', "contents": [{"role": "user", "parts": [{"text": "'
        + json.dumps(decoy_text)[1:-1].encode()
    )
    tail = (
        b'"}]}]}, "response": {"candidates": [{"content": {"parts": [{"text": "ok"}]}}], '
        b'"usageMetadata": '
        + json.dumps(LONG_USAGE).encode()
        + b', "modelVersion": "gemini-2.5-pro"}, "x": {"response": {"usageMetadata": '
        + json.dumps(DECOY).encode()
        + b"}}}\n"
    )
    yield short_row() + head
    unit = b'lorem ipsum \\"quoted\\" \\\\ {[ '  # whole escapes: a piece never ends inside one
    per_chunk = chunk // len(unit)
    left = -(-pad_bytes // len(unit))
    while left > 0:
        yield unit * min(left, per_chunk)
        left -= per_chunk
    yield tail + short_row()


def test_a_row_padded_past_64_mib_is_priced_exactly_in_bounded_memory():
    pad = 65 * MIB
    assert sum(map(len, padded_row_chunks(pad))) > 64 * MIB
    tracemalloc.start()
    try:
        result = parse_predictions(padded_row_chunks(pad), model="gemini-2.5-pro")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.rows, result.succeeded, result.malformed) == (3, 3, 0)
    assert result.prompt_tokens == 516_000 + 2 * 1_000
    assert result.cost_nanos == LONG_NANOS + 2 * SHORT_NANOS
    # The same figure by the reference's own rates (not the parser's).
    long_usd = reference.row_usd("gemini-2.5-pro", LONG_USAGE)
    short_usd = reference.row_usd("gemini-2.5-pro", SHORT_USAGE)
    assert (long_usd + 2 * short_usd) * reference.NANOS_PER_USD == result.cost_nanos
    # At most the line it holds before streaming (two chunks) and a chunk or two in flight.
    assert peak < usage.MAX_LINE_BYTES + 4 * usage.CHUNK_SIZE, peak


def test_memory_does_not_grow_with_the_row():
    peaks = []
    for pad in (40 * MIB, 120 * MIB):
        tracemalloc.start()
        try:
            result = parse_predictions(padded_row_chunks(pad), model="gemini-2.5-pro")
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert result.cost_nanos == LONG_NANOS + 2 * SHORT_NANOS
    assert peaks[1] < peaks[0] + usage.CHUNK_SIZE, peaks


def long_parse(data: bytes, size: int = 5, **kwargs):
    """Every line read as a row too long to hold, in chunks of `size` bytes."""
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return parse_predictions(chunks, max_line_bytes=0, **kwargs)


def test_decoys_are_never_billed_instead_of_the_rows_own_usage():
    request = {"contents": [], "usageMetadata": DECOY, "response": {"usageMetadata": DECOY}}
    rows = [
        # No usage of its own: counted without usage, not priced from the echoed one.
        {"status": "", "request": request, "response": {"candidates": []}},
        # Decoys before and after the response, at the top level and deeper.
        {
            "usageMetadata": DECOY,
            "request": request,
            "response": {"usageMetadata": SHORT_USAGE, "x": {"usageMetadata": DECOY}},
            "y": {"response": {"usageMetadata": DECOY}},
        },
        # A member named like the response inside the response.
        {"status": "", "response": {"response": {"usageMetadata": DECOY}}},
        # A status inside the echo does not fail the row.
        {"request": {"status": "failed"}, "response": {"usageMetadata": SHORT_USAGE}},
    ]
    data = b"".join(map(line, rows))
    for size in (1, 3, 64, len(data)):
        result = long_parse(data, size, model="gemini-2.5-pro")
        assert (result.rows, result.succeeded, result.no_usage_rows) == (4, 4, 2), size
        assert result.prompt_tokens == 2 * 1_000, size
        assert result.cost_nanos == 2 * SHORT_NANOS, size


def test_duplicate_and_escaped_members_read_as_json_loads_reads_them():
    usage_json = json.dumps(SHORT_USAGE).encode()
    decoy_json = json.dumps(DECOY).encode()
    data = (
        # Two responses: json.loads keeps the last one.
        b'{"status": "", "response": {"usageMetadata": ' + decoy_json + b'}, "response": '
        b'{"usageMetadata": ' + usage_json + b"}}\n"
        # Keys spelled with escapes are the same keys.
        b'{"st\\u0061tus": "", "resp\\u006fnse": {"usage\\u004detadata": ' + usage_json + b"}}\n"
        # The last status counts: this row failed.
        b'{"status": "", "response": {"usageMetadata": ' + usage_json + b'}, "status": "boom"}\n'
    )
    whole = parse_predictions([data], model="gemini-2.5-pro")
    for size in (1, 7, len(data)):
        result = long_parse(data, size, model="gemini-2.5-pro")
        assert result.to_dict() == whole.to_dict(), size
        assert (result.rows, result.succeeded, result.failed) == (3, 2, 1)
        assert result.cost_nanos == 2 * SHORT_NANOS
        assert result.failed_samples == [{"line": 3, "message": "boom"}]


def test_broken_long_rows_are_malformed_and_sampled():
    ok = line({"status": "", "response": {"usageMetadata": SHORT_USAGE}})
    broken = [
        ok[:-1] + ok,  # two rows glued
        ok[:-5] + b"\n",  # cut short
        b'{"status": "", "request": {"a": [1, 2}, "response": {}}\n',  # mismatched brackets
        b'[{"status": ""}]\n',  # not an object
        b'{"status": "", "response": {"usageMetadata": {"promptTokenCount": 1e3}}}\n',
        b'{"status": "", "response": {"usageMetadata": {"promptTokenCount": x}}}\n',
        b'{"status": "" "response": {}}\n',  # no comma at the row's own level
        b'{"st\\x": 1}\n',  # a key that is not a JSON string
        b"[" * 1100 + b"\n",
        b'{"request": ' + b"[" * 1100 + b"]" * 1100 + b"}\n",  # nested deeper than json.loads
    ]
    data = ok + b"".join(broken) + b" \t \n" + ok
    result = long_parse(data, 3, model="gemini-2.5-pro")
    assert (result.rows, result.succeeded, result.malformed) == (2 + len(broken), 2, len(broken))
    assert result.cost_nanos == 2 * SHORT_NANOS
    assert [s["line"] for s in result.malformed_samples] == [2, 3, 4, 5, 6]
    assert result.malformed_samples[0]["error"] == "extra data after the row"
    assert result.malformed_samples[0]["text"] == (ok[:-1] + ok)[:200].decode()
    assert result.malformed_samples[2]["error"] == "mismatched brackets"
    assert result.malformed_samples[3]["error"] == "not a JSON object"


def test_members_past_their_bound():
    big = "x" * (usage.MEMBER_BYTES + 10)
    # An echoed instance past the bound is dropped: the row has no text to bill, and says so.
    embedding = {
        "instance": {"content": big},
        "predictions": [{"embeddings": {"statistics": {"token_count": 3}}}],
        "status": "",
    }
    result = long_parse(line(embedding), 4096, model="text-embedding-005")
    assert (result.rows, result.no_usage_rows, result.cost_nanos) == (1, 1, 0)
    assert result.unpriced_samples[0]["reason"] == usage.NO_TEXT
    rows = [
        # A top-level member named like the usage is not read, whatever its length.
        {
            "status": "",
            "usageMetadata": {"pad": big},
            "response": {"usageMetadata": SHORT_USAGE},
        },
        # The row's own usage past the bound: malformed, never priced from a part of it.
        {"status": "", "response": {"usageMetadata": {"promptTokenCount": 5, "pad": big}}},
    ]
    result = long_parse(b"".join(map(line, rows)), 4096, model="gemini-2.5-pro")
    assert (result.rows, result.succeeded, result.malformed) == (2, 1, 1)
    assert result.cost_nanos == SHORT_NANOS
    assert result.malformed_samples[0]["error"] == (
        f"member 'usageMetadata' longer than {usage.MEMBER_BYTES} bytes"
    )


VALID_LINES = st.one_of(
    gemini_lines(),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    JSON_VALUES.map(
        lambda v: json.dumps({"status": "", "request": v}, ensure_ascii=False).encode(
            "utf-8", "replace"
        )
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(VALID_LINES, max_size=8),
    size=st.integers(min_value=1, max_value=64),
    model=st.sampled_from(["gemini-2.5-flash", None]),
)
def test_long_rows_read_as_json_loads_reads_them(lines, size, model):
    data = b"\n".join(lines) + b"\n"
    whole = parse_predictions([data], model=model).to_dict()
    long = long_parse(data, size, model=model).to_dict()
    for sample in whole["malformed_samples"] + long["malformed_samples"]:
        del sample["error"]  # the wording differs; the line and its text do not
    assert long == whole
