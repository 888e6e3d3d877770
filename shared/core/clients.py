"""Google clients, created lazily and once per process.

Imports happen inside the functions: a cold start pays only for the clients its function
uses. The emulators are picked up from the standard *_EMULATOR_HOST variables.
"""

import functools
import os

from shared.core.config import model_list, settings


@functools.cache
def firestore():
    from google.cloud import firestore as firestore_module

    return firestore_module.Client(
        project=settings().project, database=settings().firestore_database
    )


@functools.cache
def publisher():
    from google.cloud import pubsub_v1

    # Send each message at once: the default batching waits up to 10 ms per publish, and
    # the gateway publishes one event per request.
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))


@functools.cache
def storage():
    from google.cloud import storage as storage_module

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage_module.Client(project=settings().project, credentials=AnonymousCredentials())
    return storage_module.Client(project=settings().project)


@functools.cache
def bigquery():
    """BigQuery, its jobs run in the gateway's project (tables are always named in full);
    `BIGQUERY_EMULATOR_HOST` (a URL) points it at the local emulator."""
    from google.cloud import bigquery as bigquery_module

    project = settings().project
    emulator = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if emulator:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        url = emulator if "://" in emulator else f"http://{emulator}"
        return bigquery_module.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=url),
        )
    return bigquery_module.Client(project=project)


def topic_path(topic: str) -> str:
    if topic.startswith("projects/"):
        return topic
    return f"projects/{settings().project}/topics/{topic}"


def reset() -> None:
    """Forget every client and setting: tests that change the environment call this.

    The key-record cache is `keys.forget_cached()` (keys builds on clients, not the reverse).
    """
    for cached in (firestore, publisher, storage, bigquery, settings, model_list):
        cached.cache_clear()
