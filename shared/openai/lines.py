"""The error of one batch input line the gateway will not submit (every translation's)."""


class LineError(ValueError):
    """A line the gateway will not submit; `param` is the offending field (OpenAI's `param`)."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_request"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
