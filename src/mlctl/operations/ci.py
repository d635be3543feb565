"""What a CI runner may do: state that must outlive the runner.

Contract: :func:`in_ci` is true when ``$CI`` says so (``true``, ``1`` or ``yes``: GitHub
Actions, GitLab CI and most others set ``CI=true``). :func:`require_lasting_state` raises
:class:`~mlctl.errors.MlctlError` (one line: why, and how to move to S3) when an operation that
writes state runs in CI against a ``local`` backend, unless ``allowed``. A CI runner is
ephemeral: a local state file written there is gone when the job ends, so the next run starts
from empty state, trains and registers v1 again, and nothing records what is live.
Nothing is read or changed before the check.

:func:`trusted_endpoints` reads ``$MLCTL_TRUSTED_ENDPOINTS`` (comma-separated URLs or hosts):
servers a pull request's ``plan --changed`` may send credentials to even when the base branch
does not declare them (see :mod:`mlctl.gitops.endpoints`). :func:`reviewed_run` is true in a
GitHub Actions run that is not for a pull request (``$GITHUB_EVENT_NAME`` set and not
``pull_request*``: a push to ``main``, a manual or scheduled run), which runs merged YAML; there
``plan --changed`` (apply.yml's ``changed`` job) needs no endpoint check.
"""

from __future__ import annotations

import os

from mlctl.errors import MlctlError
from mlctl.workspace import Workspace


def in_ci() -> bool:
    """True when ``$CI`` is ``true``, ``1`` or ``yes`` (any case)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def trusted_endpoints() -> frozenset[str]:
    """The servers listed in ``$MLCTL_TRUSTED_ENDPOINTS``, normalised (empty when unset)."""
    from mlctl.gitops.endpoints import TRUSTED_VARIABLE, parse_trusted

    return parse_trusted(os.environ.get(TRUSTED_VARIABLE))


def pr_labels(given: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The pull request's labels for policies: ``given`` (``--label``) when any, else the
    comma-separated ``$MLCTL_PR_LABELS`` the plan workflow sets; None when neither says."""
    if given:
        return given
    if "MLCTL_PR_LABELS" not in os.environ:
        return None
    return tuple(x.strip() for x in os.environ["MLCTL_PR_LABELS"].split(",") if x.strip())


def reviewed_run() -> bool:
    """True in a GitHub Actions run for anything but a pull request (see the module contract);
    False everywhere else (a pull request, another CI, a laptop), where the check applies."""
    event = os.environ.get("GITHUB_EVENT_NAME", "").strip()
    return bool(event) and not event.startswith("pull_request")


def require_lasting_state(ws: Workspace, command: str, *, allowed: bool) -> None:
    """Refuse ``command`` in CI when ``ws`` keeps its state in a local file; see the module."""
    backend = ws.spec.config.backend
    if allowed or backend.type != "local" or not in_ci():
        return
    path = backend.path or f"state/{ws.env}.json"
    raise MlctlError(
        f"refusing to {command} in CI with a local state backend: {path} lives on this runner and "
        f"is lost when the job ends, so the next run would start from empty state; keep state in "
        f"S3 (set backend: {{type: s3, bucket: ..., key: ...}} in environments/{ws.env}/"
        f"environment.yaml, then run `mlctl init-backend -e {ws.env}`), or pass --allow-local-state"
    )
