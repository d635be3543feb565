"""Reading single cell values the same way everywhere, without pandas: the bool words and
:func:`to_bool`, shared by table coercion (:mod:`mlctl.ml.tables`), training
(:mod:`mlctl.ml.train`) and the numpy-only compiled model (:mod:`mlctl.ml.compiled`)."""

from __future__ import annotations

import numpy as np

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "to_bool"]

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})


def to_bool(value: object) -> bool | None:
    """``True``/``False`` for bool-like values (bools, 0/1, yes/no, true/false, y/n, t/f),
    else None."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        if value == 1:
            return True
        if value == 0:
            return False
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None
