"""Exit codes and the user error every `vbg` command raises.

Exit codes: 0 done, 1 unexpected failure (e.g. storage unreachable), 2 the user's input is
wrong (unknown model, missing file, bad URI) or the file holds rows no price covers.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as one line on stderr, no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code
