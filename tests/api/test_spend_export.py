"""Spend exports (`GET /v1/gateway/spend/export`, shared/books/export.py) through the real
HTTP layer: the same filters and scope as the spend report, one row per day and group, CSV
or JSONL, sent as a stream; expected figures from the reference pricer (tests/cost)."""

import csv
import io
import json

import pytest

from shared.books import export
from tests.api.test_spend_api import MARCH, key_id, usd, world  # noqa: F401 (the fixture)
from tests.support import MASTER_KEY, auth


def fetch(world, query, key=MASTER_KEY):  # noqa: F811
    response = world["client"].get(f"/v1/gateway/spend/export?{query}", headers=auth(key))
    return response


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_by_key_is_one_row_per_day_and_key_summing_to_the_report(world):  # noqa: F811
    c = world["costs"]
    response = fetch(world, f"{MARCH}&groupBy=key&format=csv")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="spend-2025-03-01-2025-03-31.csv"' in response.headers["Content-Disposition"]
    assert response.is_streamed
    rows = csv_rows(response)
    alice, carol = key_id(world["alice"]), key_id(world["carol"])
    wanted = sorted(
        [
            ("2025-03-04", alice, "alice", "red", c["301"], 2, 1),
            ("2025-03-05", alice, "alice", "red", c["302"], 1, 0),
            ("2025-03-05", carol, "carol", "blue", c["303"], 3, 0),
        ]
    )  # by day, then key id
    counters = [(int(r["costNanos"]), int(r["rows"]), int(r["failed"])) for r in rows]
    names = [(r["day"], r["keyId"], r["alias"], r["team"]) for r in rows]
    assert [(*n, *c) for n, c in zip(names, counters, strict=True)] == wanted
    assert [r["costUsd"] for r in rows] == [usd(w[4]) for w in wanted]
    report = world["client"].get(f"/v1/gateway/spend?{MARCH}", headers=auth(MASTER_KEY))
    assert usd(sum(int(r["costNanos"]) for r in rows)) == report.get_json()["totals"]["costUsd"]


def test_jsonl_by_label_keeps_the_jobs_without_the_label(world):  # noqa: F811
    c = world["costs"]
    response = fetch(world, f"{MARCH}&groupBy=label:env&format=jsonl")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/jsonl")
    lines = response.get_data().split(b"\n")
    assert lines[-1] == b""
    rows = [json.loads(line) for line in lines[:-1]]
    assert [(r["day"], r["label"], r["value"], r["costNanos"]) for r in rows] == [
        ("2025-03-04", "env", "prod", c["301"]),
        ("2025-03-05", "env", None, c["303"]),
        ("2025-03-05", "env", "dev", c["302"]),
    ]
    assert [r["costUsd"] for r in rows] == [usd(c["301"]), usd(c["303"]), usd(c["302"])]


def test_the_export_keeps_the_callers_scope(world):  # noqa: F811
    c = world["costs"]
    rows = csv_rows(fetch(world, f"{MARCH}&groupBy=team", world["carol"]))
    assert [(r["day"], r["team"], int(r["costNanos"])) for r in rows] == [
        ("2025-03-05", "blue", c["303"])
    ]
    rows = csv_rows(fetch(world, f"{MARCH}&groupBy=day", world["bob"]))
    assert [(r["day"], int(r["costNanos"])) for r in rows] == [
        ("2025-03-04", c["301"]),
        ("2025-03-05", c["302"]),
    ]
    assert fetch(world, MARCH, key="vbg-not-a-key").status_code == 401


def test_default_format_is_csv_and_an_empty_period_is_a_header(world):  # noqa: F811
    response = fetch(world, "start=2024-01-01&end=2024-01-31&groupBy=model")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text == ",".join(export.columns("model")) + "\r\n"
    assert text.startswith("day,model,rows,succeeded,failed,")
    assert text.rstrip().endswith(",costNanos,costUsd")


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("format=xlsx", ["csv, jsonl"]),
        ("format=csv&groupBy=owner", ["key, team, model, day"]),
        ("formats=csv", ["start, end, groupBy, format"]),
        ("start=2025-03-05&end=2025-03-01", ["after"]),
    ],
)
def test_bad_parameters_are_400_in_the_google_envelope(world, query, names):  # noqa: F811
    response = fetch(world, query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    for name in names:
        assert name in body["error"]["message"]


def test_csv_cells_that_would_run_as_formulas_are_quoted_as_text():
    header = ("day", "alias", "costNanos")
    rows = [
        {"day": "2025-03-04", "alias": '=HYPERLINK("http://x")', "costNanos": -5},
        {"day": "2025-03-04", "alias": "+1", "costNanos": 0},
        {"day": "2025-03-04", "alias": "@sum", "costNanos": 1},
        {"day": "2025-03-04", "alias": "-x", "costNanos": 2},
        {"day": "2025-03-04", "alias": 'a,"b"\nc', "costNanos": 3},
        {"day": "2025-03-04", "alias": None, "costNanos": 4},
    ]
    text = b"".join(export.encode(rows, "csv", header)).decode()
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["day", "alias", "costNanos"],
        ["2025-03-04", '\'=HYPERLINK("http://x")', "-5"],
        ["2025-03-04", "'+1", "0"],
        ["2025-03-04", "'@sum", "1"],
        ["2025-03-04", "'-x", "2"],
        ["2025-03-04", 'a,"b"\nc', "3"],
        ["2025-03-04", "", "4"],
    ]
    lines = list(export.encode(rows[:1], "jsonl", header))
    assert lines == [b'{"day":"2025-03-04","alias":"=HYPERLINK(\\"http://x\\")","costNanos":-5}\n']
