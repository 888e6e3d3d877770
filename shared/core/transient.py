"""Would the same work succeed later? Outages yes; bad data and bugs no.

Event handlers raise transient failures (so Pub/Sub or Eventarc redeliver) and acknowledge
everything else after logging it.
"""

import concurrent.futures

from shared.core.errors import ApiError

TRANSIENT_HTTP = (429, 500, 502, 503, 504)


def is_transient(exc: BaseException) -> bool:
    import requests
    from google.api_core import exceptions as gexc

    if isinstance(exc, ApiError):
        return exc.code in TRANSIENT_HTTP
    transient = (
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.TooManyRequests,
        gexc.ResourceExhausted,
        gexc.Aborted,
        gexc.Unknown,
        gexc.GatewayTimeout,
        gexc.RetryError,
        requests.ConnectionError,
        requests.Timeout,
        concurrent.futures.TimeoutError,
        TimeoutError,
        ConnectionError,
    )
    if isinstance(exc, transient):
        return True
    try:
        from google.auth.exceptions import TransportError

        return isinstance(exc, TransportError)
    except ImportError:  # pragma: no cover
        return False
