"""Git facts for state records, and the one git write mlctl makes (rollback ``--commit``).

GitPython is imported inside the functions, so importing this module costs nothing for
commands that never touch git.

What "dirty" means: the state records the commit an apply was made from, and ``dirty`` says
whether that commit alone does *not* reproduce the desired state that was applied. So only the
inputs of the desired state count -- by default ``environments/`` and ``providers/`` under the
project directory: staged or unstaged changes to tracked files there, and untracked files there
that ``.gitignore`` does not exclude (a new ``environments/prod/extra.yaml`` is merged into the
spec, so it matters). Edits elsewhere (README, notebooks) and mlctl's own outputs (``state/``,
``.mlctl/``) never make an apply dirty -- otherwise the first checkpoint of a committed
``state/prod.json`` would mark every later apply dirty.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.errors import MlctlError
from mlctl.state.document import GitInfo

if TYPE_CHECKING:
    import git

#: Directories (relative to the project) whose contents define the desired state.
DESIRED_STATE_PATHS: tuple[str, ...] = ("environments", "providers")


def _open_repo(path: Path) -> git.Repo | None:
    """The repository containing ``path``, or None (not a repo, no git binary, bad path)."""
    try:
        import git
    except Exception:  # GitPython raises ImportError-likes when no git executable is found
        return None
    try:
        return git.Repo(path, search_parent_directories=True)
    except Exception:
        return None


def _relative_to_worktree(repo: git.Repo, path: Path) -> str | None:
    """``path`` relative to the repository's working tree (POSIX), or None if outside it."""
    if repo.working_tree_dir is None:
        return None
    top = Path(repo.working_tree_dir).resolve()
    target = path if path.is_absolute() else Path.cwd() / path
    try:
        rel = target.resolve().relative_to(top)
    except ValueError:
        return None
    return rel.as_posix()


def git_info(repo: Path, *, inputs: Sequence[str] = DESIRED_STATE_PATHS) -> GitInfo:
    """Commit, branch and dirtiness of the project directory ``repo``. Never raises.

    ``commit`` is the HEAD hexsha (None outside a repository or before the first commit);
    ``branch`` is None when HEAD is detached (as in most CI checkouts of a pull request);
    ``dirty`` covers only ``inputs`` (paths relative to ``repo``), see the module docstring.
    """
    project = Path(repo)
    handle = _open_repo(project)
    if handle is None:
        return GitInfo(commit=None)
    try:
        try:
            commit: str | None = handle.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        branch = None if handle.head.is_detached else handle.active_branch.name
        base = _relative_to_worktree(handle, project)
        if base is None:
            return GitInfo(commit=commit, branch=branch, dirty=False)
        specs = [f"{base}/{p}" if base not in ("", ".") else p for p in inputs]
        status = handle.git.status("--porcelain", "-z", "--untracked-files=all", "--", *specs)
        return GitInfo(commit=commit, branch=branch, dirty=bool(status.strip("\0 \n")))
    except Exception:
        return GitInfo(commit=None)
    finally:
        handle.close()


def _git_identity(repo: Path | None) -> tuple[str | None, str | None]:
    """``user.name`` and ``user.email`` from git config (repo, global, system), if set."""
    try:
        import git
    except Exception:
        return None, None
    values: list[str | None] = []
    for key in ("user.name", "user.email"):
        try:
            value = git.Git(str(repo) if repo else None).config("--get", key).strip()
        except Exception:
            value = ""
        values.append(value or None)
    return values[0], values[1]


def current_actor(repo: Path | None = None) -> str:
    """Who is acting, for stage history: ``$MLCTL_ACTOR``, ``$GITHUB_ACTOR``, git identity,
    else ``user@host``. Never raises.

    The git identity is ``Name <email>`` (or whichever of the two is configured), read from
    the repository at ``repo`` (default: the current directory) and the global config.
    """
    for var in ("MLCTL_ACTOR", "GITHUB_ACTOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    name, email = _git_identity(repo)
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return str(name or email)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def commit_files(repo: Path, paths: Iterable[Path | str], message: str, *, branch: str | None = None) -> str:
    """Stage exactly ``paths`` and commit them; returns the new commit's hexsha.

    Other staged or unstaged changes in the working tree are left as they are and are not
    part of the commit (``git commit --only``). ``paths`` may be absolute or relative to
    ``repo`` and must lie inside the repository. With ``branch``, that branch is checked out
    first (created from HEAD if missing). When git has no identity configured (bare CI
    runners), the commit is authored by :func:`current_actor`. Raises MlctlError when
    ``repo`` is not a git repository, a path is outside it, there is nothing to commit, or
    git fails.
    """
    project = Path(repo)
    handle = _open_repo(project)
    if handle is None:
        raise MlctlError(f"{project} is not inside a git repository")
    import git

    try:
        rels: list[str] = []
        for item in paths:
            path = Path(item)
            full = path if path.is_absolute() else project / path
            rel = _relative_to_worktree(handle, full)
            if rel is None or rel in ("", "."):
                raise MlctlError(f"cannot commit {item}: it is not a file inside {project}")
            rels.append(rel)
        if not rels:
            raise MlctlError("no files to commit")
        if branch is not None:
            current = None if handle.head.is_detached else handle.active_branch.name
            if branch != current:
                if branch in [h.name for h in handle.heads]:
                    handle.git.checkout(branch)
                else:
                    handle.git.checkout("-b", branch)
        handle.git.add("--", *rels)
        if not handle.git.diff("--cached", "--name-only", "--", *rels).strip():
            raise MlctlError(f"nothing to commit: {', '.join(rels)} unchanged")
        env: dict[str, str] = {}
        name, email = _git_identity(project)
        if not name or not email:
            actor = current_actor(project)
            for role in ("AUTHOR", "COMMITTER"):
                env.setdefault(f"GIT_{role}_NAME", name or actor)
                env.setdefault(f"GIT_{role}_EMAIL", email or "mlctl@localhost")
        with handle.git.custom_environment(**env):
            handle.git.commit("-m", message, "--only", "--", *rels)
        return str(handle.head.commit.hexsha)
    except git.GitCommandError as exc:
        detail = (exc.stderr or str(exc)).strip().replace("\n", " ")
        detail = detail.removeprefix("stderr: ").strip("' ")
        raise MlctlError(f"git failed in {project}: {detail}") from None
    finally:
        handle.close()
