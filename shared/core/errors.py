"""The Google API error envelope, the only error shape the gateway ever returns."""

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

    def __init__(self, code: int, message: str, status: str | None = None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, "UNKNOWN")
        self.details = details or []

    def envelope(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def body(self) -> bytes:
        return json.dumps(self.envelope()).encode()


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details = None
    if field:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return ApiError(400, message, details=details)


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


def internal(message: str = "Internal error; it has been logged.") -> ApiError:
    return ApiError(500, message)
