"""Vertex AI batchPredictionJobs over raw REST.

Why not `JobServiceClient`: measured on this project's machine, importing
`google.cloud.aiplatform_v1` costs ~0.9 s of cold start and the full SDK ~2 s, while
google-auth's AuthorizedSession costs ~0.15 s; a Cloud Function pays that on every cold
start, users wait for it. Raw REST also hands back Vertex's own bytes, so fields newer than
any client library flow through to callers unchanged.

Why urllib3 and not requests: each call through a `requests.Session` cost ~0.45 ms more CPU
than the same call through urllib3's pool (measured on this project's machine, 400 GETs of
the simulator each way), and every gateway call makes one; google-auth's `AuthorizedHttp`
adds the credentials (and refreshes them on a 401) as `AuthorizedSession` did.
"""

import functools
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3

from shared.core import logs
from shared.core.config import Deployment, settings
from shared.core.errors import ApiError

JOB_STATES = {
    0: "JOB_STATE_UNSPECIFIED",
    1: "JOB_STATE_QUEUED",
    2: "JOB_STATE_PENDING",
    3: "JOB_STATE_RUNNING",
    4: "JOB_STATE_SUCCEEDED",
    5: "JOB_STATE_FAILED",
    6: "JOB_STATE_CANCELLING",
    7: "JOB_STATE_CANCELLED",
    8: "JOB_STATE_PAUSED",
    9: "JOB_STATE_EXPIRED",
    10: "JOB_STATE_UPDATING",
    11: "JOB_STATE_PARTIALLY_SUCCEEDED",
}
TERMINAL_STATES = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TIMEOUT = urllib3.Timeout(connect=5, read=60)
POOL_SIZE = 32


def state_name(value) -> str:
    """Vertex sends names, or integers when asked for `enum-encoding=int`."""
    if isinstance(value, int):
        return JOB_STATES.get(value, "JOB_STATE_UNSPECIFIED")
    if isinstance(value, str) and value.isdigit():
        return JOB_STATES.get(int(value), "JOB_STATE_UNSPECIFIED")
    return value or "JOB_STATE_UNSPECIFIED"


# Multi-region locations (data residency) and their hosts: Google serves them at
# aiplatform.LOCATION.rep.googleapis.com, not LOCATION-aiplatform.googleapis.com
# (https://docs.cloud.google.com/gemini-enterprise-agent-platform/resources/locations).
MULTI_REGIONS = ("us", "eu")


def endpoint(location: str) -> str:
    """The Vertex host of a location: `global`, a multi-region (`us`, `eu`) or a region."""
    override = settings().vertex_endpoint
    if override:
        return override
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in MULTI_REGIONS:
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


@dataclass(frozen=True)
class Upstream:
    status: int
    content: bytes
    content_type: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict:
        import json

        try:
            value = json.loads(self.content or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


_lock = threading.Lock()


@functools.cache
def _pool(credentials_file: str | None):
    """One connection pool per credential, for the life of the process.

    An `http://` endpoint override is the local simulator: it gets no credentials, so that
    nothing ever looks for Google credentials (or a metadata server) on a laptop.
    """
    pool = urllib3.PoolManager(num_pools=8, maxsize=POOL_SIZE)
    if settings().vertex_endpoint.startswith("http://"):
        return pool
    from google.auth.transport.urllib3 import AuthorizedHttp

    if credentials_file:
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(
            credentials_file, scopes=SCOPES
        )
    else:
        import google.auth

        credentials, _ = google.auth.default(scopes=SCOPES)
    return AuthorizedHttp(credentials, http=pool)


def pool_for(credentials_file: str | None):
    with _lock:
        return _pool(credentials_file)


def call(
    method: str,
    location: str,
    path: str,
    *,
    params: dict | None = None,
    body: bytes | None = None,
    credentials_file: str | None = None,
) -> Upstream:
    """One upstream call; a network failure is a 503 UNAVAILABLE envelope, never a trace.
    No retries and no redirects here: a create must not be sent twice behind the caller's
    back (`submit.call_vertex` decides what to try again)."""
    url = f"{endpoint(location)}/{path.lstrip('/')}"
    if params:
        url += "?" + urlencode(params)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        response = pool_for(credentials_file).request(
            method, url, body=body, headers=headers, timeout=TIMEOUT, retries=False
        )
    except urllib3.exceptions.HTTPError as exc:
        logs.error("vertex unreachable", method=method, url=url, error=repr(exc))
        raise ApiError(
            503, f"Vertex AI is unreachable at {endpoint(location)}; try again shortly."
        ) from None
    return Upstream(
        response.status,
        response.data,
        response.headers.get("Content-Type", "application/json"),
    )


def job_path(version: str, name: str) -> str:
    return f"{version}/{name}"


def get_job(name: str, *, version: str = "v1", credentials_file: str | None = None) -> Upstream:
    location = name.split("/")[3]
    return call("GET", location, job_path(version, name), credentials_file=credentials_file)


def create_job(
    deployment: Deployment, body: bytes, *, version: str = "v1", params: dict | None = None
) -> Upstream:
    parent = f"projects/{deployment.project}/locations/{deployment.location}"
    path = f"{version}/{parent}/batchPredictionJobs"
    return call(
        "POST",
        deployment.location,
        path,
        params=params,
        body=body,
        credentials_file=deployment.credentials,
    )
