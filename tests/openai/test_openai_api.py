"""The OpenAI Batch API routes on real parts (emulators, simulator): error shapes, uploads,
key isolation, validation, and the output translation written once under redelivery."""

import io
import json
import time

import pytest

from shared.core import clients
from shared.jobs import lifecycle, records
from shared.openai import batches as openai_batches
from shared.openai import files
from tests.support import MASTER_KEY, auth, create_key

JOBS = "/v1/projects/p/locations/us-central1/batchPredictionJobs"


@pytest.fixture
def bob(gateway):
    return create_key(gateway, alias="bob")


def chat_line(custom_id: str, text: str, model: str = "gemini-3.5-flash-lite") -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def upload(gateway, key, data: bytes, purpose="batch", filename="in.jsonl"):
    return gateway.post(
        "/v1/files",
        data={"purpose": purpose, "file": (io.BytesIO(data), filename)},
        headers=auth(key),
        content_type="multipart/form-data",
    )


def jsonl(lines) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def openai_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def create_batch(gateway, key, file_id, **fields):
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    return gateway.post("/v1/batches", json=body, headers=auth(key))


# --- error shapes ----------------------------------------------------------------------------


def test_openai_routes_answer_in_openai_shape_and_the_others_in_google_shape(gateway):
    error = openai_error(gateway.get("/v1/batches"), 401)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    error = openai_error(gateway.get("/v1/files", headers=auth("vbg-not-a-key")), 401)
    assert error["code"] == "invalid_api_key"
    error = openai_error(gateway.put("/v1/batches", headers=auth(MASTER_KEY)), 405)
    assert error["type"] == "invalid_request_error"

    google = gateway.get(JOBS).get_json()
    assert google["error"]["status"] == "UNAUTHENTICATED" and google["error"]["code"] == 401
    unknown = gateway.get("/v1/nothing-here").get_json()
    assert unknown["error"]["status"] == "NOT_FOUND"


def test_every_route_row_names_a_known_error_shape():
    from shared.api import http, routes

    shapes = {r.name: r.errors for r in routes.ROUTES}
    assert all(shape in http.ERROR_SHAPES for shape in shapes.values())
    assert {n for n, s in shapes.items() if s == http.OPENAI} == {
        n for n in shapes if n.startswith("openai.")
    }


# --- files -----------------------------------------------------------------------------------


def test_upload_lands_in_the_staging_bucket_under_the_key(gateway, gcp, alice):
    data = jsonl([chat_line("a", "hi"), chat_line("b", "there")])
    response = upload(gateway, alice, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    file = response.get_json()
    assert file["object"] == "file" and file["purpose"] == "batch"
    assert (file["bytes"], file["filename"]) == (len(data), "in.jsonl")
    doc = clients.firestore().collection("openai_files").document(file["id"]).get().to_dict()
    key_id = doc["owner_key_id"]
    assert doc["uri"] == f"gs://{gcp['bucket']}/openai/{key_id}/files/{file['id']}.jsonl"
    blob = clients.storage().bucket(gcp["bucket"]).blob(f"openai/{key_id}/files/{file['id']}.jsonl")
    assert blob.download_as_bytes() == data
    content = gateway.get(f"/v1/files/{file['id']}/content", headers=auth(alice))
    assert content.status_code == 200 and content.data == data


@pytest.mark.parametrize(
    ("data", "purpose", "param"),
    [
        (b'{"a": 1}\n', "fine-tune", "purpose"),
        (b"", "batch", "file"),
        (b"\n\n", "batch", "file"),
        (b"\xff\xfe not utf-8", "batch", "file"),
    ],
)
def test_uploads_that_cannot_be_batch_inputs_are_refused(gateway, alice, data, purpose, param):
    error = openai_error(upload(gateway, alice, data, purpose=purpose), 400)
    assert error["param"] == param


def test_upload_needs_multipart_with_a_file(gateway, alice):
    as_json = gateway.post("/v1/files", json={"purpose": "batch"}, headers=auth(alice))
    assert "multipart/form-data" in openai_error(as_json, 400)["message"]
    no_file = gateway.post(
        "/v1/files",
        data={"purpose": "batch"},
        headers=auth(alice),
        content_type="multipart/form-data",
    )
    assert openai_error(no_file, 400)["param"] == "file"


def test_line_and_size_limits(gateway, alice, monkeypatch):
    monkeypatch.setattr(files, "MAX_REQUESTS", 3)
    error = openai_error(upload(gateway, alice, b'{"x": 1}\n' * 4), 400)
    assert "at most 3" in error["message"]
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    assert openai_error(upload(gateway, alice, b"x" * 101), 413)["param"] == "file"
    # Past the route's body limit (the file limit plus room for the multipart framing), the
    # body is refused before it is read.
    huge = upload(gateway, alice, b"x" * (100 + 64 * 1024 + 1))
    assert openai_error(huge, 413)["code"] == "file_too_large"


def test_a_key_sees_only_its_own_files(gateway, alice, bob):
    file_id = upload(gateway, alice, jsonl([chat_line("a", "hi")])).get_json()["id"]
    for call in (gateway.get, gateway.delete):
        error = openai_error(call(f"/v1/files/{file_id}", headers=auth(bob)), 404)
        assert file_id in error["message"]
    openai_error(gateway.get(f"/v1/files/{file_id}/content", headers=auth(bob)), 404)
    assert gateway.get("/v1/files", headers=auth(bob)).get_json()["data"] == []
    listed = gateway.get("/v1/files", headers=auth(alice)).get_json()
    assert [f["id"] for f in listed["data"]] == [file_id]
    assert (listed["first_id"], listed["last_id"], listed["has_more"]) == (file_id, file_id, False)
    deleted = gateway.delete(f"/v1/files/{file_id}", headers=auth(alice)).get_json()
    assert deleted == {"id": file_id, "object": "file", "deleted": True}
    openai_error(gateway.get(f"/v1/files/{file_id}", headers=auth(alice)), 404)


# --- batch create ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"endpoint": "/v1/completions"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
    ],
)
def test_batch_create_refuses_bad_fields(gateway, alice, fields, param):
    file_id = upload(gateway, alice, jsonl([chat_line("a", "hi")])).get_json()["id"]
    assert openai_error(create_batch(gateway, alice, file_id, **fields), 400)["param"] == param


def test_batch_create_refuses_unknown_files_and_models_the_key_may_not_use(gateway, alice):
    error = openai_error(create_batch(gateway, alice, "file-nope"), 404)
    assert error["param"] == "file_id"
    pro = upload(gateway, alice, jsonl([chat_line("a", "hi", model="gemini-3.1-pro-preview")]))
    error = openai_error(create_batch(gateway, alice, pro.get_json()["id"]), 403)
    assert error["type"] == "permission_error" and "gemini-3.1-pro-preview" in error["message"]
    nope = upload(gateway, alice, jsonl([chat_line("a", "hi", model="gpt-4o")]))
    error = openai_error(create_batch(gateway, alice, nope.get_json()["id"]), 400)
    assert "gpt-4o" in error["message"]


def test_metadata_becomes_labels_and_the_originals_stay(gateway, alice):
    file_id = upload(gateway, alice, jsonl([chat_line("a", "hi")])).get_json()["id"]
    metadata = {"Project Name": "Apollo 11!", "9lives": "x" * 100, "vbg-key": "spoof"}
    batch = create_batch(gateway, alice, file_id, metadata=metadata).get_json()
    assert batch["metadata"] == metadata
    record = records.get(batch["vertex_job_id"])
    labels = record["labels"]
    assert labels["project_name"] == "apollo_11_"
    assert labels["m9lives"] == "x" * 63
    assert labels["x-vbg-key"] == "spoof"
    assert labels["vbg-key"] == record["owner_key_id"]
    assert labels["vbg-openai-batch"] == batch["id"]


# --- the job's end ---------------------------------------------------------------------------


def sync_until_final(job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lifecycle.sync_job(job_id)
        record = records.get(job_id)
        if record.get("cost_final"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def test_outputs_are_translated_once_under_redelivery(gateway, alice):
    lines = [chat_line(f"q{n}", f"question {n}") for n in range(4)]
    file_id = upload(gateway, alice, jsonl(lines)).get_json()["id"]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "partial"}).get_json()
    record = sync_until_final(batch["vertex_job_id"])

    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    output = gateway.get(f"/v1/files/{done['output_file_id']}/content", headers=auth(alice)).data
    errors = gateway.get(f"/v1/files/{done['error_file_id']}/content", headers=auth(alice)).data
    assert sorted(json.loads(x)["custom_id"] for x in output.splitlines()) == ["q0", "q2"]
    assert sorted(json.loads(x)["custom_id"] for x in errors.splitlines()) == ["q1", "q3"]

    batches = clients.firestore().collection("openai_batches")
    assert openai_batches.finish_for_job(record) == "done"
    # A crash after the files were written but before the batch said so: the retry writes
    # the same files under the same ids, and no second pair appears.
    batches.document(batch["id"]).update({"translated": False})
    assert openai_batches.finish_for_job(record) == "translated"
    again = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert (again["output_file_id"], again["error_file_id"]) == (
        done["output_file_id"],
        done["error_file_id"],
    )
    assert (
        gateway.get(f"/v1/files/{done['output_file_id']}/content", headers=auth(alice)).data
        == output
    )
    outputs = gateway.get("/v1/files?purpose=batch_output", headers=auth(alice)).get_json()
    assert len(outputs["data"]) == 2


def test_a_job_that_failed_puts_every_request_in_the_error_file(gateway, alice):
    file_id = upload(gateway, alice, jsonl([chat_line("a", "x"), chat_line("b", "y")])).get_json()[
        "id"
    ]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "failed"}).get_json()
    sync_until_final(batch["vertex_job_id"])
    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "failed" and done["failed_at"] is not None
    assert done["errors"]["data"][0]["code"] == "batch_failed"
    assert done["output_file_id"] is None
    errors = gateway.get(f"/v1/files/{done['error_file_id']}/content", headers=auth(alice)).data
    assert sorted(
        (json.loads(x)["custom_id"], json.loads(x)["response"]["body"]["error"]["code"])
        for x in errors.splitlines()
    ) == [("a", None), ("b", None)]


def test_the_batch_files_come_from_the_final_files_or_else_the_incremental_ones(storage_only):
    bucket = clients.storage().bucket(storage_only["bucket"])
    directory = "out/prediction-model-2027-01-01T00:00:00.000000Z"
    record = {"output_directory": f"gs://{storage_only['bucket']}/{directory}"}
    for name in (
        "incremental_predictions/predictions_00001.jsonl",
        "incremental_predictions/predictions_00002.jsonl",
        "notes.txt",
    ):
        bucket.blob(f"{directory}/{name}").upload_from_string("{}\n")
    bucket.blob("out/elsewhere/predictions.jsonl").upload_from_string("{}\n")
    names = [file[1] for file in openai_batches.output_files(record)]
    assert names == [
        f"{directory}/incremental_predictions/predictions_00001.jsonl",
        f"{directory}/incremental_predictions/predictions_00002.jsonl",
    ]
    bucket.blob(f"{directory}/predictions.jsonl").upload_from_string("{}\n")
    names = [file[1] for file in openai_batches.output_files(record)]
    assert names == [f"{directory}/predictions.jsonl"]


# --- issue #22 item 11: a line ends at "\n" alone ----------------------------------------------


def test_prompts_with_unicode_line_separators_are_one_line_each(gateway, gcp, alice):
    texts = ["one\u2028two", "three\u2029four", "five\x85six"]
    lines = [chat_line(f"q{n}", text) for n, text in enumerate(texts)]
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    file = upload(gateway, alice, data)
    assert file.status_code == 200, file.get_data(as_text=True)
    batch = create_batch(gateway, alice, file.get_json()["id"])
    assert batch.status_code == 200, batch.get_data(as_text=True)
    assert batch.get_json()["request_counts"]["total"] == 3
    doc = clients.firestore().collection("openai_batches").document(batch.get_json()["id"])
    bucket, _, name = doc.get().to_dict()["input_uri"].removeprefix("gs://").partition("/")
    vertex = clients.storage().bucket(bucket).blob(name).download_as_bytes().decode()
    sent = [json.loads(line) for line in vertex.split("\n") if line]
    assert [line["request"]["contents"][0]["parts"][0]["text"] for line in sent] == texts
