"""The Vertex simulator against the GCS emulator: routes, states, outputs, faults, clients."""

import json
import sys
import threading
import time
from datetime import datetime

import pytest
import requests

from local import sim_rows
from local.processes import Server, free_port
from local.vertex_sim import SimulatorThread
from shared.core import clients
from tests.support import gemini_request

SPEED = 0.03
PROJECT = "sim-proj"
LOCATION = "us-central1"
TERMINAL = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}


def job_body(bucket, model="gemini-3.5-flash", uris=("gs://x/in.jsonl",), labels=None, name="job"):
    body = {
        "displayName": name,
        "model": model,
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": list(uris)}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{bucket}/out/{name}"},
        },
    }
    if labels:
        body["labels"] = labels
    return body


@pytest.fixture
def sim(storage_only):
    with SimulatorThread(speed=SPEED) as server:
        yield Sim(server, storage_only["bucket"])


class Sim:
    def __init__(self, server: SimulatorThread, bucket: str):
        self.server = server
        self.url = server.url
        self.bucket = bucket
        self.http = requests.Session()

    def jobs_url(self, location: str = LOCATION, version: str = "v1") -> str:
        return f"{self.url}/{version}/projects/{PROJECT}/locations/{location}/batchPredictionJobs"

    def upload(self, path: str, lines) -> str:
        text = "".join(
            (line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines
        )
        clients.storage().bucket(self.bucket).blob(path).upload_from_string(text)
        return f"gs://{self.bucket}/{path}"

    def body(self, **kwargs) -> dict:
        return job_body(self.bucket, **kwargs)

    def create(self, location: str = LOCATION, **kwargs) -> dict:
        response = self.http.post(self.jobs_url(location), json=self.body(**kwargs))
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, name: str, **params) -> dict:
        response = self.http.get(f"{self.url}/v1/{name}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, name: str, until=TERMINAL, timeout: float = 10.0) -> tuple[dict, list[str]]:
        """Poll until the state is in `until`; also returns every state the job went through."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(name)
            if job["state"] in until:
                return job, list(self.server.sim.jobs[name].history)
            time.sleep(SPEED / 3)
        raise AssertionError(f"{name} stayed {job['state']}")

    def output(self, job: dict) -> list[dict]:
        directory = job["outputInfo"]["gcsOutputDirectory"]
        bucket, _, path = directory.removeprefix("gs://").partition("/")
        blob = clients.storage().bucket(bucket).blob(f"{path}/predictions.jsonl")
        return [json.loads(line) for line in blob.download_as_text().split("\n") if line]


def gemini_line(text: str, **extra) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}}


def test_create_echoes_the_request_and_get_returns_the_same_job(sim):
    job = sim.create(labels={"team": "a"}, name="echo")
    prefix = f"projects/{PROJECT}/locations/{LOCATION}/batchPredictionJobs/"
    assert job["name"].startswith(prefix) and job["name"][len(prefix) :].isdigit()
    assert job["state"] == "JOB_STATE_PENDING"
    assert job["displayName"] == "echo"
    assert job["model"] == "publishers/google/models/gemini-3.5-flash"
    assert job["labels"] == {"team": "a"}
    assert job["inputConfig"]["gcsSource"]["uris"] == ["gs://x/in.jsonl"]
    assert job["outputConfig"]["gcsDestination"]["outputUriPrefix"].endswith("/out/echo")
    assert job["createTime"].endswith("Z") and job["updateTime"] == job["createTime"]
    assert "outputInfo" not in job and "startTime" not in job
    assert sim.get(job["name"])["name"] == job["name"]
    beta = sim.http.get(f"{sim.url}/v1beta1/{job['name']}")
    assert beta.status_code == 200 and beta.json()["name"] == job["name"]


@pytest.mark.parametrize(
    "model",
    [
        "publishers/google/models/gemini-3.5-flash-001",
        f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/gemini-3.5-flash-001",
        "gemini-3.5-flash-001",
    ],
)
def test_every_model_form_is_normalised_to_the_publisher_path(sim, model):
    assert sim.create(model=model)["model"] == "publishers/google/models/gemini-3.5-flash-001"


def test_gemini_job_runs_the_states_and_writes_rows_with_usage(sim):
    long_text = "word " * 2000
    lines = [
        {"key": "a", **gemini_line("Hello there")},
        {"key": "b", **gemini_line("Short", generationConfig={"maxOutputTokens": 5})},
        {
            "key": "c",
            **gemini_line("Cache", cachedContent="projects/p/locations/l/cachedContents/1"),
        },
        {"key": "d", **gemini_line(long_text)},
        {"key": "e", "request": {"generationConfig": {"temperature": 0.5}}},
    ]
    uri = sim.upload("in/gemini.jsonl", lines)
    created = sim.create(uris=[uri], name="gemini")
    job, seen = sim.wait(created["name"])
    assert seen[-1] == "JOB_STATE_SUCCEEDED"
    assert "JOB_STATE_RUNNING" in seen
    assert job["completionStats"] == {"successfulCount": "3", "failedCount": "2"}
    directory = job["outputInfo"]["gcsOutputDirectory"]
    created_folder_time = job["createTime"].replace("Z", "").ljust(26, "0") + "Z"
    assert directory == f"gs://{sim.bucket}/out/gemini/prediction-model-{created_folder_time}"
    assert job["createTime"] <= job["startTime"] <= job["endTime"] == job["updateTime"]

    by_key = {row["key"]: row for row in sim.output(job)}
    assert sorted(by_key) == ["a", "b", "c", "d", "e"]
    good, bad = [by_key["a"], by_key["b"], by_key["d"]], [by_key["c"], by_key["e"]]
    for row, line in zip(good, [lines[0], lines[1], lines[3]], strict=True):
        assert row["status"] == ""
        assert row["request"] == line["request"]
        assert row["processed_time"].endswith("+00:00")
        response = row["response"]
        assert response["candidates"][0]["content"]["parts"][0]["text"]
        assert response["candidates"][0]["finishReason"] == "STOP"
        assert response["modelVersion"] == "gemini-3.5-flash"
        assert response["usageMetadata"] == sim_rows.expected_usage(
            "gemini-3.5-flash", line["request"]
        )
        assert response["usageMetadata"]["thoughtsTokenCount"] > 0
    assert good[1]["response"]["usageMetadata"]["candidatesTokenCount"] <= 5
    # Explicit cachedContent is not supported in batch: INVALID_ARGUMENT, no response.
    assert bad[0]["request"] == lines[2]["request"]
    assert "does not support cached content with batch prediction" in bad[0]["status"]
    # A long prompt seen once is full price (implicit caching needs a repeated prefix).
    assert "cachedContentTokenCount" not in good[2]["response"]["usageMetadata"]
    assert "cachedContentTokenCount" not in good[0]["response"]["usageMetadata"]
    assert bad[1]["request"] == lines[4]["request"]
    assert bad[1]["status"].startswith("Bad Request: {") and "contents" in bad[1]["status"]
    assert all("response" not in row for row in bad)


def test_flash_lite_rows_have_no_thoughts_and_a_versioned_model_answers_as_asked(sim):
    line = gemini_line("Hi")
    job, _ = sim.wait(
        sim.create(model="gemini-3.5-flash-lite-001", uris=[sim.upload("in/l.jsonl", [line])])[
            "name"
        ]
    )
    (row,) = sim.output(job)
    assert row["response"]["modelVersion"] == "gemini-3.5-flash-lite-001"
    assert "thoughtsTokenCount" not in row["response"]["usageMetadata"]


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemini-2.5-pro", "gemini-3-pro-preview"])
def test_retired_models_are_not_found_as_vertex_answers(sim, model):
    response = sim.http.post(sim.jobs_url(LOCATION), json=sim.body(model=model))
    assert response.status_code == 404
    assert f"models/{model}` not found" in response.json()["error"]["message"]


def test_thinking_image_output_and_embedding_2_rows(sim):
    line = gemini_line("Draw a cat")
    job, _ = sim.wait(
        sim.create(model="gemini-3-pro-image", uris=[sim.upload("in/img.jsonl", [line])])["name"]
    )
    (row,) = sim.output(job)
    usage = row["response"]["usageMetadata"]
    image = [d for d in usage["candidatesTokensDetails"] if d["modality"] == "IMAGE"]
    assert image == [{"modality": "IMAGE", "tokenCount": 1120}]
    assert usage["thoughtsTokenCount"] > 0  # 3 Pro Image thinks by default
    parts = row["response"]["candidates"][0]["content"]["parts"]
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    embed = {
        "key": "k",
        "request": {
            "content": {
                "parts": [
                    {"text": "a cat"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                ]
            }
        },
    }
    uri = sim.upload("in/e2.jsonl", [embed])
    refused = sim.http.post(
        sim.jobs_url("us-central1"), json=sim.body(model="gemini-embedding-2", uris=[uri])
    )
    assert refused.status_code == 400 and "global, us, eu" in refused.json()["error"]["message"]
    job, _ = sim.wait(sim.create(model="gemini-embedding-2", uris=[uri], location="us")["name"])
    (row,) = sim.output(job)
    assert row["response"]["usageMetadata"]["promptTokensDetails"] == [
        {"modality": "TEXT", "tokenCount": 2},
        {"modality": "IMAGE", "tokenCount": 258},
    ]
    assert row["response"]["usageMetadata"]["promptTokenCount"] == 260


def test_text_embedding_rows(sim):
    lines = [{"content": "Give a short description of a machine learning model:"}, {"nope": 1}]
    uri = sim.upload("in/emb.jsonl", lines)
    job, _ = sim.wait(sim.create(model="text-embedding-005", uris=[uri], name="emb")["name"])
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert job["completionStats"] == {"successfulCount": "1", "failedCount": "1"}
    good, bad = sorted(sim.output(job), key=lambda row: row["status"])
    assert good["instance"] == lines[0] and good["status"] == ""
    (prediction,) = good["predictions"]
    stats = prediction["embeddings"]["statistics"]
    assert stats == {"token_count": 14, "truncated": False}
    assert stats == sim_rows.expected_usage("text-embedding-005", lines[0])
    assert len(prediction["embeddings"]["values"]) == sim_rows.EMBEDDING_DIMENSIONS
    assert bad["instance"] == {"nope": 1} and bad["status"] and "predictions" not in bad


def test_gemini_embedding_rows(sim):
    request = {
        "content": {"parts": [{"text": "Hello World"}]},
        "embed_content_config": {"task_type": "RETRIEVAL_DOCUMENT"},
    }
    uri = sim.upload("in/gemb.jsonl", [{"key": "id_1", "request": request}])
    job, _ = sim.wait(sim.create(model="gemini-embedding-001", uris=[uri])["name"])
    (row,) = sim.output(job)
    assert row["key"] == "id_1" and row["request"] == request and row["status"] == ""
    assert row["response"]["usageMetadata"] == {"promptTokenCount": 3, "totalTokenCount": 3}
    assert len(row["response"]["embedding"]["values"]) == sim_rows.EMBEDDING_DIMENSIONS


def test_wildcard_inputs_are_expanded(sim):
    first = sim.upload("in/many/a.jsonl", [gemini_line("one")])
    sim.upload("in/many/b.jsonl", [gemini_line("two"), gemini_line("three")])
    sim.upload("in/many/skip.txt", ["not a jsonl input"])
    pattern = first.replace("a.jsonl", "*.jsonl")
    job, _ = sim.wait(sim.create(uris=[pattern])["name"])
    assert job["completionStats"]["successfulCount"] == "3"
    assert len(sim.output(job)) == 3


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("this is not json", "line 2: not valid JSON"),
        ({"key": 7, **gemini_line("x")}, "line 2: `key` is a number here but a string on line 1"),
        (
            gemini_line("x", generationConfig={"responseSchema": {"$defs": {"a": {}}}}),
            "line 2: field name '$defs'",
        ),
        ({}, "line 2: an empty object {}"),
    ],
)
def test_an_input_the_importer_rejects_fails_the_whole_job(sim, bad, needle):
    uri = sim.upload("in/import.jsonl", [{"key": "a", **gemini_line("fine")}, bad])
    job, seen = sim.wait(sim.create(uris=[uri])["name"])
    assert seen[-1] == "JOB_STATE_FAILED"
    assert job["error"]["code"] == 3
    assert job["error"]["message"].startswith("Failed to import data. ")
    assert f"{uri} {needle}" in job["error"]["message"]
    assert "completionStats" not in job


def test_a_job_over_vertex_limits_fails(sim):
    uri = sim.upload("in/many.jsonl", [{"content": "x"}] * 30_001)
    job, _ = sim.wait(sim.create(model="text-embedding-005", uris=[uri])["name"], timeout=30)
    assert job["state"] == "JOB_STATE_FAILED" and job["error"]["code"] == 3
    assert "30,001 prompts" in job["error"]["message"]


def test_rows_come_back_shuffled_the_same_way_for_the_same_job(sim):
    lines = [{"key": f"k{i}", **gemini_line(f"row {i}")} for i in range(20)]
    uri = sim.upload("in/order.jsonl", lines)
    job, _ = sim.wait(sim.create(uris=[uri])["name"])
    keys = [row["key"] for row in sim.output(job)]
    assert sorted(keys) == sorted(line["key"] for line in lines)
    assert keys != [line["key"] for line in lines]
    expected = sim_rows.shuffled(
        [line["key"] for line in lines], seed=f"{job['name']}/predictions.jsonl"
    )
    assert keys == expected


def test_jobs_carry_a_model_version_id_and_list_filters_by_model_display_name(sim):
    flash = sim.create(name="flash")
    pro = sim.create(name="pro", model="gemini-3.1-pro-preview")
    assert flash["modelVersionId"] == "1" and sim.get(pro["name"])["modelVersionId"] == "1"

    def names(filter_text):
        response = sim.http.get(sim.jobs_url(), params={"filter": filter_text})
        assert response.status_code == 200, response.text
        return [job["displayName"] for job in response.json().get("batchPredictionJobs", [])]

    assert names('model_display_name="gemini-3.1-pro-preview"') == ["pro"]
    assert names("model_display_name!=gemini-3.1-pro-preview") == ["flash"]
    for rejected in (
        "model=gemini-3.1-pro-preview",
        'update_time>"2020-01-01T00:00:00Z"',
        "state<3",
    ):
        response = sim.http.get(sim.jobs_url(), params={"filter": rejected})
        assert response.status_code == 400, rejected
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_missing_input_fails_the_job_like_vertex(sim):
    job, seen = sim.wait(sim.create(uris=[f"gs://{sim.bucket}/nothing/here.jsonl"])["name"])
    assert seen[-1] == "JOB_STATE_FAILED"
    assert job["error"]["code"] == 3
    assert "Failed to import data" in job["error"]["message"]
    assert "nothing/here.jsonl" in job["error"]["message"]


@pytest.mark.parametrize(
    ("change", "code", "status", "needle"),
    [
        ({"unknownField": 1}, 400, "INVALID_ARGUMENT", 'Unknown name "unknownField"'),
        ({"displayName": 7}, 400, "INVALID_ARGUMENT", "displayName"),
        ({"labels": {"a": 1}}, 400, "INVALID_ARGUMENT", "labels"),
        ({"inputConfig": {"gcsSource": {"uris": "gs://a"}}}, 400, "INVALID_ARGUMENT", "uris"),
        ({"displayName": None}, 400, "INVALID_ARGUMENT", "display_name"),
        ({"model": ""}, 400, "INVALID_ARGUMENT", "model"),
        ({"model": "gemini-9-ultra"}, 404, "NOT_FOUND", "gemini-9-ultra"),
        ({"labels": {"sim-fault": "typo"}}, 400, "INVALID_ARGUMENT", "stuck-queued"),
        ({"model": "publishers/meta/models/llama"}, 404, "NOT_FOUND", "llama"),
        (
            {
                "inputConfig": {
                    "instancesFormat": "bigquery",
                    "bigquerySource": {"inputUri": "bq://a"},
                }
            },
            400,
            "INVALID_ARGUMENT",
            "bq://project.dataset.table",  # a table source is read (local/sim_bigquery.py)
        ),
    ],
)
def test_invalid_creates_answer_in_the_google_envelope(sim, change, code, status, needle):
    body = sim.body()
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    response = sim.http.post(sim.jobs_url(), json=body)
    assert response.status_code == code
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status
    assert needle in error["message"]
    assert sim.http.get(sim.jobs_url()).json() == {}


def test_missing_required_fields_and_bad_json(sim):
    response = sim.http.post(sim.jobs_url(), json={})
    assert response.status_code == 400
    for name in ("display_name", "model", "input_config", "output_config"):
        assert name in response.json()["error"]["message"]
    bad = sim.http.post(sim.jobs_url(), data=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_enum_encoding_int(sim):
    params = {"$alt": "json;enum-encoding=int"}
    created = sim.http.post(sim.jobs_url(), json=sim.body(), params=params).json()
    assert created["state"] == 2
    done, _ = sim.wait(created["name"])
    assert done["state"] == "JOB_STATE_FAILED"
    assert sim.get(created["name"], **params)["state"] == 5
    stuck = sim.create(labels={"sim-fault": "stuck-queued"})
    sim.wait(stuck["name"], until={"JOB_STATE_QUEUED"})
    listed = sim.http.get(sim.jobs_url(), params=params).json()["batchPredictionJobs"]
    assert [job["state"] for job in listed] == [1, 5]


def test_list_filters_order_and_paging(sim):
    uri = sim.upload("in/list.jsonl", [gemini_line("x")])
    done = [sim.create(uris=[uri], name=f"done-{i}", labels={"team": "a"}) for i in range(2)]
    stuck = [
        sim.create(uris=[uri], name=f"stuck-{i}", labels={"sim-fault": "stuck-queued"})
        for i in range(3)
    ]
    other = sim.create(location="europe-west4", uris=[uri], name="elsewhere")
    for job in done:
        sim.wait(job["name"])
    for job in stuck:
        sim.wait(job["name"], until={"JOB_STATE_QUEUED"})

    def names(filter_text="", **params):
        params = {"filter": filter_text, **params} if filter_text else params
        response = sim.http.get(sim.jobs_url(), params=params)
        assert response.status_code == 200, response.text
        return [job["displayName"] for job in response.json().get("batchPredictionJobs", [])]

    assert names() == ["stuck-2", "stuck-1", "stuck-0", "done-1", "done-0"]
    assert names("state=JOB_STATE_SUCCEEDED") == ["done-1", "done-0"]
    assert names('state="JOB_STATE_QUEUED"') == ["stuck-2", "stuck-1", "stuck-0"]
    assert names("state!=JOB_STATE_QUEUED") == ["done-1", "done-0"]
    assert names('display_name="done-0"') == ["done-0"]
    assert names("display_name:stuck") == ["stuck-2", "stuck-1", "stuck-0"]
    assert names('labels.team="a"') == ["done-1", "done-0"]
    assert names("labels.team:*") == ["done-1", "done-0"]
    assert names('labels.team="a" AND display_name="done-1"') == ["done-1"]
    assert names('display_name="done-1" OR display_name="stuck-0"') == ["stuck-0", "done-1"]
    assert names('create_time>"2000-01-01T00:00:00Z" AND state=JOB_STATE_QUEUED') == [
        "stuck-2",
        "stuck-1",
        "stuck-0",
    ]
    assert names('display_name="nothing"') == []
    elsewhere = sim.http.get(sim.jobs_url("europe-west4")).json()["batchPredictionJobs"]
    assert [job["name"] for job in elsewhere] == [other["name"]]

    pages, token = [], None
    while True:
        params = {"pageSize": 2, **({"pageToken": token} if token else {})}
        body = sim.http.get(sim.jobs_url(), params=params).json()
        pages.append([job["displayName"] for job in body["batchPredictionJobs"]])
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == [["stuck-2", "stuck-1"], ["stuck-0", "done-1"], ["done-0"]]

    bad = sim.http.get(sim.jobs_url(), params={"filter": "colour=red"})
    assert bad.status_code == 400 and "colour" in bad.json()["error"]["message"]
    assert sim.http.get(sim.jobs_url(), params={"pageToken": "!!"}).status_code == 400


def test_cancel_moves_through_cancelling_to_cancelled(sim):
    job = sim.create(labels={"sim-fault": "slow"})
    response = sim.http.post(f"{sim.url}/v1/{job['name']}:cancel")
    assert response.status_code == 200 and response.json() == {}
    assert sim.http.post(f"{sim.url}/v1/{job['name']}:cancel").status_code == 200
    cancelled, seen = sim.wait(job["name"])
    assert seen[-2:] == ["JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"]
    assert "JOB_STATE_RUNNING" not in seen
    assert cancelled["state"] == "JOB_STATE_CANCELLED" and "endTime" in cancelled
    assert cancelled["error"] == {"code": 1, "message": "CANCELED"}
    again = sim.http.post(f"{sim.url}/v1/{job['name']}:cancel")
    assert again.status_code == 400
    assert again.json()["error"]["status"] == "FAILED_PRECONDITION"
    missing = sim.http.post(f"{sim.url}/v1/projects/p/locations/l/batchPredictionJobs/1:cancel")
    assert missing.status_code == 404


def test_cancel_while_running_counts_rows_incomplete(sim):
    uri = sim.upload("in/slow.jsonl", [gemini_line("a"), gemini_line("b")])
    job = sim.create(uris=[uri], labels={"sim-fault": "slow"})
    sim.wait(job["name"], until={"JOB_STATE_RUNNING"}, timeout=20)
    time.sleep(SPEED * 2)
    assert sim.http.post(f"{sim.url}/v1/{job['name']}:cancel").status_code == 200
    cancelled, _ = sim.wait(job["name"])
    assert cancelled["state"] == "JOB_STATE_CANCELLED"
    assert cancelled["completionStats"] == {"incompleteCount": "2"}


def output_names(job: dict) -> list[str]:
    directory = job["outputInfo"]["gcsOutputDirectory"]
    bucket, _, path = directory.removeprefix("gs://").partition("/")
    return sorted(
        b.name[len(path) + 1 :] for b in clients.storage().list_blobs(bucket, prefix=path)
    )


def test_rows_are_written_progressively_then_in_one_final_file(sim):
    lines = [gemini_line(f"row {i}") for i in range(8)]
    job, _ = sim.wait(sim.create(uris=[sim.upload("in/eight.jsonl", lines)])["name"])
    assert output_names(job) == [
        "incremental_predictions/predictions_00000.jsonl",
        "incremental_predictions/predictions_00001.jsonl",
        "incremental_predictions/predictions_00002.jsonl",
        "incremental_predictions/predictions_00003.jsonl",
        "predictions.jsonl",
    ]
    directory = job["outputInfo"]["gcsOutputDirectory"]
    bucket, _, path = directory.removeprefix("gs://").partition("/")
    parts = [
        json.loads(line)
        for name in output_names(job)[:4]
        for line in clients.storage()
        .bucket(bucket)
        .blob(f"{path}/{name}")
        .download_as_text()
        .splitlines()
    ]

    def canonical(rows):
        return sorted(json.dumps(row, sort_keys=True) for row in rows)

    assert canonical(parts) == canonical(sim.output(job))  # the same rows, written early


def test_a_job_cancelled_mid_run_keeps_the_rows_it_processed(sim):
    lines = [gemini_line(f"row {i}") for i in range(8)]
    job = sim.create(uris=[sim.upload("in/slow8.jsonl", lines)], labels={"sim-fault": "slow"})
    bucket = clients.storage().bucket(sim.bucket)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [b.name for b in bucket.list_blobs(prefix="out/") if "incremental" in b.name]
        if names:
            break
        time.sleep(SPEED / 3)
    assert sim.http.post(f"{sim.url}/v1/{job['name']}:cancel").status_code == 200
    cancelled, _ = sim.wait(job["name"], timeout=30)
    assert cancelled["state"] == "JOB_STATE_CANCELLED"
    names = output_names(cancelled)
    assert "predictions.jsonl" not in names and names
    kept = len(names) * 2  # two rows per quarter of 8
    stats = cancelled["completionStats"]
    assert stats == {"successfulCount": str(kept), "incompleteCount": str(8 - kept)}


def test_delete_refuses_a_live_job_and_returns_an_operation_done_after_a_delay(sim):
    job = sim.create(labels={"sim-fault": "stuck-queued"})
    refused = sim.http.delete(f"{sim.url}/v1/{job['name']}")
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "FAILED_PRECONDITION"
    sim.http.post(f"{sim.url}/v1/{job['name']}:cancel")
    sim.wait(job["name"])
    started = time.monotonic()
    operation = sim.http.delete(f"{sim.url}/v1/{job['name']}").json()
    assert "done" not in operation and "response" not in operation
    assert operation["name"].startswith(f"projects/{PROJECT}/locations/{LOCATION}/operations/")
    assert operation["metadata"]["@type"].endswith("aiplatform.v1.DeleteOperationMetadata")
    assert set(operation["metadata"]["genericMetadata"]) == {"createTime", "updateTime"}
    assert sim.http.get(f"{sim.url}/v1/{job['name']}").status_code == 404
    assert sim.http.delete(f"{sim.url}/v1/{job['name']}").status_code == 404
    polled = sim.http.get(f"{sim.url}/v1/{operation['name']}").json()
    while not polled.get("done"):
        assert time.monotonic() - started < 5
        assert polled == operation
        time.sleep(0.05)
        polled = sim.http.get(f"{sim.url}/v1/{operation['name']}").json()
    assert time.monotonic() - started >= 0.2
    assert polled == {
        **operation,
        "done": True,
        "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
    }
    beta = sim.http.get(f"{sim.url}/v1beta1/{operation['name']}")
    assert beta.json() == polled
    missing = sim.http.get(f"{sim.url}/v1/projects/p/locations/l/operations/1")
    assert missing.status_code == 404


def test_fault_create_429_creates_nothing(sim):
    response = sim.http.post(sim.jobs_url(), json=sim.body(labels={"sim-fault": "create-429"}))
    assert response.status_code == 429
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert sim.http.get(sim.jobs_url()).json() == {}


def test_fault_failed(sim):
    uri = sim.upload("in/f.jsonl", [gemini_line("a")])
    job, seen = sim.wait(sim.create(uris=[uri], labels={"sim-fault": "failed"})["name"])
    assert seen[-1] == "JOB_STATE_FAILED" and "JOB_STATE_RUNNING" in seen
    assert job["error"]["code"] == 13 and job["error"]["message"]


def test_fault_partial(sim):
    lines = [gemini_line(f"row {i}") for i in range(4)]
    uri = sim.upload("in/p.jsonl", lines)
    job, _ = sim.wait(sim.create(uris=[uri], labels={"sim-fault": "partial"})["name"])
    assert job["state"] == "JOB_STATE_PARTIALLY_SUCCEEDED"
    assert job["completionStats"] == {"successfulCount": "2", "failedCount": "2"}
    rows = {row["request"]["contents"][0]["parts"][0]["text"]: row for row in sim.output(job)}
    assert [bool(rows[f"row {i}"]["status"]) for i in range(4)] == [False, True, False, True]
    assert "response" not in rows["row 1"]


def test_fault_expired(sim):
    job, seen = sim.wait(sim.create(labels={"sim-fault": "expired"})["name"])
    assert seen[-1] == "JOB_STATE_EXPIRED" and "JOB_STATE_RUNNING" not in seen
    assert job["error"]["code"] == 4


def test_fault_slow_and_stuck_queued(sim):
    uri = sim.upload("in/s.jsonl", [gemini_line("a")])
    slow = sim.create(uris=[uri], labels={"sim-fault": "slow"})
    stuck = sim.create(uris=[uri], labels={"sim-fault": "stuck-queued"})
    done, seen = sim.wait(slow["name"], timeout=20)
    assert seen == ["JOB_STATE_PENDING", "JOB_STATE_QUEUED", "JOB_STATE_RUNNING", done["state"]]
    assert done["state"] == "JOB_STATE_SUCCEEDED"
    took = datetime.fromisoformat(done["endTime"]) - datetime.fromisoformat(done["createTime"])
    assert took.total_seconds() >= 3 * 10 * SPEED * 0.95
    _, seen = sim.wait(stuck["name"], until={"JOB_STATE_QUEUED"})
    assert seen == ["JOB_STATE_PENDING", "JOB_STATE_QUEUED"]
    time.sleep(SPEED * 5)
    assert sim.get(stuck["name"])["state"] == "JOB_STATE_QUEUED"


def test_server_wide_create_429_per_location(sim):
    faults = sim.http.post(f"{sim.url}/_sim/faults", json={"create_429_locations": [LOCATION]})
    assert faults.json() == {
        "create_429_locations": [LOCATION],
        "create_reply_seconds": 0.0,
        "fail_inputs": [],
    }
    assert sim.http.post(sim.jobs_url(), json=sim.body()).status_code == 429
    assert sim.http.post(sim.jobs_url("europe-west4"), json=sim.body()).status_code == 200
    assert sim.http.get(f"{sim.url}/_sim/health").json()["jobs"] == 1
    assert sim.http.post(f"{sim.url}/_sim/reset").status_code == 200
    assert sim.http.get(f"{sim.url}/_sim/faults").json() == {
        "create_429_locations": [],
        "create_reply_seconds": 0.0,
        "fail_inputs": [],
    }
    assert sim.http.get(f"{sim.url}/_sim/health").json()["jobs"] == 0
    assert sim.http.post(sim.jobs_url(), json=sim.body()).status_code == 200


def test_server_wide_create_reply_delay_answers_after_the_job_exists(sim):
    set_delay = sim.http.post(f"{sim.url}/_sim/faults", json={"create_reply_seconds": 0.6})
    assert set_delay.json()["create_reply_seconds"] == 0.6
    assert (
        sim.http.post(f"{sim.url}/_sim/faults", json={"create_reply_seconds": 61}).status_code
        == 400
    )
    seen_before_answer = []

    def watch():
        time.sleep(0.3)
        seen_before_answer.append(sim.http.get(f"{sim.url}/_sim/health").json()["jobs"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    assert sim.http.post(sim.jobs_url(), json=sim.body()).status_code == 200
    assert time.monotonic() - started >= 0.6
    watcher.join()
    assert seen_before_answer == [1]
    assert sim.http.post(f"{sim.url}/_sim/reset").status_code == 200
    assert sim.http.get(f"{sim.url}/_sim/faults").json()["create_reply_seconds"] == 0.0


def test_official_job_service_client_over_rest(sim):
    from google.api_core import exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1 import BatchPredictionJob, JobServiceClient, JobState

    client = JobServiceClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=sim.url),
        credentials=AnonymousCredentials(),
    )
    parent = f"projects/{PROJECT}/locations/{LOCATION}"
    uri = sim.upload("in/client.jsonl", [gemini_line("hello")])
    request = BatchPredictionJob(
        display_name="from-client",
        model="publishers/google/models/gemini-3.5-flash",
        input_config={"instances_format": "jsonl", "gcs_source": {"uris": [uri]}},
        output_config={
            "predictions_format": "jsonl",
            "gcs_destination": {"output_uri_prefix": f"gs://{sim.bucket}/out/client"},
        },
        labels={"team": "x"},
    )
    created = client.create_batch_prediction_job(parent=parent, batch_prediction_job=request)
    assert created.state == JobState.JOB_STATE_PENDING
    assert created.model == "publishers/google/models/gemini-3.5-flash"
    sim.wait(created.name)
    fetched = client.get_batch_prediction_job(name=created.name)
    assert fetched.state == JobState.JOB_STATE_SUCCEEDED
    assert fetched.completion_stats.successful_count == 1
    assert fetched.output_info.gcs_output_directory.startswith(f"gs://{sim.bucket}/out/client/")

    stuck = client.create_batch_prediction_job(
        parent=parent,
        batch_prediction_job=BatchPredictionJob(
            request, labels={"sim-fault": "slow", "team": "x"}, display_name="stuck"
        ),
    )
    listed = client.list_batch_prediction_jobs(
        request={"parent": parent, "filter": 'labels.team="x"', "page_size": 1}
    )
    assert [job.display_name for job in listed] == ["stuck", "from-client"]
    client.cancel_batch_prediction_job(name=stuck.name)
    with pytest.raises(exceptions.BadRequest, match="cancel it first"):
        client.delete_batch_prediction_job(name=stuck.name)
    sim.wait(stuck.name)
    assert client.get_batch_prediction_job(name=stuck.name).state == JobState.JOB_STATE_CANCELLED
    with pytest.raises(exceptions.BadRequest, match="cannot be cancelled"):
        client.cancel_batch_prediction_job(name=stuck.name)
    client.delete_batch_prediction_job(name=created.name).result(timeout=10)
    with pytest.raises(exceptions.NotFound):
        client.get_batch_prediction_job(name=created.name)
    with pytest.raises(exceptions.NotFound):
        client.create_batch_prediction_job(
            parent=parent,
            batch_prediction_job=BatchPredictionJob(request, model="gemini-0-nothing"),
        )


def test_cli_subprocess_starts_serves_and_stops(storage_only, log_dir):
    port = free_port()
    server = Server(
        "vertex-sim",
        [
            sys.executable,
            "-m",
            "local.vertex_sim",
            "--port",
            str(port),
            "--speed",
            "0.05",
            "--fail-creates-in-location",
            "asia-east1",
        ],
        port,
        env={"STORAGE_EMULATOR_HOST": storage_only["storage_url"]},
        log_path=log_dir / "vertex-sim.log",
    ).start()
    try:
        server.wait_ready(timeout=30)
        assert requests.get(server.url + "/_sim/health", timeout=5).json()["status"] == "ok"
        base = f"{server.url}/v1/projects/{PROJECT}/locations"
        bucket = storage_only["bucket"]
        body = job_body(bucket, uris=[f"gs://{bucket}/none.jsonl"])
        refused = requests.post(f"{base}/asia-east1/batchPredictionJobs", json=body, timeout=5)
        assert refused.status_code == 429
        job = requests.post(f"{base}/{LOCATION}/batchPredictionJobs", json=body, timeout=5).json()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = requests.get(f"{server.url}/v1/{job['name']}", timeout=5).json()["state"]
            if state == "JOB_STATE_FAILED":
                break
            time.sleep(0.05)
        assert state == "JOB_STATE_FAILED"
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_a_prompt_holding_unicode_line_separators_is_one_row(sim):
    """Issue #22 item 11: the simulator splits its input at "\n" alone, as Vertex does."""
    texts = ["one\u2028two", "three\u2029four", "five\x85six"]
    path = "in/separators.jsonl"
    data = "".join(json.dumps(gemini_line(t), ensure_ascii=False) + "\n" for t in texts)
    clients.storage().bucket(sim.bucket).blob(path).upload_from_string(data.encode())
    created = sim.create(uris=[f"gs://{sim.bucket}/{path}"], name="separators")
    job, _ = sim.wait(created["name"])
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert job["completionStats"] == {"successfulCount": "3"}
    rows = sim.output(job)
    assert sorted(row["request"]["contents"][0]["parts"][0]["text"] for row in rows) == sorted(
        texts
    )


def test_server_wide_failure_of_jobs_by_input(sim):
    """`fail_inputs`: a job whose input URI holds one of the strings ends FAILED (one piece of
    a run); the others run."""
    sim.http.post(f"{sim.url}/_sim/faults", json={"fail_inputs": ["pieces/00001"]})
    failing = sim.upload("runs/x/pieces/00001.jsonl", [gemini_request("a")])
    fine = sim.upload("runs/x/pieces/00000.jsonl", [gemini_request("b")])
    failed = sim.create(uris=(failing,))
    ran = sim.create(uris=(fine,))
    assert sim.wait(failed["name"])[0]["state"] == "JOB_STATE_FAILED"
    assert sim.wait(ran["name"])[0]["state"] == "JOB_STATE_SUCCEEDED"
    sim.http.post(f"{sim.url}/_sim/reset")
    assert sim.http.get(f"{sim.url}/_sim/faults").json()["fail_inputs"] == []
