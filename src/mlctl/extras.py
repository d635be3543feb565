"""Optional dependencies (pyproject extras) and the one message their absence gives.

The Kubernetes client, the redis client, matplotlib and the Grafana dashboard builders are
extras (``mlctl[k8s]``, ``mlctl[redis]``, ``mlctl[report]``, ``mlctl[dashboards]``;
``mlctl[all]`` has every one), so a serving image does not
carry them. Code that needs one imports it through :func:`require`, which turns its absence
into an :class:`~mlctl.errors.MlctlError` naming the extra to install: one line, exit 1, no
traceback (the CLI's error boundary prints it). A ground helper: imports only ``mlctl.errors``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from mlctl.errors import MlctlError

#: extra -> what it enables (for the message)
EXTRAS: dict[str, str] = {
    "k8s": "the Kubernetes provider",
    "redis": "the redis online store",
    "report": "plotting (monitor report histograms, training charts)",
    "dashboards": "building Grafana dashboards (mlctl render --dashboards)",
}


class MissingExtraError(MlctlError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def missing_message(module: str, extra: str) -> str:
    """``"<what> needs the Python package 'X', which is not installed: pip install 'mlctl[E]'"``."""
    what = EXTRAS.get(extra, f"this feature of mlctl[{extra}]")
    root = module.split(".")[0]
    return f"{what} needs the Python package '{root}', which is not installed: pip install 'mlctl[{extra}]'"


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` (from the optional dependencies of ``extra``) and return it.

    Raises :class:`MissingExtraError` when ``module`` (or its top-level package) is not
    installed. Any other import failure (a broken installation) propagates unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] == root:
            raise MissingExtraError(missing_message(module, extra)) from None
        raise


def available(module: str) -> bool:
    """Whether ``module``'s top-level package is installed (without importing it)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False
