"""Large objects read with several concurrent ranged downloads, yielded in order.

One GCS download stream runs at about 100 MB/s after a first-byte latency of tens of ms:
a 5 GB output read on one stream takes close to a minute before any parsing, and the
parser waits on every chunk. `read_gcs_chunks` keeps `streams` ranged reads in flight, so
the bandwidth of several streams adds up, while the caller still sees the object's bytes
in order, chunk by chunk, with the contract of `usage.read_gcs_chunks`:

- the generation is pinned (the given one, or the live one when the read starts): every
  range names it, so an overwrite during the read cannot mix two versions; a missing
  object or generation raises `usage.ObjectGone` (permanent);
- memory is bounded: at most `streams` chunks are held (in flight or waiting for the
  caller), about `streams * chunk_size` bytes whatever the object's size;
- closing the iterator early cancels the reads not yet started.

`chunks_for` picks this reader for objects of at least `PARALLEL_MIN_BYTES` and the
single-stream one below it, where one request is all it takes.
"""

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from shared.cost import usage

CHUNK_SIZE = usage.CHUNK_SIZE
STREAMS = 8
PARALLEL_MIN_BYTES = 2 * CHUNK_SIZE


class ShortRead(OSError):
    """A range came back shorter than asked: transient, the event is retried."""


def ranges(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) byte ranges covering `size` bytes in order."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    return [(start, min(start + chunk_size, size) - 1) for start in range(0, size, chunk_size)]


def read_gcs_chunks(
    bucket: str,
    name: str,
    generation: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    streams: int = STREAMS,
) -> Iterator[bytes]:
    """The object's bytes in order, `streams` ranged reads at a time (see the docstring)."""
    from google.api_core import exceptions

    found = usage.live_blob(bucket, name, generation)
    uri = found.uri

    def fetch(start: int, end: int) -> bytes:
        try:
            data = found.pinned().download_as_bytes(start=start, end=end, checksum=None)
        except exceptions.NotFound:
            raise usage.ObjectGone(f"{uri} disappeared while being read") from None
        if len(data) != end - start + 1:
            raise ShortRead(f"{uri}: bytes {start}-{end} returned {len(data)} bytes")
        return data

    todo = deque(ranges(found.size, chunk_size))
    if not todo:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, streams), thread_name_prefix="ranged-read")
    in_flight: deque[Future] = deque()
    try:
        while todo or in_flight:
            while todo and len(in_flight) < max(1, streams):
                in_flight.append(pool.submit(fetch, *todo.popleft()))
            yield in_flight.popleft().result()
    finally:
        for future in in_flight:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def chunks_for(
    bucket: str, name: str, generation: int | None, size: int | str | None
) -> Iterator[bytes]:
    """The parallel reader for objects of `PARALLEL_MIN_BYTES` or more, else one stream
    (`size` as the event gives it: GCS writes it as a decimal string)."""
    if size is not None and str(size).isdigit() and int(size) >= PARALLEL_MIN_BYTES:
        return read_gcs_chunks(bucket, name, generation, chunk_size=CHUNK_SIZE, streams=STREAMS)
    return usage.read_gcs_chunks(bucket, name, generation)
