"""`on_output_finalized` through functions-framework, on the Firestore and GCS emulators."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from shared.cost import ledger
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, upload
from tests.support import DEFAULT_MODEL_LIST, cloudevent_client, gateway_env

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
DIRECTORY = "out/prediction-model-2025-03-04T10:01:00.000000Z"
PREDICTIONS = f"{DIRECTORY}/predictions.jsonl"
OVERRIDES = {"input_cost_per_token_batches": 0.001, "output_cost_per_token_batches": 0.002}
OVERRIDE_LIST = DEFAULT_MODEL_LIST.replace(
    "      vertex_location: europe-west4\n",
    "      vertex_location: europe-west4\n"
    + "".join(f"      {field}: {value}\n" for field, value in OVERRIDES.items()),
)


@pytest.fixture
def finalize(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9", model_list=OVERRIDE_LIST)
    return cloudevent_client("on_output_finalized")


def deliver(client, bucket, name, generation, *, event_id=None, event_type=GCS_FINALIZED):
    attributes = {
        "type": event_type,
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "subject": f"objects/{name}",
        "id": event_id or uuid.uuid4().hex,
        "specversion": "1.0",
    }
    data = {"bucket": bucket, "name": name, "generation": str(generation), "size": "10"}
    headers, body = to_binary(CloudEvent(attributes, data))
    return client.post("/", headers=headers, data=body)


def cost_of(job_id):
    return records.get(job_id).get("cost") or {}


def records_of(job_id):
    return list(records.job_ref(job_id).collection(ledger.OUTPUTS).stream())


def test_one_event_priced_once_even_when_redelivered(finalize, gcp):
    bucket = gcp["bucket"]
    make_job(bucket, "201", labels={"env": "prod"})
    data = prediction_bytes(["hello", "there", "general"], fail={2})
    generation = upload(bucket, PREDICTIONS, data)
    want = expected(data)

    for _ in range(2):
        response = deliver(finalize, bucket, PREDICTIONS, generation, event_id="same-id")
        assert response.status_code == 200, response.get_data(as_text=True)
    totals = cost_of("201")
    assert totals["cost_nanos"] == want.cost_nanos > 0
    assert (totals["rows"], totals["succeeded"], totals["failed"]) == (3, 2, 1)
    assert totals["candidates_tokens"] == want.candidates_tokens
    assert len(records_of("201")) == 1
    assert ledger.has_record("201", bucket, PREDICTIONS, generation)


def test_concurrent_deliveries_count_once(finalize, gcp):
    bucket = gcp["bucket"]
    make_job(bucket, "202")
    data = prediction_bytes([f"row {i}" for i in range(20)])
    generation = upload(bucket, PREDICTIONS, data)

    def one(_):
        client = cloudevent_client("on_output_finalized")
        return deliver(client, bucket, PREDICTIONS, generation, event_id="dup").status_code

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(one, range(3))) == [200, 200, 200]
    assert cost_of("202")["cost_nanos"] == expected(data).cost_nanos
    assert cost_of("202")["rows"] == 20
    assert len(records_of("202")) == 1


def test_two_files_of_one_job_are_summed(finalize, gcp):
    bucket = gcp["bucket"]
    make_job(bucket, "203")
    first, second = prediction_bytes(["a", "b"]), prediction_bytes(["c" * 500])
    for name, data in (("predictions_00001.jsonl", first), ("predictions_00002.jsonl", second)):
        path = f"{DIRECTORY}/{name}"
        assert deliver(finalize, bucket, path, upload(bucket, path, data)).status_code == 200
    assert cost_of("203")["cost_nanos"] == expected(first).cost_nanos + expected(second).cost_nanos
    assert cost_of("203")["rows"] == 3


def test_overwritten_object_with_more_rows_replaces_its_cost(finalize, gcp):
    """Vertex rewriting a file with more rows adds cost (a rewrite with less removes none:
    tests/cost/test_ledger.py, tests/jobs/test_tamper.py)."""
    bucket = gcp["bucket"]
    make_job(bucket, "204")
    old, new = prediction_bytes(["e"]), prediction_bytes(["a", "b", "c", "d"])
    old_generation = upload(bucket, PREDICTIONS, old)
    assert deliver(finalize, bucket, PREDICTIONS, old_generation).status_code == 200
    assert cost_of("204")["rows"] == 1
    new_generation = upload(bucket, PREDICTIONS, new)
    assert new_generation > old_generation
    assert deliver(finalize, bucket, PREDICTIONS, new_generation).status_code == 200
    # The old generation's event arriving late: that generation is gone, nothing changes.
    assert deliver(finalize, bucket, PREDICTIONS, old_generation).status_code == 200
    assert cost_of("204")["rows"] == 4
    assert cost_of("204")["cost_nanos"] == expected(new).cost_nanos
    [daily] = ledger.daily_rows(start="2025-03-01", end="2025-03-31")
    assert daily["cost_nanos"] == expected(new).cost_nanos


@pytest.mark.parametrize(
    "name",
    [
        f"{DIRECTORY}/errors.jsonl",
        "out/notes/predictions.jsonl",
        f"{DIRECTORY}/sub/predictions.jsonl",
        "elsewhere/prediction-model-2025-03-04T10:01:00.000000Z/predictions.jsonl",
    ],
)
def test_objects_that_are_no_jobs_predictions_are_ignored(finalize, gcp, name):
    bucket = gcp["bucket"]
    make_job(bucket, "205")
    generation = upload(bucket, name, prediction_bytes(["a"]))
    assert deliver(finalize, bucket, name, generation).status_code == 200
    assert cost_of("205") == {}
    assert records_of("205") == []


def test_missing_object_and_other_event_types_are_acknowledged(finalize, gcp):
    """A generation gone before it was priced is acknowledged and recorded as vanished (a
    tamper event: tests/jobs/test_books_floor.py)."""
    from shared.core import clients

    clients.publisher().create_topic(name=clients.topic_path("batch-job-alerts"))
    bucket = gcp["bucket"]
    make_job(bucket, "206")
    assert deliver(finalize, bucket, PREDICTIONS, 12345).status_code == 200
    [vanished] = [r.to_dict() for r in records_of("206")]
    assert vanished["tamper"] == {"reason": "vanished before it was priced"}
    response = deliver(
        finalize, bucket, PREDICTIONS, 1, event_type="google.cloud.storage.object.v1.deleted"
    )
    assert response.status_code == 200
    assert cost_of("206") == {}


def test_jobs_sharing_a_prefix_get_their_own_files(finalize, gcp):
    bucket = gcp["bucket"]
    mine = "out/prediction-model-2025-03-04T12:00:00.000000Z"
    make_job(bucket, "207", output_directory=f"gs://{bucket}/{DIRECTORY}")
    make_job(bucket, "208", create_time="2025-03-04T11:59:00Z")
    # A third job created after that directory's timestamp cannot own it.
    make_job(bucket, "209", create_time="2025-03-05T00:00:00Z")
    data = prediction_bytes(["mine"])
    path = f"{mine}/predictions.jsonl"
    assert deliver(finalize, bucket, path, upload(bucket, path, data)).status_code == 200
    assert cost_of("208")["cost_nanos"] == expected(data).cost_nanos
    assert cost_of("207") == {} and cost_of("209") == {}

    theirs = prediction_bytes(["theirs", "too"])
    generation = upload(bucket, PREDICTIONS, theirs)
    assert deliver(finalize, bucket, PREDICTIONS, generation).status_code == 200
    assert cost_of("207")["rows"] == 2


def test_ambiguous_owner_is_retried_until_the_directory_is_known(finalize, gcp):
    bucket = gcp["bucket"]
    make_job(bucket, "210", create_time="2025-03-04T09:00:00Z")
    make_job(bucket, "211", create_time="2025-03-04T09:30:00Z")
    data = prediction_bytes(["which one"])
    generation = upload(bucket, PREDICTIONS, data)
    assert deliver(finalize, bucket, PREDICTIONS, generation).status_code == 500
    assert cost_of("210") == {} and cost_of("211") == {}

    records.mark("211", output_directory=f"gs://{bucket}/{DIRECTORY}")
    records.index_folder(f"gs://{bucket}/{DIRECTORY}", "211")
    assert deliver(finalize, bucket, PREDICTIONS, generation).status_code == 200
    assert cost_of("211")["cost_nanos"] == expected(data).cost_nanos
    assert cost_of("210") == {}


def test_deployment_price_overrides_apply(finalize, gcp):
    from shared.core.config import model_list

    bucket = gcp["bucket"]
    [europe] = [d for d in model_list().deployments if d.location == "europe-west4"]
    make_job(bucket, "212", deployment=europe)
    data = prediction_bytes(["priced by the override"])
    generation = upload(bucket, PREDICTIONS, data)
    assert deliver(finalize, bucket, PREDICTIONS, generation).status_code == 200
    # The overrides are global rates: the europe deployment adds 3.5 Flash-Lite's 10% uplift.
    overridden = expected(data, overrides=OVERRIDES, location="europe-west4")
    assert overridden.cost_nanos != expected(data, location="europe-west4").cost_nanos
    assert cost_of("212")["cost_nanos"] == overridden.cost_nanos
