"""read_gcs_chunks against the GCS emulator: ranged reads, pinned generation, ObjectGone."""

import json

import pytest

from shared.core import clients
from shared.cost.usage import ObjectGone, parse_predictions, read_file_chunks, read_gcs_chunks


def _file(rows: int) -> bytes:
    line = {
        "status": "",
        "request": {"contents": [{"role": "user", "parts": [{"text": "x" * 300}]}]},
        "response": {
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10},
            "modelVersion": "gemini-2.5-flash",
        },
    }
    return b"".join(json.dumps(line).encode() + b"\n" for _ in range(rows))


def test_reads_an_object_in_ranged_chunks(storage_only, tmp_path):
    data = _file(500)
    blob = clients.storage().bucket(storage_only["bucket"]).blob("job/predictions.jsonl")
    blob.upload_from_string(data)
    chunks = list(read_gcs_chunks(storage_only["bucket"], "job/predictions.jsonl", chunk_size=4096))
    assert b"".join(chunks) == data
    assert len(chunks) == -(-len(data) // 4096)
    result = parse_predictions(
        read_gcs_chunks(storage_only["bucket"], "job/predictions.jsonl", chunk_size=4096)
    )
    local = tmp_path / "p.jsonl"
    local.write_bytes(data)
    assert result.to_dict() == parse_predictions(read_file_chunks(local)).to_dict()
    assert (result.rows, result.cost_nanos) == (500, 500 * (100 * 150 + 10 * 1250))


def test_pinned_generation(storage_only):
    """The generation asked for, or ObjectGone: never the bytes of a newer generation."""
    bucket = storage_only["bucket"]
    blob = clients.storage().bucket(bucket).blob("p.jsonl")
    blob.upload_from_string(_file(3))
    blob.reload()
    old = blob.generation
    blob.upload_from_string(_file(5))
    blob.reload()
    assert blob.generation != old
    chunks = list(read_gcs_chunks(bucket, "p.jsonl", generation=blob.generation))
    assert b"".join(chunks) == _file(5)
    # The emulator keeps no old generations (like a bucket without versioning).
    with pytest.raises(ObjectGone, match=f"generation {old} is gone"):
        list(read_gcs_chunks(bucket, "p.jsonl", generation=old))


def test_missing_object_is_object_gone(storage_only):
    with pytest.raises(ObjectGone):
        list(read_gcs_chunks(storage_only["bucket"], "never/written.jsonl"))
    with pytest.raises(FileNotFoundError):
        list(read_gcs_chunks(storage_only["bucket"], "never/written.jsonl"))


def test_cli_reads_gs_uri(storage_only, capsys):
    from shared.cli.main import main

    clients.storage().bucket(storage_only["bucket"]).blob("o/predictions.jsonl").upload_from_string(
        _file(4)
    )
    code = main(["cost", f"gs://{storage_only['bucket']}/o/predictions.jsonl", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["cost_usd"] == "0.000110000"
    code = main(["cost", f"gs://{storage_only['bucket']}/o/missing.jsonl"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
