"""`vbg reconcile`'s comparison against a billing-export table built in the BigQuery emulator
from Google's published schema (shared/books/billing_export.py), and the books' job_costs
view fed with the rows the cost-records topic carries. Every figure is set by hand here."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from local.bq_bridge import create_books
from shared.books import billing_export, cost_records, reconcile

DAY = date(2026, 12, 3)
FLASH_LITE = "gemini-3.5-flash-lite"
JOBS = {  # job id -> (intent, nano-dollars booked, create day)
    "101": ("i101", 104_050, "2026-12-03"),
    "102": ("i102", 28_000, "2026-12-03"),
    "103": ("i103", 197_000, "2026-12-04"),
}


def _job(job_id: str) -> dict:
    intent, nanos, day = JOBS[job_id]
    return {
        "name": f"projects/proj-a/locations/global/batchPredictionJobs/{job_id}",
        "model": FLASH_LITE,
        "deployment": {"project": "proj-a", "location": "global", "model": FLASH_LITE + "-001"},
        "owner_key_id": "k" * 16,
        "owner_alias": "ana",
        "team": "search",
        "labels": {"vbg-intent": intent, "vbg-key": "k" * 16},
        "create_time": datetime.fromisoformat(f"{day}T10:00:00+00:00"),
        "cost": {"cost_nanos": nanos, "rows": 3},
        "cost_final": True,
    }


def _charge(job_id, sku: str, cost: float, *, day: str | None = None, currency="USD", rate=1.0):
    intent = JOBS[job_id][0] if job_id else None
    when = f"{day or JOBS[job_id][2]}T12:00:00Z"
    return {
        "billing_account_id": "0000AA-BBBBBB-CCCCCC",
        "service": {"id": "C7E2-9256-1C43", "description": "Vertex AI"},
        "sku": {"id": "AAAA-BBBB-CCCC", "description": sku},
        "usage_start_time": when,
        "usage_end_time": when,
        "project": {"id": "proj-a", "number": "123", "name": "proj-a", "labels": []},
        "labels": [{"key": "vbg-intent", "value": intent}] if intent else [],
        "system_labels": [],
        "location": {"location": "global", "region": "global"},
        "export_time": when,
        "cost": cost,
        "currency": currency,
        "currency_conversion_rate": rate,
        "usage": {"amount": 1.0, "unit": "count"},
        "credits": [],
        "invoice": {"month": "202612"},
        "cost_type": "regular",
        "cost_at_list": cost,
    }


# Each job's charges: its input and output SKUs, adding up to its books (by hand).
MATCHING = [
    _charge("101", "Gemini 3.5 Flash-Lite Batch Input Text", 0.00004),
    _charge("101", "Gemini 3.5 Flash-Lite Batch Output Text", 0.00006405),
    _charge("102", "Gemini 3.5 Flash-Lite Batch Input Text", 0.000028),
    _charge("103", "Gemini 3.5 Flash-Lite Batch Input Text", 0.0001),
    _charge("103", "Gemini 3.5 Flash-Lite Batch Output Text", 0.000097),
    # Another service's charge on the same day is not Vertex AI's.
    {
        **_charge(None, "N1 Predefined Instance Core", 5.0, day="2026-12-03"),
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
    },
]


@pytest.fixture
def tables(bq):
    from google.cloud import bigquery

    client = bq["client"]
    create_books(client, project=bq["project"], dataset="books")
    now = datetime(2026, 12, 5, tzinfo=UTC)
    rows = [cost_records.job_row(job_id=j, job=_job(j), final=True, now=now) for j in JOBS]
    assert client.insert_rows_json(f"{bq['project']}.books.cost_records", rows) == []
    client.create_dataset(f"{bq['project']}.billing", exists_ok=True)
    schema = [bigquery.SchemaField.from_api_repr(f) for f in billing_export.SCHEMA]
    billing = f"{bq['project']}.billing.gcp_billing_export_resource_v1_0000AA_BBBBBB_CCCCCC"
    client.create_table(bigquery.Table(billing, schema=schema))
    return client, billing, f"{bq['project']}.books"


def run(tables, charges):
    client, billing, books = tables
    if charges:
        assert client.insert_rows_json(billing, charges) == []
    return reconcile.reconcile(
        billing_table=billing, books_dataset=books, start=DAY, end=date(2026, 12, 4)
    )


def test_matching_data_is_zero_drift(tables):
    report = run(tables, MATCHING)
    assert report["bookedUsd"] == "0.000329050" == report["billedUsd"]
    assert report["driftUsd"] == "0.000000000" and report["driftPct"] == "0.00"
    assert report["driftGroups"] == [] and report["days"] == []
    assert report["jobs"] == [] and report["chargesWithoutJob"] == []
    assert report["perJobMatching"] is True
    assert [(g["day"], g["model"], g["jobs"]) for g in report["groups"]] == [
        ("2026-12-03", FLASH_LITE, ["101", "102"]),
        ("2026-12-04", FLASH_LITE, ["103"]),
    ]
    assert not reconcile.over_threshold(report, pct=Decimal("0.01"), usd_nanos=0)


def test_planted_drift_an_extra_sku_charge_and_a_missing_job(tables):
    extra = _charge(None, "Gemini 3.5 Flash-Lite Batch Output Text", 0.25, day="2026-12-03")
    unknown_sku = _charge(None, "Vertex AI Pipelines Run", 0.01, day="2026-12-04")
    without_102 = [c for c in MATCHING if (c["labels"] or [{}])[0].get("value") != "i102"]
    report = run(tables, [*without_102, extra, unknown_sku])
    # Billed: 0.00032905 - 0.000028 (102 missing) + 0.25 + 0.01 = 0.26030105.
    assert report["billedUsd"] == "0.260301050"
    assert report["driftUsd"] == "0.259972000"  # billed - 0.00032905 booked
    # 0.259972 / 0.00032905 = 790.0684...: 0.00032905 x 790 = 0.2599495, 0.0000225 left over.
    assert report["driftPct"] == "79006.84"
    drift = {(g["day"], g["model"]): g for g in report["driftGroups"]}
    assert set(drift) == {("2026-12-03", FLASH_LITE), ("2026-12-04", "sku:Vertex AI Pipelines Run")}
    assert drift[("2026-12-03", FLASH_LITE)]["driftUsd"] == "0.249972000"  # +0.25 - 0.000028
    assert drift[("2026-12-03", FLASH_LITE)]["jobs"] == ["101", "102"]
    assert drift[("2026-12-04", "sku:Vertex AI Pipelines Run")]["driftPct"] is None  # no books
    assert report["days"] == [
        {"day": "2026-12-03", "driftUsd": "0.249972000"},
        {"day": "2026-12-04", "driftUsd": "0.010000000"},
    ]
    [missing] = report["jobs"]
    assert missing["jobId"] == "102" and missing["missingFromBilling"] is True
    assert missing["driftUsd"] == "-0.000028000"
    assert reconcile.over_threshold(report, pct=Decimal("5"), usd_nanos=None)
    assert reconcile.over_threshold(report, pct=None, usd_nanos=100_000_000)
    assert not reconcile.over_threshold(report, pct=None, usd_nanos=300_000_000)


def test_charges_of_an_intent_no_job_has_and_no_labels_at_all(tables):
    stray = {**_charge("101", "Gemini 3.5 Flash-Lite Batch Input Text", 0.5)}
    stray["labels"] = [{"key": "vbg-intent", "value": "someone-else"}]
    report = run(tables, [*MATCHING, stray])
    assert report["chargesWithoutJob"] == [{"intent": "someone-else", "billedUsd": "0.500000000"}]


def test_without_intent_labels_jobs_are_not_matched_one_by_one(tables):
    unlabelled = [{**c, "labels": []} for c in MATCHING]
    report = run(tables, unlabelled)
    assert report["perJobMatching"] is False and report["jobs"] == []
    assert report["driftUsd"] == "0.000000000"


def test_money_from_the_exports_floats_and_currencies():
    assert billing_export.usd_nanos(0.00006405, "USD", 1.0) == 64_050
    assert billing_export.usd_nanos(0.1 + 0.2, "USD", 1.0) == 300_000_000  # 0.30000000000000004
    assert billing_export.usd_nanos(9.3, "EUR", 0.93) == 10_000_000_000
    assert billing_export.usd_nanos(None, None, None) == 0
    assert billing_export.usd_nanos(-0.0000000005, "USD", 1.0) == 0  # half to even


@pytest.mark.parametrize(
    "name", ["proj.ds", "proj.ds.t; DROP", "`proj.ds.t`", "", "proj..t", "a.b.c.d e"]
)
def test_table_names_are_checked(name):
    with pytest.raises(reconcile.BadTable):
        reconcile.table_name(name)
    assert reconcile.table_name("my-proj.billing_ds.gcp_billing_export_resource_v1_X")


def test_vbg_reconcile_prints_the_drift_and_exits_3_over_the_threshold(tables, capsys):
    import json

    from shared.cli.main import main

    client, billing, books = tables
    extra = _charge(None, "Gemini 3.5 Flash-Lite Batch Output Text", 0.25, day="2026-12-03")
    assert client.insert_rows_json(billing, [*MATCHING, extra]) == []
    argv = ["reconcile", "--billing-table", billing, "--books-dataset", books]
    argv += ["--from", "2026-12-03", "--to", "2026-12-04"]
    assert main([*argv, "--json"]) == 0  # no threshold given: a report, not a verdict
    report = json.loads(capsys.readouterr().out)
    assert report["driftUsd"] == "0.250000000" and report["overThreshold"] is False
    assert main([*argv, "--threshold-usd", "0.30"]) == 0
    assert main([*argv, "--threshold-pct", "1"]) == 3
    shown = capsys.readouterr().out
    assert "DRIFT" in shown and "2026-12-03" in shown and "0.25" in shown
    assert main([*argv[:-4], "--from", "2026-12-05", "--to", "2026-12-01"]) == 2
    assert "after --to" in capsys.readouterr().err
    assert (
        main(
            [
                "reconcile",
                "--billing-table",
                "nope",
                "--books-dataset",
                books,
                "--from",
                "2026-12-03",
                "--to",
                "2026-12-03",
            ]
        )
        == 2
    )
