"""JSONL: one JSON text per line, and a line ends at "\\n" alone.

`str.splitlines()` also breaks at "\\r", "\\v", "\\f", "\\x1c"-"\\x1e", U+0085, U+2028 and
U+2029; a JSON string may hold U+0085, U+2028 and U+2029 raw (RFC 8259 asks only U+0000-U+001F,
'"' and "\\\\" to be escaped), so such a split cuts a valid record in two. JSON Lines names
"\\n" the line separator (https://jsonlines.org/). Every reader of JSONL in the gateway, the
simulator and `vbg` splits here.

A blank line is one of JSON's insignificant whitespace only (" ", "\\t", "\\r"): it is skipped,
and it still counts when lines are numbered.
"""

import json
from collections.abc import Iterable, Iterator

WHITESPACE = " \t\r\n"
_WHITESPACE_BYTES = WHITESPACE.encode()


def split(text: str) -> list[str]:
    """Every line of `text`, blank ones included; a final "\\n" ends the last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def dumps(value: object, separators: tuple[str, str] = (",", ":")) -> bytes:
    """One record as UTF-8 with its "\\n": characters as they are, except that a string
    holding a lone surrogate (which has no UTF-8 form) keeps JSON's `\\udXXX` escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=separators)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        return json.dumps(value, separators=separators).encode() + b"\n"


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


def numbered_byte_records(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) of each non-blank line of a stream of byte chunks, in
    order, without its "\\n"; numbers count the blank lines. A line longer than a chunk is
    joined once, at its end (never copied chunk after chunk)."""
    pending: list[bytes] = []
    number = 0
    for chunk in chunks:
        lines = chunk.split(b"\n")
        if len(lines) > 1:
            lines[0] = b"".join([*pending, lines[0]])
            pending = []
            for line in lines[:-1]:
                number += 1
                if not is_blank(line):
                    yield number, line
        pending.append(lines[-1])
    rest = b"".join(pending)
    if not is_blank(rest):
        yield number + 1, rest


def byte_records(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a stream of byte chunks, in order, without their "\\n"."""
    return (line for _, line in numbered_byte_records(chunks))


class LineCounter:
    """The non-blank lines of a stream fed in chunks, counted without holding any line."""

    def __init__(self) -> None:
        self.count = 0
        self._open = False  # the current (unended) line has more than whitespace

    def feed(self, data: bytes) -> int:
        *ended, last = data.split(b"\n")
        for part in ended:
            if self._open or not is_blank(part):
                self.count += 1
            self._open = False
        self._open = self._open or not is_blank(last)
        return self.count

    def finish(self) -> int:
        """The count, the last line included even without its "\\n"."""
        if self._open:
            self.count += 1
            self._open = False
        return self.count
