"""A catalog change never rewrites closed books; an explicit reprice does, once, recorded
(Firestore and GCS emulators). Figures by hand from the rates the test applies."""

import pytest

from shared.core import clients
from shared.cost import catalog, ledger, pricing, reprice
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, upload, usage_of
from tests.support import gateway_env, reset_process

NAME = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"


@pytest.fixture
def operator_catalog(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    monkeypatch.setenv("VBG_PRICE_CATALOG", "firestore")
    reset_process()
    catalog.forget()
    pricing.cache_clear()
    yield
    catalog.forget()
    pricing.cache_clear()


def _double_flash_lite() -> dict:
    """3.5 Flash-Lite at twice its rates (0.60 / 5.00 online; batch half: 0.30 / 2.50)."""
    entry = dict(catalog.bundled()["models"]["gemini-3.5-flash-lite"])
    entry["prices"] = [
        {
            "from": None,
            "tiers": [
                {
                    "max_prompt_tokens": None,
                    "online": {"input": "0.6", "output": "5", "cached_input": "0.06"},
                }
            ],
        }
    ]
    entry["sources"] = ["operator"]
    return {"gemini-3.5-flash-lite": entry}


def test_a_new_catalog_leaves_the_books_and_a_reprice_books_the_difference_once(
    gcp, operator_catalog
):
    bucket = gcp["bucket"]
    job = make_job(bucket, "777", labels={"team": "x"})
    data = prediction_bytes(["one", "two", "three"])
    generation = upload(bucket, NAME, data)
    usage = usage_of(data)
    before = expected(data).cost_nanos
    assert usage.cost_nanos == before > 0
    assert usage.catalog_version == catalog.bundled()["version"]
    ledger.record_generation(
        job_id="777",
        job=job,
        bucket=bucket,
        name=NAME,
        generation=generation,
        size=len(data),
        usage=usage,
    )
    [doc] = list(ledger._job_ref("777").collection(ledger.OUTPUTS).stream())
    assert doc.to_dict()["catalog_version"] == catalog.bundled()["version"]

    version = catalog.apply(_double_flash_lite(), author="ops", note="fix", origin="operator")
    assert pricing.version().endswith(version)
    # The books did not move: the record keeps its version and cost.
    assert records.get("777")["cost"]["cost_nanos"] == before
    assert doc.reference.get().to_dict()["catalog_version"] == catalog.bundled()["version"]

    result = reprice.reprice("777", records.get("777"), author="ops", note="rates fixed")
    # Every rate doubled: the repriced file costs twice the recorded one.
    assert result["adjustmentNanos"] == result["changeNanos"] == before
    assert records.get("777")["cost"]["cost_nanos"] == 2 * before
    assert records.get("777")["cost"]["repriced_nanos"] == before
    spent = sum(
        d.to_dict().get("cost_nanos", 0)
        for d in clients.firestore().collection(ledger.DAILY).stream()
    )
    assert spent == 2 * before
    again = reprice.reprice("777", records.get("777"), author="ops")
    assert (again["adjustmentNanos"], again["changeNanos"]) == (before, 0)
    assert records.get("777")["cost"]["cost_nanos"] == 2 * before
    stored = (
        ledger._job_ref("777")
        .collection(ledger.GROUPS)
        .document(reprice.REPRICE_DOC)
        .get()
        .to_dict()
    )
    assert [h["change_nanos"] for h in stored["history"]] == [before, 0]
    assert stored["history"][0]["note"] == "rates fixed"
    assert stored["files"][0]["recorded_version"] == catalog.bundled()["version"]
    # The record itself is never rewritten.
    assert doc.reference.get().to_dict()["counters"]["cost_nanos"] == before


def test_a_job_without_counted_files_is_not_repriced(gcp, operator_catalog):
    job = make_job(gcp["bucket"], "778")
    with pytest.raises(reprice.RepriceError, match="no counted output file"):
        reprice.reprice("778", job, author="ops")
