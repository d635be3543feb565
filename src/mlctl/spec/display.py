"""How a diagnostic shows a value from the YAML: on one line.

Contract: :func:`one_line` returns ``text`` with every character that is not printable (newline,
carriage return, tab, NUL, other control and separator characters) replaced by its Python
``repr`` escape (``\\n``, ``\\t``, ``\\x00``, ``\\u2028``), and everything else unchanged, so a
value shown between quotes reads as its repr and a diagnostic never takes more than one line.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with each non-printable character written as its repr escape (see module doc)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
