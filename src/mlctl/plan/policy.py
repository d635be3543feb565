"""Policies on the plan: ``policies/*.rego`` evaluated on the JSON plan with an embedded Rego engine.

Contract: :func:`evaluate_policies` loads every ``*.rego`` file of ``<repo>/policies`` (files
named ``*_test.rego`` are Rego unit tests, skipped) into one interpreter (regopy, Microsoft's
rego-cpp bindings; imported here, lazily, and only when a policy file exists), sets the JSON
plan (:func:`mlctl.plan.render.plan_json`, extended with :class:`PolicyContext` under
``input.mlctl``) as ``input`` and queries ``data.<package>.deny`` and ``data.<package>.warn``
of every package the files declare. Each message becomes a :class:`PolicyFinding` carrying the
``file:line`` of the rule head that produced it: the ``deny``/``warn`` heads (at the start of a
line) are found by reading the source, each is evaluated on its own (see
:func:`evaluate_policies`), and a message no single head yields (a head written another way) is
attributed to the head whose ``msg`` literal or ``sprintf`` format matches it, else to the first
head of its kind -- so the line is a rule's head, never a guess outside the file.

Findings and errors are :class:`~mlctl.errors.Diagnostic` values where they leave this module:
:meth:`PolicyFinding.diagnostic` (``deny`` an error, ``warn`` a warning, subject ``policy``,
file and line of the rule: the text ``policy policies/x.rego:12: <message>``). A file that
does not parse raises :class:`PolicyError`, a :class:`~mlctl.errors.ConfigError` carrying one
diagnostic (one line: ``policies/x.rego:12: <what rego-cpp says>``). Nothing here reads state
or providers; denials become plan blockers in :mod:`mlctl.operations.plan`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlctl.errors import ConfigError, Diagnostic

Kind = Literal["deny", "warn"]

#: Where a repository keeps its policies.
POLICY_DIR = "policies"


class PolicyError(ConfigError):
    """A policy file cannot be read or evaluated: one diagnostic (message ``file:line: what``)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__([diagnostic])


@dataclass(frozen=True)
class PolicyContext:
    """What a policy may know besides the plan, under ``input.mlctl``: ``pull_request``
    (``{"labels": [...]}`` when the plan is made for a pull request, else ``null``) and
    ``models`` (every model of the desired state: its ``tags``, ``gates`` and ``stages``)."""

    labels: tuple[str, ...] | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "pull_request": None if self.labels is None else {"labels": sorted(set(self.labels))},
            "models": self.models,
        }


@dataclass(frozen=True)
class PolicyFinding:
    """One ``deny`` or ``warn`` message and the rule it came from (``file`` relative to the repo)."""

    kind: Kind
    message: str
    file: str
    line: int
    package: str

    def __str__(self) -> str:
        return str(self.diagnostic())

    def diagnostic(self) -> Diagnostic:
        """This finding as a diagnostic: ``deny`` an error (apply refuses the plan), ``warn`` a
        warning; subject ``policy``, located at the rule's head, so it reads as ``str(self)``."""
        return Diagnostic(
            summary=self.message,
            file=self.file,
            line=self.line,
            severity="error" if self.kind == "deny" else "warning",
            subject="policy",
        )


@dataclass(frozen=True)
class _Head:
    kind: Kind
    line: int
    pattern: re.Pattern[str] | None


@dataclass
class _Module:
    path: Path
    rel: str
    source: str
    package: str
    heads: list[_Head]


def policy_files(repo: Path) -> list[Path]:
    """``<repo>/policies/*.rego`` without the ``*_test.rego`` unit tests, sorted."""
    folder = repo / POLICY_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.rego") if p.is_file() and not p.name.endswith("_test.rego"))


_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.M)
_HEAD = re.compile(r"^(deny|warn)\b")
_FORMAT = re.compile(r'(?:msg|message)\s*:?=\s*(?:sprintf\(\s*)?"((?:[^"\\]|\\.)*)"')


def _message_pattern(body: str) -> re.Pattern[str] | None:
    """The messages a rule body can produce, as a regex from its ``msg := sprintf("...")`` (or a
    literal); ``%s``/``%v``/``%d`` and friends match anything."""
    found = _FORMAT.search(body)
    if found is None:
        return None
    literal = found.group(1).replace('\\"', '"').replace("\\\\", "\\")
    parts = re.split(r"%[-+# 0-9.]*[a-zA-Z]", literal)
    return re.compile("^" + ".*".join(re.escape(p) for p in parts) + "$", re.S)


def _heads(source: str) -> list[_Head]:
    """The ``deny``/``warn`` rule heads of ``source`` (those starting a line), each with its
    line and the message pattern of its body (up to the next top-level line)."""
    lines = source.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEAD.match(line)]
    heads = []
    for n, start in enumerate(starts):
        end = next(
            (
                i
                for i in range(start + 1, len(lines))
                if lines[i] and not lines[i][0].isspace() and lines[i][0] not in "}#"
            ),
            len(lines),
        )
        end = min(end, starts[n + 1] if n + 1 < len(starts) else len(lines))
        kind: Kind = "deny" if lines[start].startswith("deny") else "warn"
        heads.append(_Head(kind, start + 1, _message_pattern("\n".join(lines[start:end]))))
    return heads


def _read(repo: Path, path: Path) -> _Module:
    rel = path.relative_to(repo).as_posix()
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(Diagnostic(f"cannot read the policy: {exc}", file=rel)) from None
    package = _PACKAGE.search(source)
    if package is None:
        raise PolicyError(Diagnostic("not a Rego module: no 'package' declaration", file=rel, line=1))
    return _Module(path, rel, source, package.group(1), _heads(source))


_ERROR = re.compile(r"\(error \d+:([^|\s]*)\|(\d+)\|\d+")
_ERRMSG = re.compile(r"\(errormsg \d+:([^)\n]*)")


def _error(error: str, modules: dict[str, _Module]) -> PolicyError:
    """The located error of rego-cpp's error text (``(error N:FILE|OFFSET|LEN ...)``): its
    diagnostic reads ``file:line: message``."""
    where = _ERROR.search(error)
    what = _ERRMSG.search(error)
    message = what.group(1).strip() if what else error.strip().splitlines()[0]
    if where is None:
        return PolicyError(Diagnostic(message))
    module = modules.get(where.group(1))
    if module is None:
        return PolicyError(Diagnostic(message, file=where.group(1)))
    line = module.source.encode()[: int(where.group(2))].count(b"\n") + 1
    return PolicyError(Diagnostic(message, file=module.rel, line=line))


def _attribute(kind: Kind, message: str, modules: list[_Module]) -> tuple[str, int]:
    heads = [(m, h) for m in modules for h in m.heads if h.kind == kind]
    for module, head in heads:
        if head.pattern is not None and head.pattern.match(message):
            return module.rel, head.line
    if heads:
        return heads[0][0].rel, heads[0][1].line
    return modules[0].rel, 1


def _messages(value: Any) -> list[str]:
    """A ``deny``/``warn`` value (a set of strings, or objects with ``msg``) as strings."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict) and "msg" in item:
            item = item["msg"]
        out.append(item if isinstance(item, str) else json.dumps(item, sort_keys=True))
    return out


def _rule_name(head: _Head) -> str:
    return f"{head.kind}__mlctl_l{head.line}"


def _rewritten(module: _Module) -> str:
    """``module``'s source with each ``deny``/``warn`` head renamed to one name per rule
    (``deny__mlctl_l12``, on its own line, so every line number stays) and, appended after the
    last line, ``deny contains m if { some m in deny__mlctl_l12 }`` for each: ``deny`` and
    ``warn`` mean what they meant, and each rule's messages can be asked for alone."""
    lines = module.source.splitlines()
    for head in module.heads:
        lines[head.line - 1] = _rule_name(head) + lines[head.line - 1][len(head.kind) :]
    tail = [
        f"{h.kind} contains mlctl_message if {{ some mlctl_message in {_rule_name(h)} }}"
        for h in module.heads
    ]
    return "\n".join([*lines, "", *tail]) + "\n"


def _query(interpreter: Any, regopy: Any, path: str, modules: dict[str, _Module]) -> list[str]:
    try:
        output = str(interpreter.query(path)).strip()
    except regopy.RegoError as exc:
        raise _error(str(exc), modules) from None
    if output == "undefined":
        return []
    try:
        parsed = json.loads(output)
    except ValueError:
        raise PolicyError(Diagnostic(output.splitlines()[0] if output else "no result", path=path)) from None
    return [m for expression in parsed.get("expressions", []) for m in _messages(expression)]


def _interpreter(regopy: Any, modules: dict[str, _Module], sources: dict[str, str], document: str) -> Any:
    interpreter = regopy.Interpreter()
    interpreter.log_level = regopy.LogLevel.NONE  # rego-cpp would print errors to stdout
    for key, source in sources.items():
        interpreter.add_module(key, source)
    interpreter.set_input_term(document)
    return interpreter


def evaluate_policies(
    repo: Path, plan_document: dict[str, Any], context: PolicyContext
) -> list[PolicyFinding]:
    """Every ``deny`` and ``warn`` of ``<repo>/policies`` on ``plan_document`` (see the module
    contract), sorted by file, line and message; [] when there are no policy files.

    Each rule is asked for alone (:func:`_rewritten`), so a message is attributed to the rule
    that produced it even when two rules share a message format. Should the rewritten modules
    not compile where the originals do (a head of an unusual shape), the originals are
    evaluated and messages are attributed by their format instead.
    """
    files = policy_files(repo)
    if not files:
        return []
    import regopy  # a runtime dependency (pyproject), imported only when a policy file exists

    modules = {str(p): _read(repo, p) for p in files}
    document = json.loads(json.dumps(plan_document))
    document.setdefault("mlctl", {}).update(context.document())
    text = json.dumps(document)
    try:
        interpreter = _interpreter(regopy, modules, {k: m.source for k, m in modules.items()}, text)
    except regopy.RegoError as exc:
        raise _error(str(exc), modules) from None
    try:
        split = _interpreter(regopy, modules, {k: _rewritten(m) for k, m in modules.items()}, text)
    except regopy.RegoError:
        split = None
    by_package: dict[str, list[_Module]] = {}
    for module in modules.values():
        by_package.setdefault(module.package, []).append(module)
    findings: list[PolicyFinding] = []
    kinds: tuple[Kind, ...] = ("deny", "warn")
    for package, members in sorted(by_package.items()):
        for kind in kinds:
            messages = _query(interpreter, regopy, f"data.{package}.{kind}", modules)
            placed: set[str] = set()
            if split is not None:
                for module in members:
                    for head in (h for h in module.heads if h.kind == kind):
                        for message in _query(split, regopy, f"data.{package}.{_rule_name(head)}", modules):
                            findings.append(PolicyFinding(kind, message, module.rel, head.line, package))
                            placed.add(message)
            for message in messages:
                if message not in placed:
                    rel, line = _attribute(kind, message, members)
                    findings.append(PolicyFinding(kind, message, rel, line, package))
    return sorted(findings, key=lambda f: (f.file, f.line, f.kind, f.message))


__all__ = ["POLICY_DIR", "PolicyContext", "PolicyError", "PolicyFinding", "evaluate_policies", "policy_files"]
