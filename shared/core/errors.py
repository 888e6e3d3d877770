"""The gateway's errors: the Google API error envelope, and OpenAI's error object for the
routes of the OpenAI Batch API door (the route table says which route uses which)."""

import json

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ApiError(Exception):
    """An error a caller should see, carried up to the HTTP layer as the Google envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        status: str | None = None,
        details=None,
        *,
        param: str | None = None,
        error_code: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")
        self.details = details or []
        self.param = param  # the offending field, when one is to blame
        self.error_code = error_code  # a short machine-readable reason (OpenAI's `code`)

    def envelope(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def body(self) -> bytes:
        return json.dumps(self.envelope()).encode()


# OpenAI's `type` by HTTP status (its API reference's error codes); 4xx default to
# invalid_request_error, 5xx to server_error.
OPENAI_TYPE_BY_CODE = {
    401: "invalid_request_error",
    403: "permission_error",
    429: "rate_limit_error",
}
OPENAI_CODE_BY_CODE = {401: "invalid_api_key", 404: "not_found", 413: "file_too_large"}


def openai_envelope(error: ApiError) -> dict:
    """`{"error": {"message", "type", "param", "code"}}` as OpenAI's API answers."""
    kind = OPENAI_TYPE_BY_CODE.get(error.code)
    if kind is None:
        kind = "server_error" if error.code >= 500 else "invalid_request_error"
    return {
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.param,
            "code": error.error_code or OPENAI_CODE_BY_CODE.get(error.code),
        }
    }


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details = None
    if field:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return ApiError(400, message, details=details, param=field)


def unauthenticated(message: str) -> ApiError:
    return ApiError(401, message)


def permission_denied(message: str) -> ApiError:
    return ApiError(403, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def resource_exhausted(message: str) -> ApiError:
    return ApiError(429, message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, message)
