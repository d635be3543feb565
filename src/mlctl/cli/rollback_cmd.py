"""``mlctl rollback``: the incident lever."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.engine.rollback import rollback
from mlctl.errors import MlctlError
from mlctl.gitops.git import commit_files, current_actor, git_info
from mlctl.workspace import open_workspace


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


def run(
    repo: Path,
    env: str,
    model: str,
    *,
    to: int | None,
    reason: str | None,
    write_back: bool,
    commit: bool = False,
    branch: str | None = None,
) -> None:
    commit = commit or branch is not None
    ws = open_workspace(repo, env)
    git = git_info(ws.repo)
    if commit:
        if not write_back:
            raise MlctlError("--commit commits the rewritten pin: it cannot be combined with --no-write-back")
        if git.commit is None:
            raise MlctlError(f"--commit needs a git repository with at least one commit at {ws.repo}")
        if branch is not None:
            _check_branch_name(ws.repo, branch)
    actor = current_actor(ws.repo)
    result = rollback(
        ws,
        model,
        to=to,
        reason=reason,
        actor=actor,
        git=git,
        write_back=write_back,
    )
    click.echo(
        f"Rolled back {result.model} in {env}: production v{result.from_version} -> "
        f"v{result.to_version} (state serial {result.serial})."
    )
    for endpoint in result.endpoints:
        click.echo(f"  endpoint.{endpoint} now serves v{result.to_version}")
    if result.written and commit:
        message = commit_message(model, env, result.from_version, result.to_version, reason, actor)
        sha = commit_files(ws.repo, [result.written], message, branch=branch)
        where = f" on branch {branch}" if branch else ""
        click.echo(
            f"  committed production: {result.to_version} in {result.written.relative_to(ws.repo)}"
            f"{where} ({sha[:12]}); push it so the remote agrees"
        )
    elif result.written:
        click.echo(
            f"  wrote production: {result.to_version} to {result.written.relative_to(ws.repo)}; "
            "commit it so git agrees (or pass --commit)"
        )
    elif commit:
        click.echo("  nothing to commit: the YAML already pins this version")
    elif not write_back:
        click.echo(
            f"  the YAML was left as it is; v{result.from_version} is marked rolled back and will not be "
            "promoted again unless pinned by number"
        )


def _check_branch_name(repo: Path, branch: str) -> None:
    """Refuse a malformed --branch before anything changes (``git check-ref-format``)."""
    import subprocess

    result = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], cwd=repo, capture_output=True, text=True
    )
    if result.returncode != 0 or branch.startswith("-"):
        raise MlctlError(f"--branch {branch!r} is not a valid git branch name")
