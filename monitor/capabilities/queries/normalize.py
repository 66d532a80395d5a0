"""One text per statement: comments dropped, literals and placeholders as ``?``, lists collapsed.

``IN (1, 2, 3)``, ``IN (?, ?)`` and ``IN (:ids_1, :ids_2)`` all read ``IN (?)``; a multi-row
``VALUES (?, ?), (?, ?)`` reads ``VALUES (?)``; whitespace is one space. No value of a
parameter or a literal survives, so the text can be stored and shown.
"""
import re

#: Longest statement text kept; the rest is cut (the id is of the cut text).
MAX_CHARS = 1000

_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_STRINGS = re.compile(r"[A-Za-z]?'(?:[^'\\]|\\.|'')*'")
# Placeholders of every DB-API paramstyle: %(name)s, %s, :name (not a ::cast), $1, ?.
_PLACEHOLDERS = re.compile(r"%\(\w+\)s|%s|(?<![:\w]):\w+|\$\d+")
_NUMBERS = re.compile(r"(?<![\w.$?])(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w$])")
_LISTS = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_ROWS = re.compile(r"\(\?\)(?:\s*,\s*\(\?\))+")
_SPACE = re.compile(r"\s+")


def normalize(statement):
    """Return the statement's text with every value replaced, for grouping and display."""
    text = _COMMENTS.sub(" ", statement)
    text = _STRINGS.sub("?", text)
    text = _PLACEHOLDERS.sub("?", text)
    text = _NUMBERS.sub("?", text)
    text = _LISTS.sub("(?)", text)
    text = _ROWS.sub("(?)", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
