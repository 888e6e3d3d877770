"""Hypothesis strategies of text a client controls (issue #22: the fuzzing sends lone
surrogates too).

Hypothesis leaves lone surrogates (category Cs) out of `st.text()`: JSON's `"\\ud800"` escape
puts one in a Python `str` all the same, and no UTF-8 encoder takes it. `client_text` draws
any code point, lone surrogates included, and the line separators `str.splitlines()` breaks
at.
"""

from hypothesis import strategies as st

SEPARATORS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
CHARACTERS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(SEPARATORS),
)


def client_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(CHARACTERS, max_size=max_size)
