"""`vbg jobs get` shows the rows the floor booked at the estimate (issue #22 item 5)."""

from shared.cli.jobs import estimated_note


def test_estimated_rows_are_named_with_vertexs_count_and_the_books():
    cost = {
        "estimatedRows": 4,
        "estimatedUsd": "0.001000000",
        "floor": {"vertexSucceeded": 40, "bookedSucceeded": 36},
    }
    note = estimated_note(cost)
    assert note.startswith("4 rows $0.001")
    assert "Vertex ran 40 ok rows, its files hold 36" in note and "not final" in note


def test_no_estimated_rows_no_line():
    assert estimated_note({"estimatedRows": 0, "floor": None}) is None
    assert estimated_note({}) is None
