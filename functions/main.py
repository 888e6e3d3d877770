"""The three Cloud Functions entry points: check the event, pick out a few fields, call shared/."""

import contextlib

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared.api import routes
from shared.jobs import finalize, lifecycle

# The OpenAI door's job_end and tick hooks (batch files, webhooks), in every function.
from shared.openai import batches, uploads, webhooks  # noqa: F401
from shared.runs import drive

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


@functions_framework.http
def passthrough(request):
    return routes.handle(request)


def framework_error(error):
    """Requests the framework refuses before any function runs (a path it cannot route,
    such as one holding a newline) get the route's error shape too, not an HTML page."""
    return routes.framework_error(
        error.code or 500, error.description or error.name, flask.request.path
    )


# AssertionError only when several apps are made at once in one process (tests): the app
# being set up has already served, and keeps the framework's own error pages.
with contextlib.suppress(AssertionError):
    functions_framework.errorhandler(HTTPException)(framework_error)


@functions_framework.cloud_event
def on_job_event(cloud_event):
    if cloud_event["type"] != PUBSUB_PUBLISHED:
        lifecycle.ignore_event(event_type=cloud_event["type"], event_id=cloud_event["id"])
        return
    data = cloud_event.data or {}
    message = data.get("message") or {}
    attributes = message.get("attributes") or {}
    handle = drive.handle_message if drive.is_run_event(attributes) else lifecycle.handle_message
    handle(
        message_id=message.get("messageId") or message.get("message_id") or cloud_event["id"],
        data=message.get("data"),
        attributes=attributes,
        delivery_attempt=data.get("deliveryAttempt"),
    )


@functions_framework.cloud_event
def on_output_finalized(cloud_event):
    if cloud_event["type"] != GCS_FINALIZED:
        finalize.ignore_event(event_type=cloud_event["type"], event_id=cloud_event["id"])
        return
    data = cloud_event.data or {}
    finalize.handle_object(
        bucket=data.get("bucket"),
        name=data.get("name"),
        generation=data.get("generation"),
        size=data.get("size"),
    )
