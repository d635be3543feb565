"""``rollback``: the incident lever -- the previous production version back in production, now.

Contract: no training and no plan. The operation takes the environment's lock itself (a held
lock raises :class:`~mlctl.errors.LockError` naming the holder), reads the state and lets
:func:`mlctl.engine.rollback.rollback` move production and redeploy in one state write; then,
with the lock released, rewrites the environment's YAML pin (comments kept) so git agrees and
the next plan shows no changes, and with ``commit`` commits that one file (on ``branch``).
Everything a user can get wrong (an unknown model, no earlier version, ``commit`` without a
git repository or with ``write_back`` off, a malformed branch, a ``local`` state backend in CI
without ``allow_local_state``: see :mod:`mlctl.operations.ci`) is refused before any change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.operations.results import RollbackResult
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace


@dataclass(frozen=True)
class RollbackOptions:
    """``to``: the version to restore (default: the previous production version). ``reason``
    goes to state and to the commit. ``commit`` (implied by ``branch``) commits the pin that
    ``write_back`` rewrote. ``allow_local_state``: roll back in CI although the state is a
    local file (lost with the runner)."""

    to: int | None = None
    reason: str | None = None
    write_back: bool = True
    commit: bool = False
    branch: str | None = None
    allow_local_state: bool = False
    lock_timeout: float = 0.0  # seconds to wait for a held state lock (0: fail at once naming the holder)


def commit_message(
    model: str, env: str, from_version: int, to_version: int, reason: str | None, actor: str
) -> str:
    """The write-back commit's message: subject naming model and versions, then why and who."""
    return (
        f"mlctl rollback: {model} in {env} production v{from_version} -> v{to_version}\n\n"
        f"Reason: {reason or '(none given)'}\n"
        f"Actor: {actor}\n"
        f"Model: {model}\n"
        f"Environment: {env}\n"
        f"From-Version: {from_version}\n"
        f"To-Version: {to_version}\n"
    )


def check_branch_name(repo: Path, branch: str) -> None:
    """Refuse a malformed branch name before anything changes (``git check-ref-format``)."""
    import subprocess

    result = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], cwd=repo, capture_output=True, text=True
    )
    if result.returncode != 0 or branch.startswith("-"):
        raise MlctlError(f"--branch {branch!r} is not a valid git branch name")


def rollback(
    ws: Workspace,
    model: str,
    options: RollbackOptions = RollbackOptions(),
    *,
    actor: str | None = None,
    git: GitInfo | None = None,
    operation: str = "rollback",
) -> RollbackResult:
    """Roll ``model`` of ``ws`` back; see the module contract. ``operation`` names the lock's
    holder (a monitor's auto-rollback says which monitor)."""
    from mlctl.engine.rollback import require_model
    from mlctl.engine.rollback import rollback as move_back
    from mlctl.gitops.git import commit_files, current_actor, git_info
    from mlctl.operations.ci import require_lasting_state
    from mlctl.state.backend import locked

    require_lasting_state(ws, "roll back", allowed=options.allow_local_state)
    commit = options.commit or options.branch is not None
    git = git or git_info(ws.repo)
    if commit:
        if not options.write_back:
            raise MlctlError("--commit commits the rewritten pin: it cannot be combined with --no-write-back")
        if git.commit is None:
            raise MlctlError(f"--commit needs a git repository with at least one commit at {ws.repo}")
        if options.branch is not None:
            check_branch_name(ws.repo, options.branch)
    actor = actor or current_actor(ws.repo)
    require_model(ws, model)
    with locked(ws.backend, operation, ws.env, timeout=options.lock_timeout):
        done = move_back(
            ws,
            ws.backend.read(),
            model,
            to=options.to,
            reason=options.reason,
            actor=actor,
            git=git,
            pin=options.write_back,
        )
    result = RollbackResult(
        environment=ws.env,
        model=model,
        from_version=done.from_version,
        to_version=done.to_version,
        endpoints=done.endpoints,
        serial=done.serial,
        write_back=options.write_back,
        mirror=done.mirror,
    )
    if options.write_back:
        from mlctl.gitops.writeback import set_stage_pin

        file = ws.spec.file_of("models", model)
        if set_stage_pin(file, model, "production", done.to_version):
            result.written = file
    if commit and result.written is not None:
        message = commit_message(model, ws.env, done.from_version, done.to_version, options.reason, actor)
        result.commit = commit_files(ws.repo, [result.written], message, branch=options.branch)
        result.branch = options.branch
    return result
