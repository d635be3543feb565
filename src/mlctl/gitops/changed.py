"""Which environments a branch changes: ``mlctl plan --changed [--base REF]``.

Contract: :func:`changed_environments` compares the merge base of ``base`` and ``HEAD`` with
``HEAD`` (what a pull request would merge, like GitHub's three-dot diff), plus, unless
``include_worktree`` is False, what is staged, unstaged or untracked in the working tree (so a
local ``plan --changed`` before committing shows the same as CI will). It never writes to the
repository and imports GitPython only when called.

How a path maps to environments:

- ``environments/<env>/...``: that environment (when it still exists at HEAD; a deleted
  environment is reported in :attr:`ChangedEnvironments.removed`, it has nothing to plan);
- ``providers/...``: every environment whose ``environment.yaml`` names that provider file,
  or every environment when the file cannot be attributed (a deleted provider, unparsable YAML);
- the mlctl package itself (``src/mlctl/``, ``pyproject.toml``): every environment, because
  new code can plan differently; these prefixes are :data:`PACKAGE_PATHS`.

Paths are taken relative to the project directory, so a project living in a subdirectory of
its git repository works; changes outside the project are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlctl.errors import MlctlError

#: Paths (relative to the project) whose change affects every environment.
PACKAGE_PATHS: tuple[str, ...] = ("src/mlctl/", "pyproject.toml")
#: Base refs tried, in order, when neither ``--base`` nor ``$GITHUB_BASE_REF`` names one.
DEFAULT_BASES: tuple[str, ...] = ("origin/main", "main", "origin/master", "master")


@dataclass
class ChangedEnvironments:
    """The answer: environments to plan, and why each one is in the list."""

    base: str
    merge_base: str
    head: str
    environments: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: ``dev (environments/dev/models.yaml), prod (providers/local.yaml)``."""
        if not self.environments:
            return "no environment changed"
        parts = []
        for env in self.environments:
            why = self.reasons.get(env, [])
            shown = ", ".join(why[:3]) + (f", +{len(why) - 3} more" if len(why) > 3 else "")
            parts.append(f"{env} ({shown})" if shown else env)
        return ", ".join(parts)


def _candidate_bases(base: str | None) -> list[str]:
    if base:
        return [base]
    github = os.environ.get("GITHUB_BASE_REF", "").strip()
    if github:
        return [f"origin/{github}", github]
    return list(DEFAULT_BASES)


def _resolve_base(handle: object, base: str | None) -> tuple[str, str]:
    """(the ref that resolved, its commit sha); MlctlError naming what was tried."""
    import git

    assert isinstance(handle, git.Repo)
    tried = _candidate_bases(base)
    for ref in tried:
        try:
            return ref, handle.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except git.GitCommandError:
            continue
    if base:
        raise MlctlError(f"--base {base}: no such branch, tag or commit in this repository")
    raise MlctlError(
        f"cannot find a base branch to compare with (tried {', '.join(tried)}); pass --base REF"
        " (in a shallow CI checkout, fetch the base branch first: fetch-depth: 0)"
    )


def _environments_at(project: Path) -> list[str]:
    root = project / "environments"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _providers_used(project: Path, env: str) -> set[str] | None:
    """Provider names ``environments/<env>/*.yaml`` refers to, or None when unreadable.

    The files come from the pull request: anything odd in them (broken or deeply nested YAML,
    a symbolic link, bytes that are not UTF-8) makes the environment unattributable, which
    plans it (the load then reports the problem with its file and line); it never raises.
    """
    import yaml

    names: set[str] = set()
    declared = False
    try:
        for path in sorted((project / "environments" / env).glob("*.y*ml")):
            if path.is_symlink():
                return None
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(document, dict):
                continue
            providers = document.get("providers")
            if isinstance(providers, dict):
                declared = True
                names.update(str(v) for v in providers.values() if isinstance(v, str))
            endpoints = document.get("endpoints")
            if isinstance(endpoints, dict):
                for endpoint in endpoints.values():
                    if isinstance(endpoint, dict):
                        names.add(str(endpoint.get("provider", "local")))
    except (OSError, ValueError, RecursionError, MemoryError, yaml.YAMLError):
        return None  # UnicodeDecodeError is a ValueError
    if not declared:
        names.add("local")  # the schema's default for every provider role
    return names


def _classify(project: Path, files: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """env -> changed files that affect it, and environments removed at HEAD."""
    existing = _environments_at(project)
    reasons: dict[str, list[str]] = {}
    removed: set[str] = set()
    usage: dict[str, set[str] | None] = {}

    def add(env: str, why: str) -> None:
        items = reasons.setdefault(env, [])
        if why not in items:
            items.append(why)

    for rel in files:
        parts = rel.split("/")
        if parts[0] == "environments" and len(parts) >= 3:
            env = parts[1]
            if env in existing:
                add(env, rel)
            else:
                removed.add(env)
        elif parts[0] == "providers" and len(parts) >= 2:
            stem = Path(parts[-1]).stem if len(parts) == 2 else None
            for env in existing:
                if env not in usage:
                    usage[env] = _providers_used(project, env)
                used = usage[env]
                if stem is None or used is None or stem in used:
                    add(env, rel)
        elif any(rel == p.rstrip("/") or rel.startswith(p) for p in PACKAGE_PATHS):
            for env in existing:
                add(env, rel)
    return reasons, sorted(removed)


def changed_environments(
    repo: Path, base: str | None = None, *, include_worktree: bool = True
) -> ChangedEnvironments:
    """Environments of the project at ``repo`` changed since the merge base with ``base``.

    ``base`` defaults to ``origin/$GITHUB_BASE_REF`` in a pull-request workflow, else the first
    of :data:`DEFAULT_BASES` that exists. Raises MlctlError outside a git repository, for an
    unknown ``base``, or when the two histories share no commit.
    """
    try:
        import git
    except Exception:
        raise MlctlError("--changed needs git, and no git executable was found") from None
    project = Path(repo).resolve()
    try:
        handle = git.Repo(project, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise MlctlError(f"--changed needs a git repository, and {project} is not inside one") from None
    try:
        if handle.working_tree_dir is None:
            raise MlctlError(f"{project} is a bare repository")
        top = Path(handle.working_tree_dir).resolve()
        try:
            prefix = project.relative_to(top).as_posix()
        except ValueError:
            raise MlctlError(f"{project} is not inside the working tree {top}") from None
        prefix = "" if prefix == "." else prefix + "/"
        try:
            head = handle.head.commit.hexsha
        except ValueError:
            raise MlctlError("--changed needs at least one commit on HEAD") from None
        ref, base_sha = _resolve_base(handle, base)
        try:
            merge_base = handle.git.merge_base(base_sha, head).strip()
        except git.GitCommandError:
            raise MlctlError(
                f"{ref} and HEAD have no common ancestor (in a shallow clone, fetch more history:"
                " fetch-depth: 0)"
            ) from None
        names = handle.git.diff("--name-only", "--no-renames", "-z", merge_base, head).split("\0")
        if include_worktree:
            names += handle.git.diff("--name-only", "--no-renames", "-z", "HEAD").split("\0")
            names += handle.git.ls_files("--others", "--exclude-standard", "-z").split("\0")
        files = sorted(
            {n[len(prefix) :] for n in names if n and n.startswith(prefix)}
            if prefix
            else {n for n in names if n}
        )
    finally:
        handle.close()
    reasons, removed = _classify(project, files)
    return ChangedEnvironments(
        base=ref,
        merge_base=merge_base,
        head=head,
        environments=sorted(reasons),
        reasons=reasons,
        removed=removed,
        files=files,
    )


__all__ = ["DEFAULT_BASES", "PACKAGE_PATHS", "ChangedEnvironments", "changed_environments"]
