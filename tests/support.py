"""Helpers for tests that drive the gateway through its real HTTP layer.

`gateway_env` points the process at a test model list, a master key and a Vertex endpoint;
`passthrough_client` is functions-framework's own test client for the `passthrough` target.
"""

import json
import os
import uuid
from pathlib import Path

import functions_framework

from shared.core import clients, keys

MAIN = str(Path(__file__).resolve().parents[1] / "functions" / "main.py")
MASTER_KEY = "vbg-master-test-key"

DEFAULT_MODEL_LIST = """
model_list:
  - model_name: gemini-3.5-flash-lite
    litellm_params:
      model: vertex_ai/gemini-3.5-flash-lite
      vertex_project: proj-a
      vertex_location: us-central1
  - model_name: gemini-3.5-flash-lite
    litellm_params:
      model: vertex_ai/gemini-3.5-flash-lite
      vertex_project: proj-a
      vertex_location: europe-west4
  - model_name: gemini-3.1-pro-preview
    litellm_params:
      model: vertex_ai/gemini-3.1-pro-preview
      vertex_project: proj-a
      vertex_location: us-central1
  - model_name: text-embedding-005
    litellm_params:
      model: vertex_ai/text-embedding-005
      vertex_project: proj-a
      vertex_location: us-central1
"""

# The same deployments keeping direct writes (no sealed outputs): Vertex writes into the
# client's folder, as before issue #22; for the tests of what the books do then.
DIRECT_MODEL_LIST = DEFAULT_MODEL_LIST.replace(
    "      vertex_location: us-central1\n",
    "      vertex_location: us-central1\n    model_info: {seal_outputs: false}\n",
).replace(
    "      vertex_location: europe-west4\n",
    "      vertex_location: europe-west4\n    model_info: {seal_outputs: false}\n",
)


def reset_process() -> None:
    """Forget clients, settings and cached key records, after a test changes the environment."""
    clients.reset()
    keys.forget_cached()


def emulator_storage(url: str, project: str = "test"):
    """A storage client on the GCS emulator at `url`, whatever the environment says."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )


def gateway_env(monkeypatch, tmp_path, *, vertex_url: str, model_list: str = DEFAULT_MODEL_LIST):
    """Also a fresh staging bucket (sealed inputs) when the GCS emulator is in use."""
    config = tmp_path / "models.yaml"
    config.write_text(model_list)
    monkeypatch.setenv("VBG_CONFIG", str(config))
    monkeypatch.setenv("VBG_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("VBG_VERTEX_ENDPOINT", vertex_url)
    # Tests tick as fast as they like: a tick of a millisecond makes every open job due at
    # every tick (the backoff itself: tests/jobs/test_sync_schedule.py).
    monkeypatch.setenv("VBG_SYNC_TICK_SECONDS", "0.001")
    if os.environ.get("STORAGE_EMULATOR_HOST") and not os.environ.get("VBG_STAGING_BUCKET"):
        staging = f"staging-{uuid.uuid4().hex[:12]}"
        monkeypatch.setenv("VBG_STAGING_BUCKET", staging)
        reset_process()
        clients.storage().create_bucket(staging)
    reset_process()


def passthrough_client():
    return functions_framework.create_app(target="passthrough", source=MAIN).test_client()


def cloudevent_client(target: str):
    return functions_framework.create_app(
        target=target, source=MAIN, signature_type="cloudevent"
    ).test_client()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def create_key(client, **fields) -> str:
    body = {"alias": "someone", **fields}
    response = client.post("/v1/gateway/keys", json=body, headers=auth(MASTER_KEY))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["key"]


def upload_jsonl(bucket: str, name: str, rows: list) -> str:
    data = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    clients.storage().bucket(bucket).blob(name).upload_from_string(data)
    return f"gs://{bucket}/{name}"


def gemini_request(text: str, max_output_tokens: int | None = None) -> dict:
    request: dict = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if max_output_tokens:
        request["generationConfig"] = {"maxOutputTokens": max_output_tokens}
    return {"request": request}


def job_body(bucket: str, *, model="gemini-3.5-flash-lite", input_uri=None, labels=None) -> dict:
    body = {
        "displayName": "test-job",
        "model": model,
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [input_uri or f"gs://{bucket}/in/input.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{bucket}/out/"},
        },
    }
    if labels:
        body["labels"] = labels
    return body
