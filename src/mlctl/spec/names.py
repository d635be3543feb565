"""Names a user typed that the environment does not define: the did-you-mean hint and the error.

Contract: :func:`did_you_mean` returns ``"did you mean 'x'?"`` for the one closest candidate
(difflib ratio at least 0.6) or None. :func:`not_defined` builds, and does not raise, the
:class:`~mlctl.errors.NotFoundError` every layer uses for "``<kind> '<name>'`` is not defined
in environment ``'<env>'``", with the hint in parentheses when a candidate is close. Both are
pure: no I/O, no imports above the ground floor.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from mlctl.errors import NotFoundError


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest candidate, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def not_defined(
    kind: str, name: str, env: str, choices: Iterable[str] = (), *, listing: bool = False
) -> NotFoundError:
    """``<kind> '<name>' is not defined in environment '<env>' (did you mean 'x'?)``.

    ``choices`` are the names that are defined; without them there is no hint. With
    ``listing``, when no choice is close the hint lists them all (``defined: a, b`` or
    ``defined: none``).
    """
    names = list(choices)
    hint = did_you_mean(name, names)
    if hint is None and listing:
        hint = f"defined: {', '.join(sorted(names)) or 'none'}"
    message = f"{kind} '{name}' is not defined in environment '{env}'"
    return NotFoundError(message + (f" ({hint})" if hint else ""))
