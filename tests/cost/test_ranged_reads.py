"""Parallel ranged reads on the GCS emulator: exact bytes, in order, from the pinned generation."""

import hashlib
import os
import time

import pytest

from local.gcs_proxy import GcsProxy
from shared.core import clients
from shared.cost import ranged_reads, usage
from tests.cost.cost_helpers import prediction_bytes, upload
from tests.support import reset_process


def pseudo_random(size: int, seed: str = "x") -> bytes:
    """Bytes that differ at every offset, so a misplaced or repeated range shows."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def test_ranges_cover_every_byte_once_in_order():
    for size in (0, 1, 6, 7, 8, 1000, 1001):
        for chunk in (1, 3, 7, 1000):
            covered = [
                i for start, end in ranged_reads.ranges(size, chunk) for i in range(start, end + 1)
            ]
            assert covered == list(range(size)), (size, chunk)
    assert ranged_reads.ranges(10, 4) == [(0, 3), (4, 7), (8, 9)]
    with pytest.raises(ValueError):
        ranged_reads.ranges(10, 0)


@pytest.mark.parametrize(
    ("size", "chunk_size", "streams"),
    [
        (0, 8, 4),
        (1, 8, 4),
        (1, 1, 3),
        (997, 7, 5),
        (4096, 4096, 2),
        (4097, 4096, 2),
        (65_537, 1000, 8),
    ],
)
def test_returns_exactly_the_objects_bytes(storage_only, size, chunk_size, streams):
    bucket = storage_only["bucket"]
    data = pseudo_random(size)
    generation = upload(bucket, "out/obj.bin", data)
    chunks = list(
        ranged_reads.read_gcs_chunks(
            bucket, "out/obj.bin", generation, chunk_size=chunk_size, streams=streams
        )
    )
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [e - s + 1 for s, e in ranged_reads.ranges(size, chunk_size)]


def test_lines_spanning_chunks_price_like_the_whole_file(storage_only):
    bucket = storage_only["bucket"]
    data = prediction_bytes([f"question number {i} " * (i % 5 + 1) for i in range(40)], fail={3})
    generation = upload(bucket, "out/predictions.jsonl", data)
    whole = usage.parse_predictions([data], model="gemini-3.5-flash-lite")
    # 333 bytes: no line fits in one chunk and every line boundary falls mid-chunk.
    chunks = ranged_reads.read_gcs_chunks(
        bucket, "out/predictions.jsonl", generation, chunk_size=333, streams=4
    )
    ranged = usage.parse_predictions(chunks, model="gemini-3.5-flash-lite")
    assert ranged.counters() == whole.counters()
    assert ranged.rows == 40
    assert ranged.failed == 1


def test_missing_object_and_gone_generation_are_object_gone(storage_only):
    bucket = storage_only["bucket"]
    with pytest.raises(usage.ObjectGone):
        list(ranged_reads.read_gcs_chunks(bucket, "out/none.bin", None))
    first = upload(bucket, "out/obj.bin", b"one")
    upload(bucket, "out/obj.bin", b"two")
    with pytest.raises(usage.ObjectGone):
        list(ranged_reads.read_gcs_chunks(bucket, "out/obj.bin", first))


@pytest.fixture
def gcs_proxy(storage_only, monkeypatch):
    """The emulator behind a proxy that honours `generation` on reads, as GCS does."""
    with GcsProxy(os.environ["STORAGE_EMULATOR_HOST"]) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        reset_process()
        yield proxy
    reset_process()


def test_reads_the_pinned_generation_when_overwritten_mid_read(storage_only, gcs_proxy):
    bucket = storage_only["bucket"]
    old = pseudo_random(10_000, seed="old")
    new = pseudo_random(10_000, seed="new")
    generation = upload(bucket, "out/obj.bin", old)
    reader = ranged_reads.read_gcs_chunks(
        bucket, "out/obj.bin", generation, chunk_size=1000, streams=2
    )
    got = [next(reader)]
    # The live object changes under the reader: the ranges still to come must be `old`'s.
    clients.storage().bucket(bucket).blob("out/obj.bin").upload_from_string(new)
    got.extend(reader)
    assert b"".join(got) == old


def test_generation_none_pins_the_live_generation_at_the_start(storage_only, gcs_proxy):
    bucket = storage_only["bucket"]
    old = pseudo_random(5_000, seed="old")
    upload(bucket, "out/obj.bin", old)
    reader = ranged_reads.read_gcs_chunks(bucket, "out/obj.bin", None, chunk_size=500, streams=2)
    got = [next(reader)]
    clients.storage().bucket(bucket).blob("out/obj.bin").upload_from_string(b"n" * 5_000)
    got.extend(reader)
    assert b"".join(got) == old


def test_reads_at_most_a_window_ahead(storage_only, gcs_proxy):
    """Bounded memory: a slow consumer holds `streams` ranges at most, not the object."""
    bucket = storage_only["bucket"]
    generation = upload(bucket, "out/obj.bin", pseudo_random(100_000))
    reader = ranged_reads.read_gcs_chunks(
        bucket, "out/obj.bin", generation, chunk_size=1000, streams=3
    )
    before = gcs_proxy.requests
    next(reader)
    time.sleep(0.5)
    # the metadata read and the first window of 3 ranges; never the 100 ranges.
    assert gcs_proxy.requests - before == 4
    reader.close()


def test_chunks_for_picks_the_reader_by_size(storage_only, monkeypatch):
    bucket = storage_only["bucket"]
    data = pseudo_random(3000)
    generation = upload(bucket, "out/obj.bin", data)
    monkeypatch.setattr(ranged_reads, "PARALLEL_MIN_BYTES", 2000)
    monkeypatch.setattr(ranged_reads, "CHUNK_SIZE", 1000)
    big = ranged_reads.chunks_for(bucket, "out/obj.bin", generation, 3000)
    small = ranged_reads.chunks_for(bucket, "out/obj.bin", generation, 1999)
    assert b"".join(big) == data == b"".join(small)
    assert big.gi_code is ranged_reads.read_gcs_chunks.__code__
    assert small.gi_code is usage.read_gcs_chunks.__code__
