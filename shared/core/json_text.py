"""JSON text from outside the gateway, parsed into values it may store and send on.

JSON's grammar lets a string escape a lone UTF-16 surrogate (`"\\ud800"`), and `json.loads`
returns it as a `str` that no UTF-8 encoder takes: Firestore, GCS object names, Vertex and
the gateway's own replies fail on it later, as a 500 or a 503. RFC 8259 (section 8.2) calls
such strings unpredictable and I-JSON (RFC 7493, section 2.1) forbids them: they are refused
here, where the text is parsed, naming where they were found. Every JSON body of a request
and every line of an OpenAI batch file is parsed here.

The value is walked with a stack, not recursion; nesting too deep for `json.loads` (a
RecursionError, which escapes `except ValueError`) is a ValueError here too.
"""

import json
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


class LoneSurrogate(ValueError):
    """A string of the value holds a lone surrogate; `where` is its path (`a.b[2]`)."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(
            f"{where or 'the value'} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
            "escape), which is not text: send valid Unicode"
        )


def lone_surrogate(value: object) -> str | None:
    """The path of the first string (or object key) holding a lone surrogate, or None."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else str(key)
                if not key.isascii() and _SURROGATE.search(key):
                    return where or "an object key"
                stack.append((path, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{n}]", child) for n, child in enumerate(item))
    return None


class TooDeep(ValueError):
    """Nesting past what `json.loads` recurses into (about a thousand levels)."""

    def __init__(self) -> None:
        super().__init__("it is nested too deeply")


def loads(text: str | bytes, *, surrogates: bool = False) -> object:
    """`json.loads`, refusing lone surrogates (`LoneSurrogate`) and nesting too deep to parse
    (`TooDeep`, where `json.loads` raises RecursionError): both are ValueErrors.
    `surrogates=True` keeps them, for a value that is only compared or re-escaped (an output
    row matched to its input), never stored or sent as text."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if surrogates:
        return value
    where = lone_surrogate(value)
    if where is not None:
        raise LoneSurrogate(where)
    return value
