"""The splitter: contiguous pieces under the per-job limits, any input in constant memory."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.errors import ApiError
from shared.jobs.job_limits import JobLimits
from shared.runs.split import Splitter, paper_plan


def split(sizes, limits, max_pieces=100):
    splitter = Splitter(limits, max_pieces)
    opened = [splitter.add(size) for size in sizes]
    return opened, splitter.finish()


def test_rows_limit_cuts_at_the_limit():
    opened, pieces = split([10] * 5, JobLimits(2, None))
    assert opened == [True, False, True, False, True]
    assert [(p.index, p.first_line, p.rows, p.bytes) for p in pieces] == [
        (0, 0, 2, 20),
        (1, 2, 2, 20),
        (2, 4, 1, 10),
    ]


def test_bytes_limit_counts_every_byte_up_to_the_limit():
    # 30 + 30 + 40 = 100 fits exactly; the next line opens a piece.
    opened, pieces = split([30, 30, 40, 1], JobLimits(None, 100))
    assert opened == [True, False, False, True]
    assert [(p.rows, p.bytes) for p in pieces] == [(3, 100), (1, 1)]


def test_a_line_larger_than_a_job_is_refused():
    with pytest.raises(ApiError) as caught:
        split([10, 101], JobLimits(None, 100, bytes_source="this deployment (x)"))
    assert caught.value.code == 400
    assert "Line 2 is 101 bytes" in caught.value.message
    assert "this deployment (x)" in caught.value.message


def test_too_many_pieces_is_a_400_before_the_next_piece():
    split([1] * 6, JobLimits(2, None), max_pieces=3)  # exactly three pieces: fine
    with pytest.raises(ApiError) as caught:
        split([1] * 7, JobLimits(2, None), max_pieces=3)
    assert "more than 3 jobs" in caught.value.message


def test_no_limits_is_one_piece_and_no_lines_none():
    assert len(split([5] * 1000, JobLimits(None, None))[1]) == 1
    assert split([], JobLimits(1, 1))[1] == []


@given(
    sizes=st.lists(st.integers(1, 50), max_size=200),
    rows=st.one_of(st.none(), st.integers(1, 20)),
    size=st.one_of(st.none(), st.integers(50, 300)),
)
def test_pieces_are_contiguous_within_limits_and_fewest_greedy(sizes, rows, size):
    _, pieces = split(sizes, JobLimits(rows, size), max_pieces=10_000)
    assert sum(p.rows for p in pieces) == len(sizes)
    start = 0
    for number, piece in enumerate(pieces):
        assert piece.index == number and piece.first_line == start
        assert piece.bytes == sum(sizes[start : start + piece.rows])
        assert rows is None or piece.rows <= rows
        assert size is None or piece.bytes <= size
        if number < len(pieces) - 1:  # greedy: the next line would not have fitted
            nxt = sizes[start + piece.rows]
            assert (rows is not None and piece.rows == rows) or (
                size is not None and piece.bytes + nxt > size
            )
        start += piece.rows


def test_paper_plan_of_ten_million_rows():
    # 10,000,000 rows of 200 bytes = 2 GB: the 200,000-request limit binds (50 jobs).
    plan = paper_plan(
        rows=10_000_000, size=2_000_000_000, limits=JobLimits(200_000, 1 << 30), concurrent=8
    )
    assert (plan.pieces, plan.waves, plan.rows_per_piece) == (50, 7, 200_000)
    # Rows of 10 KB: 100 GB, so bytes bind: ceil(1e11 / 2**30) = 94 jobs.
    heavy = paper_plan(
        rows=10_000_000, size=100_000_000_000, limits=JobLimits(200_000, 1 << 30), concurrent=8
    )
    assert heavy.pieces == 94
    assert paper_plan(rows=0, size=0, limits=JobLimits(1, 1), concurrent=1).pieces == 0
