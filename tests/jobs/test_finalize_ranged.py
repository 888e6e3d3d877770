"""A large prediction file is priced through the parallel ranged reader, to the same total."""

from shared.cost import ranged_reads
from shared.jobs import finalize, records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, upload
from tests.support import gateway_env

DIRECTORY = "out/prediction-model-2025-03-04T10:01:00.000000Z"


def test_large_file_priced_through_ranged_reads(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    bucket = gcp["bucket"]
    make_job(bucket, "301", output_directory=f"gs://{bucket}/{DIRECTORY}/")
    data = prediction_bytes([f"row {i} " * (i % 7 + 1) for i in range(60)], fail={5})
    name = f"{DIRECTORY}/predictions.jsonl"
    generation = upload(bucket, name, data)
    monkeypatch.setattr(ranged_reads, "PARALLEL_MIN_BYTES", 1000)
    monkeypatch.setattr(ranged_reads, "CHUNK_SIZE", 777)
    reads = []
    real = ranged_reads.read_gcs_chunks

    def counted(*args, **kwargs):
        for chunk in real(*args, **kwargs):
            reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(ranged_reads, "read_gcs_chunks", counted)
    assert finalize.handle_object(bucket=bucket, name=name, generation=generation, size=len(data))
    assert reads and max(reads) == 777 and sum(reads) == len(data)
    want = expected(data)
    cost = records.get("301")["cost"]
    assert cost["cost_nanos"] == want.cost_nanos
    assert cost["rows"] == 60 and cost["failed"] == 1
