"""The fixtures give each test its own world on real emulators."""

from google.cloud import firestore

from shared.core import clients


def test_firestore_and_pubsub_and_storage_answer(gcp):
    doc = clients.firestore().collection("probe").document("one")
    doc.set({"n": 1})
    doc.update({"n": firestore.Increment(2)})
    assert doc.get().to_dict() == {"n": 3}

    topic = clients.topic_path("probe-topic")
    clients.publisher().create_topic(name=topic)
    message_id = clients.publisher().publish(topic, b"{}").result(timeout=10)
    assert message_id

    blob = clients.storage().bucket(gcp["bucket"]).blob("a/b.txt")
    blob.upload_from_string(b"hello")
    assert blob.download_as_bytes() == b"hello"


def test_each_test_gets_a_fresh_project(gcp):
    assert list(clients.firestore().collection("probe").stream()) == []
