"""Where a run's input is cut into pieces: pure, streaming, one line at a time.

A piece is a contiguous range of the input's non-blank lines (input order is piece order,
then line order within a piece), as large as one Vertex job may be: at most `limits.rows`
lines and `limits.bytes` bytes (each line counted with its "\\n", as the piece file holds
it). The splitter sees each line's size once and keeps only the piece being filled, so any
input splits in constant memory. `paper_plan` answers the same question for figures alone
(the 10,000,000-row plan in docs/benchmarks.md).
"""

from dataclasses import dataclass

from shared.core.errors import invalid_argument
from shared.jobs.job_limits import JobLimits

# A run's pieces are records of their own (runs/{id}/pieces/{index}); 10,000 pieces of
# 200,000 Gemini requests are two billion rows.
MAX_PIECES = 10_000


@dataclass(frozen=True)
class Piece:
    index: int
    first_line: int  # 0-based position of the piece's first line among the input's lines
    rows: int
    bytes: int


class Splitter:
    """Feed each line's size (`add`); it says when a line starts a new piece."""

    def __init__(self, limits: JobLimits, max_pieces: int = MAX_PIECES):
        self.limits = limits
        self.max_pieces = max_pieces
        self.done: list[Piece] = []
        self.lines = 0
        self._first = 0
        self._rows = 0
        self._bytes = 0

    def _fits(self, size: int) -> bool:
        rows_ok = self.limits.rows is None or self._rows + 1 <= self.limits.rows
        bytes_ok = self.limits.bytes is None or self._bytes + size <= self.limits.bytes
        return rows_ok and bytes_ok

    def add(self, size: int) -> bool:
        """Count one line of `size` bytes (its "\\n" included); True when it opens a piece."""
        if self.limits.bytes is not None and size > self.limits.bytes:
            raise invalid_argument(
                f"Line {self.lines + 1} is {size:,} bytes, more than one job may hold "
                f"({self.limits.bytes:,} bytes, {self.limits.bytes_source}'s limit).",
                field="inputConfig.gcsSource.uris",
            )
        opens = self._rows == 0
        if not opens and not self._fits(size):
            self._close()
            opens = True
        if opens and len(self.done) >= self.max_pieces:
            raise invalid_argument(
                f"The input needs more than {self.max_pieces:,} jobs of at most "
                f"{self.limits.rows or 0:,} lines: split it into several runs.",
                field="inputConfig.gcsSource.uris",
            )
        self._rows += 1
        self._bytes += size
        self.lines += 1
        return opens

    def _close(self) -> None:
        self.done.append(Piece(len(self.done), self._first, self._rows, self._bytes))
        self._first += self._rows
        self._rows = 0
        self._bytes = 0

    def finish(self) -> list[Piece]:
        """Every piece, the last one closed; an empty input has none."""
        if self._rows:
            self._close()
        return self.done


@dataclass(frozen=True)
class PaperPlan:
    pieces: int
    waves: int  # rounds of `concurrent` jobs at once
    rows_per_piece: int


def paper_plan(*, rows: int, size: int, limits: JobLimits, concurrent: int) -> PaperPlan:
    """The fewest pieces for `rows` lines of `size` bytes in all (lines of even size), and
    how many rounds `concurrent` jobs at a time take."""
    by_rows = -(-rows // limits.rows) if limits.rows else 1
    by_bytes = -(-size // limits.bytes) if limits.bytes else 1
    pieces = max(by_rows, by_bytes, 1 if rows else 0)
    return PaperPlan(pieces, -(-pieces // max(concurrent, 1)), -(-rows // pieces) if pieces else 0)
