"""JSONL: one JSON text per line, and a line ends at "\\n" alone.

`str.splitlines()` also breaks at "\\r", "\\v", "\\f", "\\x1c"-"\\x1e", U+0085, U+2028 and
U+2029; a JSON string may hold U+0085, U+2028 and U+2029 raw (RFC 8259 asks only U+0000-U+001F,
'"' and "\\\\" to be escaped), so such a split cuts a valid record in two. JSON Lines names
"\\n" the line separator (https://jsonlines.org/). Every reader of JSONL in the gateway, the
simulator and `vbg` splits here.

A blank line is one of JSON's insignificant whitespace only (" ", "\\t", "\\r"): it is skipped,
and it still counts when lines are numbered.
"""

from collections.abc import Iterable, Iterator

WHITESPACE = " \t\r\n"
_WHITESPACE_BYTES = WHITESPACE.encode()


def split(text: str) -> list[str]:
    """Every line of `text`, blank ones included; a final "\\n" ends the last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def is_blank(line: str | bytes) -> bool:
    if isinstance(line, bytes):
        return not line.strip(_WHITESPACE_BYTES)
    return not line.strip(WHITESPACE)


def records(text: str) -> list[str]:
    """The non-blank lines of `text`, in order."""
    return [line for line in split(text) if not is_blank(line)]


def numbered(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) of each non-blank line: numbers count the blank lines."""
    for number, line in enumerate(split(text), start=1):
        if not is_blank(line):
            yield number, line


def byte_records(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a stream of byte chunks, in order, without their "\\n"."""
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line for line in lines if not is_blank(line))
    if not is_blank(rest):
        yield rest
