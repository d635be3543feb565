"""Plan renderers: the same Plan as human text, GitHub markdown, or JSON.

Renderers return strings and never print (the CLI prints). Text follows Terraform: changes
found by refresh first under their own heading, a legend of only the symbols that occur, one
block per change sorted in apply order, and one summary line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

from mlctl.errors import Diagnostic
from mlctl.plan.diagnostics import diagnostic_json
from mlctl.plan.diff import short
from mlctl.plan.model import SYMBOLS, UNKNOWN, Plan, ResourceChange, RolloutStep
from mlctl.redaction import redact

if TYPE_CHECKING:
    from mlctl.gitops.changed import ChangedEnvironments

_VERB = {
    "create": "will be created",
    "update": "will be updated in-place",
    "delete": "will be destroyed",
    "replace": "will be replaced",
    "check": "will be checked",
    "train": "will be trained",
    "promote": "will be promoted",
    "archive": "will be archived",
    "deploy": "will be deployed",
    "materialize": "will be materialized",
    "rollback": "will be rolled back",
}
_LEGEND = {
    "create": "create",
    "update": "update in-place",
    "replace": "destroy and then create replacement",
    "delete": "destroy",
    "check": "check data",
    "train": "train a model version",
    "promote": "promote to a stage",
    "archive": "archive",
    "deploy": "deploy to an endpoint",
    "rollback": "roll back",
    "materialize": "materialize features",
}


def _main_action(change: ResourceChange) -> str:
    actions = change.actions
    if "delete" in actions and "create" in actions:
        return "replace"
    for ml in ("train", "promote", "archive", "deploy", "materialize"):
        if ml in actions:
            return ml
    return actions[0]


def _headline(change: ResourceChange) -> str:
    verbs = [_VERB.get(a, a) for a in change.actions if a not in ("delete", "create")]
    if "delete" in change.actions and "create" in change.actions:
        verbs.insert(0, _VERB["replace"])
    elif "create" in change.actions:
        verbs.insert(0, _VERB["create"])
    elif "delete" in change.actions:
        verbs.insert(0, _VERB["delete"])
    if len(verbs) > 1:
        verbs = [verbs[0]] + [v.removeprefix("will be ") for v in verbs[1:]]
    text = " and ".join(verbs) if verbs else "will change"
    return f"# {change.address} {text}" + (f" ({change.reason})" if change.reason else "")


def _value_line(change: ResourceChange) -> list[str]:
    before = change.before if isinstance(change.before, dict) else {}
    after = change.after if isinstance(change.after, dict) else {}
    lines = []
    if "version" in after and _main_action(change) in ("promote", "archive", "deploy", "train"):
        old = before.get("version")
        new = after.get("version")
        old_text = f"v{old}" if isinstance(old, int) else "none"
        new_text = f"v{new}" if isinstance(new, int) else ("none" if new is None else str(new))
        lines.append(f"version: {old_text} -> {new_text}")
    return lines


#: ANSI colours of the symbols in a terminal (Terraform's: green add, yellow change, red destroy).
_COLOURS = {
    "+": "32",  # green
    "~": "33",  # yellow
    "-": "31",  # red
    "-/+": "31",
    ">": "36",  # cyan
    "x": "35",  # magenta
}


def paint(symbol: str, width: int = 0, *, color: bool = False) -> str:
    """``symbol`` right-aligned to ``width``, in its ANSI colour when ``color`` (else plain)."""
    text = f"{symbol:>{width}}"
    code = _COLOURS.get(symbol)
    if not color or code is None:
        return text
    return text.replace(symbol, f"\033[{code}m{symbol}\033[0m")


def render_change(change: ResourceChange, *, color: bool = False) -> list[str]:
    """The text block of one change (headline, symbol + address, indented details); with
    ``color`` the symbol carries its ANSI colour (for a terminal only: see :func:`render_text`)."""
    action = _main_action(change)
    symbol = SYMBOLS.get(action, change.symbol)
    lines = [f"  {_headline(change)}", f"  {paint(symbol, 3, color=color)} {action} {change.address}"]
    if action == "create" and isinstance(change.after, dict) and not change.details:
        for key, value in change.after.items():
            lines.append(f"        {key}: {short(value)}")
    for line in _value_line(change) + change.details:
        lines.append(f"        {line}")
    for block in change.blocking:
        lines.append(f"        ! {block}")
    return lines


ROLLOUTS_HEADING = (
    "Rollouts (stepped by `mlctl rollout step` or `mlctl monitor run`; apply does not move them):"
)


def _pct(value: float | None) -> str:
    return "none" if value is None else f"{value:g}%"


def _v_or_none(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _rate(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "n/a"


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else "n/a"


def rollout_headline(r: RolloutStep) -> str:
    """One line: the endpoint, its rollout and the move the next step makes (or why none)."""
    head = f"endpoint.{r.endpoint} rollout {r.strategy}"
    if r.candidate_version is not None:
        head += (
            f" of {r.candidate_stage} {_v_or_none(r.candidate_version)}"
            f" next to {_v_or_none(r.stable_version)}"
        )
    if r.error is not None:
        return f"{head}: cannot be analyzed: {r.error}"
    move = {
        "start": f"start at {_pct(r.next_weight)}",
        "advance": f"step {_pct(r.weight)} -> {_pct(r.next_weight)}",
        "promote": f"{_pct(r.weight)} -> promote {_v_or_none(r.candidate_version)} to production",
        "abort": f"{_pct(r.weight)} -> 0%: abort",
        "wait": f"waiting at {_pct(r.weight)}",
        "hold": f"holds at {_pct(r.weight)}",
    }.get(r.verdict or "")
    if move is None:
        if r.status == "running":
            return f"{head}: at {_pct(r.weight)} ({r.reason})"
        return f"{head}: nothing to do ({r.reason})"
    return f"{head}: {move}"


def rollout_details(r: RolloutStep) -> list[str]:
    """The statistics behind the verdict (arms side by side, rejected tests) and its reason."""
    lines: list[str] = []
    stable, candidate = r.statistics.get("stable"), r.statistics.get("candidate")
    if isinstance(stable, dict) and isinstance(candidate, dict):
        arms = (
            f"candidate {_v_or_none(r.candidate_version)} vs {_v_or_none(r.stable_version)}: "
            f"{candidate.get('requests', 0):,} vs {stable.get('requests', 0):,} requests, "
            f"p95 {_ms(candidate.get('p95_ms'))} vs {_ms(stable.get('p95_ms'))}, "
            f"error rate {_rate(candidate.get('error_rate'))} vs {_rate(stable.get('error_rate'))}"
        )
        if candidate.get("labelled") or stable.get("labelled"):
            arms += (
                f", accuracy {_rate(candidate.get('accuracy'))} vs {_rate(stable.get('accuracy'))} "
                f"({candidate.get('labelled', 0):,} vs {stable.get('labelled', 0):,} labelled)"
            )
        lines.append(arms)
    tests = r.statistics.get("tests")
    if isinstance(tests, dict) and tests:
        lines.append(
            "tests (Holm): "
            + ", ".join(
                f"{name} p={t.get('p_value')}{' REJECTED' if t.get('rejected') else ''}"
                for name, t in tests.items()
                if isinstance(t, dict)
            )
        )
    if r.verdict is not None and r.reason:
        lines.append(f"{r.verdict}: {r.reason}")
    return lines


def render_rollouts(plan: Plan) -> list[str]:
    """The text block of the plan's shown rollouts (empty when none is shown)."""
    shown = [r for r in plan.rollouts if r.shown]
    if not shown:
        return []
    out = [ROLLOUTS_HEADING, ""]
    for r in shown:
        out.append(f"  {rollout_headline(r)}")
        out += [f"      {line}" for line in rollout_details(r)]
    return [*out, ""]


def drift_consequence(drift: list[ResourceChange]) -> list[str]:
    """What applying does about the changes refresh found, one sentence per kind: changed data
    is the world's new input, which apply checks and responds to but never reverts; any other
    object (a live endpoint, an artifact, a registry alias) is brought back to the state."""
    data = any(change.type == "dataset" for change in drift)
    lines = []
    if data:
        lines.append(
            "Applying does not revert changed data: it checks it, and the planned actions respond to it."
        )
    if any(change.type != "dataset" for change in drift):
        objects = "the other objects" if data else "these objects"
        lines.append(f"Applying will bring {objects} back in line with the configuration.")
    return lines


def render_text(plan: Plan, *, color: bool = False) -> str:
    """Terraform-style human output ending with the summary line.

    ``color`` paints the symbols ``+ ~ - -/+ > x`` with ANSI colours; the caller passes it only
    when stdout is a terminal and ``NO_COLOR`` is unset (never for files, CI logs, markdown or
    JSON), so the default is plain text.
    """
    out: list[str] = []
    if plan.drift:
        out.append("Objects have changed outside of mlctl")
        out.append("")
        out.append("mlctl detected the following changes made outside of mlctl since the last apply:")
        out.append("")
        for change in plan.drift:
            out.append(f"  # {change.address}: {change.reason}")
            before = change.before if isinstance(change.before, dict) else {}
            after = change.after if isinstance(change.after, dict) else {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    tilde = paint("~", color=color)
                    out.append(f"      {tilde} {key}: {short(before.get(key))} -> {short(after.get(key))}")
        out.append("")
        out.extend(drift_consequence(plan.drift))
        out.append("")
    if plan.has_changes:
        used = []
        for change in plan.resource_changes:
            action = _main_action(change)
            if action not in used:
                used.append(action)
        out.append("Actions are indicated with the following symbols:")
        for action in SYMBOLS:
            if action in used:
                out.append(f"  {paint(SYMBOLS[action], 3, color=color)} {_LEGEND[action]}")
        out.append("")
        out.append(f'mlctl will perform the following actions in environment "{plan.environment}":')
        out.append("")
        for change in plan.resource_changes:
            out.extend(render_change(change, color=color))
            out.append("")
    out.extend(render_rollouts(plan))
    for warning in plan.warnings:
        out.append(f"Warning: {warning}")
    for denial in plan.denials:
        out.append(f"Error: {denial} (apply is refused)")
    if plan.warnings or plan.denials:
        out.append("")
    out.append(plan.summary())
    return redact("\n".join(out) + "\n")


_PLACEHOLDER = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
_QUOTED_SECRET = re.compile(r'"(?:[^"\\]|\\.)*' + _PLACEHOLDER + r'(?:[^"\\]|\\.)*"')
_BARE_SECRET = re.compile(r"[^\s,;()\[\]{}]*" + _PLACEHOLDER + r"[^\s,;()\[\]{}]*")
SENSITIVE = "(sensitive)"


def mask_text(text: str) -> str:
    """``text`` with every value that came from ``${VAR}`` replaced by ``(sensitive)`` (a resolved
    value too: :func:`~mlctl.redaction.redact` turns it into its placeholder first)."""
    text = redact(text)
    if "${" not in text:
        return text
    return _BARE_SECRET.sub(SENSITIVE, _QUOTED_SECRET.sub(SENSITIVE, text))


def mask_value(value: Any) -> Any:
    """A copy of ``value`` where every string holding a ``${VAR}`` placeholder is ``(sensitive)``.

    Specs in state and plans keep the placeholder text of secret values (never the resolved
    value); comments show neither.
    """
    if isinstance(value, str):
        value = redact(value)
        return SENSITIVE if re.search(_PLACEHOLDER, value) else value
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value


def mask_diagnostic(diagnostic: Diagnostic) -> Diagnostic:
    """``diagnostic`` with :func:`mask_text` applied to the parts its text is made of."""
    return dataclasses.replace(
        diagnostic,
        summary=mask_text(diagnostic.summary),
        path=mask_text(diagnostic.path),
        hint=mask_text(diagnostic.hint) if diagnostic.hint else diagnostic.hint,
    )


def masked(plan: Plan) -> Plan:
    """A copy of ``plan`` with sensitive values masked in every field a renderer shows."""

    def change(c: ResourceChange) -> ResourceChange:
        return c.model_copy(
            update={
                "before": mask_value(c.before),
                "after": mask_value(c.after),
                "reason": mask_text(c.reason),
                "details": [mask_text(line) for line in c.details],
                "blocking": [mask_text(line) for line in c.blocking],
            }
        )

    return plan.model_copy(
        update={
            "resource_changes": [change(c) for c in plan.resource_changes],
            "drift": [change(c) for c in plan.drift],
            "warnings": [mask_diagnostic(w) for w in plan.warnings],
            "policies": [mask_diagnostic(p) for p in plan.policies],
        }
    )


def markdown_counts(plans: list[Plan]) -> list[str]:
    """A table of changes by action (one column per environment when there are several)."""
    counts = [p.counts() for p in plans]
    used = [a for a in SYMBOLS if any(c.get(a) for c in counts)]
    if not used:
        return []
    if len(plans) == 1:
        rows = ["| action | count |", "|---|---:|"]
        rows += [f"| {SYMBOLS[a]} {a} | {counts[0][a]} |" for a in used]
        return rows
    rows = ["| action | " + " | ".join(f"`{p.environment}`" for p in plans) + " |"]
    rows.append("|---|" + "---:|" * len(plans))
    rows += [f"| {SYMBOLS[a]} {a} | " + " | ".join(str(c.get(a, 0)) for c in counts) + " |" for a in used]
    return rows


def markdown_blocking(plans: list[Plan]) -> list[str]:
    """``**Would block apply:**`` and one bullet per gate or check that would fail."""
    items = [(p.environment, b) for p in plans for b in p.blocking]
    if not items:
        return []
    many = len(plans) > 1
    return ["**Would block apply:**"] + [
        f"- {'`' + env + '`: ' if many else ''}:x: {_escape(b)}" for env, b in items
    ]


def _escape(text: str) -> str:
    """Inline text safe in markdown (no accidental HTML, tables or emphasis)."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 100 else f"{value:.3f}"
    return "n/a" if value is None else str(value)


def markdown_evaluation(change: ResourceChange) -> list[str]:
    """The candidate-vs-production table of an evaluated ``train`` change (else nothing)."""
    after = change.after if isinstance(change.after, dict) else {}
    evaluation = after.get("evaluation")
    if not isinstance(evaluation, dict):
        return []
    prod = evaluation.get("production") or {}
    prod_metrics = prod.get("metrics") or {}
    prod_label = f"production v{prod['version']}" if prod.get("version") else "production"
    lines = [
        f"**`{change.name}` candidate** (run `{evaluation.get('run_id', '?')}`, "
        f"identity `{str(evaluation.get('identity', '')).split(':', 1)[-1][:12]}`): "
        + ("passes its gates" if evaluation.get("passed") else "**fails its gates**"),
        "",
        f"| metric | candidate | {prod_label} | delta | gate | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    gates_by_metric: dict[str, list[dict[str, Any]]] = {}
    for gate in evaluation.get("gates", []):
        gates_by_metric.setdefault(gate["metric"], []).append(gate)
    metrics = evaluation.get("metrics") or {}
    shown = [m for m in gates_by_metric if m in metrics or m not in prod_metrics]
    shown += [m for m in metrics if m not in gates_by_metric]
    for metric in shown:
        value = metrics.get(metric)
        base = prod_metrics.get(metric)
        delta = ""
        if isinstance(value, (int, float)) and isinstance(base, (int, float)):
            delta = f"{value - base:+.3f}"
        cells = f"| {metric} | {_fmt(value)} | {'' if base is None else _fmt(base)} | {delta} |"
        gates: list[dict[str, Any] | None] = list(gates_by_metric.get(metric, [])) or [None]
        for gate in gates:
            if gate is None:
                lines.append(f"{cells} | |")
                continue
            bar = f"{gate['op']} {gate['threshold']:.4g}"
            if gate["gate"] == "max_regression":
                bar += " (no regression)"
            result = ":white_check_mark: pass" if gate["passed"] else ":x: fail"
            lines.append(f"{cells} {bar} | {result} |")
    return lines


def markdown_section(plan: Plan) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """One environment, as (head lines, change chunks, trailing blocks).

    The head holds the heading, summary line, blocking gates, warnings and evaluated
    candidates; each change chunk is the text of one change (for a ```diff block inside
    ``<details>``); trailing blocks are complete ``<details>`` blocks (drift). Assemblers
    (:func:`render_markdown`, :mod:`mlctl.plan.comment`) decide how many chunks fit.
    """
    plan = masked(plan)
    head = [f"### `{plan.environment}`: {plan.summary()}", ""]
    blocking = markdown_blocking([plan])
    if blocking:
        head += [*blocking, ""]
    for warning in plan.warnings:
        head.append(f"> :warning: {_escape(str(warning))}")
    if plan.warnings:
        head.append("")
    for change in plan.resource_changes:
        table = markdown_evaluation(change)
        if table:
            head += [*table, ""]
    head += markdown_rollouts(plan)
    chunks = [[*render_change(change), ""] for change in plan.resource_changes]
    tail: list[list[str]] = []
    if plan.drift:
        block = ["<details><summary>Changed outside of mlctl (found by refresh)</summary>", "", "```"]
        block += [f"{c.address}: {c.reason}" for c in plan.drift]
        block += ["```", "", *drift_consequence(plan.drift)]
        block += ["</details>", ""]
        tail.append(block)
    return head, chunks, tail


def markdown_rollouts(plan: Plan) -> list[str]:
    """``**Rollouts**`` and one bullet per shown rollout (its move, statistics and reason)."""
    shown = [r for r in plan.rollouts if r.shown]
    if not shown:
        return []
    lines = ["**Rollouts** (stepped by `mlctl rollout step` or `mlctl monitor run`, not by apply):"]
    for r in shown:
        lines.append(f"- `endpoint.{r.endpoint}`: {_escape(rollout_headline(r).split(': ', 1)[-1])}")
        lines += [f"  - {_escape(line)}" for line in rollout_details(r)]
    return [*lines, ""]


def details_block(chunks: list[list[str]], summary: str) -> list[str]:
    """Change chunks wrapped in a collapsible ```diff block."""
    lines = [f"<details><summary>{summary}</summary>", "", "```diff"]
    for chunk in chunks:
        lines += chunk
    return [*lines, "```", "</details>", ""]


def render_markdown(plan: Plan) -> str:
    """GitHub-flavoured markdown for one environment: summary first (counts by action, gates
    that would block), then the environment's section with the changes in ``<details>``.

    Values that came from ``${VAR}`` are shown as ``(sensitive)``. For several environments
    and the 65,000-character comment limit see :mod:`mlctl.plan.comment`.
    """
    head, chunks, tail = markdown_section(plan)
    out = [f"## mlctl plan: `{plan.environment}`", "", f"**{plan.summary()}**", ""]
    counts = markdown_counts([plan])
    if counts:
        out += [*counts, ""]
    out += head[2:]  # the summary line is already above
    if chunks:
        out += details_block(chunks, f"{len(chunks)} change{'s' if len(chunks) != 1 else ''}")
    for block in tail:
        out += block
    while out and out[-1] == "":
        out.pop()
    return redact("\n".join(out) + "\n")


# -- JSON: Terraform's plan representation ---------------------------------------------------
#
# ``terraform show -json`` shape, so tools written for Terraform plans (OPA/conftest policies,
# plan viewers) read mlctl plans unchanged. What Terraform has no word for lives under ``mlctl``
# keys, which Terraform consumers ignore (its format asks them to skip unknown properties).
# docs/plan-json.md documents every field and the action mapping below.

#: The JSON plan's own version (major.minor, Terraform's rule: a new minor only adds fields).
JSON_FORMAT_VERSION = "1.4"

#: mlctl verbs that change what an address points at; Terraform calls that an update (or a
#: create when the address had no prior value).
_CHANGING = ("update", "promote", "archive", "deploy", "materialize", "rollback")


def terraform_actions(change: ResourceChange) -> list[str]:
    """Terraform's action list for one mlctl change (documented in docs/plan-json.md).

    ``delete``+``create`` stay a replacement in their order; ``create`` stays ``["create"]``;
    ``delete`` is ``["delete"]``; ``train`` creates the address's first version or moves it to a
    new one in place (``["update"]``: earlier versions stay in the registry); ``update``,
    ``promote``, ``archive``, ``deploy``, ``materialize`` and ``rollback`` are ``["update"]``
    (``["create"]`` when nothing was there before); a data ``check`` alone reads
    (``["read"]``); anything else is ``["no-op"]``.
    """
    actions = change.actions
    if "delete" in actions and "create" in actions:
        return [a for a in actions if a in ("delete", "create")]
    if "create" in actions:
        return ["create"]
    if "delete" in actions:
        return ["delete"]
    if "train" in actions or any(a in _CHANGING for a in actions):
        return ["create"] if change.before is None else ["update"]
    if "check" in actions:
        return ["read"]
    return ["no-op"]


def _sensitive_marks(value: Any) -> Any:
    """Terraform's ``*_sensitive`` value: ``value``'s shape with ``true`` at each leaf that came
    from ``${VAR}`` and non-sensitive leaves left out (``false`` when nothing is sensitive)."""
    if isinstance(value, str):
        return bool(re.search(_PLACEHOLDER, value))
    if isinstance(value, dict):
        marks = {k: _sensitive_marks(v) for k, v in value.items()}
        return {k: m for k, m in marks.items() if m is not False and m != {} and m != []}
    if isinstance(value, list):
        items = [_sensitive_marks(v) for v in value]
        return items if any(m is not False and m != {} and m != [] for m in items) else []
    return False


_OMIT = object()


def _split_unknown(value: Any) -> tuple[Any, Any]:
    """``(known part, unknown marks)`` of a value: every leaf that is ``(known after apply)`` is
    left out of the known part and marked ``true`` in the marks (``false`` when none is)."""
    if value == UNKNOWN:
        return _OMIT, True
    if isinstance(value, dict):
        known: dict[str, Any] = {}
        marks: dict[str, Any] = {}
        for key, item in value.items():
            part, mark = _split_unknown(item)
            if part is not _OMIT:
                known[key] = part
            if mark is not False and mark != {}:
                marks[key] = mark
        return known, marks
    return value, False


def _after(change: ResourceChange) -> tuple[Any, dict[str, Any] | bool]:
    """Terraform's ``after`` and ``after_unknown`` of a change: values known only after apply
    are left out of ``after`` and marked ``true`` in ``after_unknown`` (leaf by leaf, so a
    window whose start is known and end is not keeps its start)."""
    after, marks = _split_unknown(change.after)
    if after is _OMIT:
        return None, True
    if isinstance(after, dict):
        marks = marks if isinstance(marks, dict) else {}
        for key in change.after_unknown:
            if key not in after:
                marks.setdefault(key, True)
        return after, marks
    return after, {} if marks is False else marks


def _gates(change: ResourceChange) -> dict[str, Any] | None:
    """The gate verdict of a change, or None when no gate guards it.

    ``passed``/``failed`` with per-gate ``results`` when the candidate was evaluated
    (``plan --evaluate``, or a stored candidate that fails); ``pending`` with the ``checks``
    apply will run when the candidate is trained at apply time.
    """
    after = change.after if isinstance(change.after, dict) else {}
    evaluation = after.get("evaluation")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("gates"), list):
        return {
            "status": "passed" if evaluation.get("passed") else "failed",
            "results": [
                {k: gate.get(k) for k in ("gate", "metric", "op", "threshold", "value", "passed")}
                for gate in evaluation["gates"]
                if isinstance(gate, dict)
            ],
        }
    for line in change.details:
        for prefix in ("gates: ", "gated by: "):
            if line.startswith(prefix):
                checks = [c.strip() for c in line.removeprefix(prefix).split(",") if c.strip()]
                status = "failed" if change.blocking else "pending"
                return {"status": status, "checks": checks}
    if change.blocking:
        return {"status": "failed", "checks": []}
    return None


def _resource_change(change: ResourceChange) -> dict[str, Any]:
    """One ``resource_changes[]`` (or ``resource_drift[]``) entry."""
    mlctl: dict[str, Any] = {
        "verbs": list(change.actions),
        "reason": mask_text(change.reason),
        "details": [mask_text(line) for line in change.details],
        "blocking": [mask_text(line) for line in change.blocking],
    }
    gates = _gates(change)
    if gates is not None:
        mlctl["gates"] = gates
    after, after_unknown = _after(change)
    return {
        "address": change.address,
        "mode": "managed",
        "type": change.type,
        "name": change.name,
        "provider_name": "mlctl",
        "change": {
            "actions": terraform_actions(change),
            "before": mask_value(change.before),
            "after": mask_value(after),
            "after_unknown": after_unknown,
            "before_sensitive": _sensitive_marks(change.before),
            "after_sensitive": _sensitive_marks(after),
        },
        "mlctl": mlctl,
    }


def changed_json(changes: ChangedEnvironments, plans: list[Plan], not_planned: list[str]) -> str:
    """``plan --changed --format json``: the change's git facts, one :func:`plan_json` per
    changed environment, and the environments held back before review (docs/plan-json.md)."""
    document: dict[str, Any] = {
        "format_version": "1.0",
        "base": changes.base,
        "merge_base": changes.merge_base,
        "head": changes.head,
        "changed_files": changes.files,
        "removed_environments": changes.removed,
        "environments": [plan_json(p) for p in plans],
        "not_planned": not_planned,
    }
    return json.dumps(document, indent=2) + "\n"


def plan_json(plan: Plan) -> dict[str, Any]:
    """The machine-readable plan in Terraform's shape (see docs/plan-json.md).

    ``format_version``, ``resource_changes[]`` (``address``, ``mode``, ``type``, ``name``,
    ``provider_name``, ``change.{actions, before, after, after_unknown, before_sensitive,
    after_sensitive}``), ``resource_drift[]`` (changes refresh found), ``applyable``,
    ``errored`` and ``diagnostics[]`` (the plan's warnings and policy denials, in the shape of
    :func:`mlctl.plan.diagnostics.diagnostic_json`); mlctl's own facts (ML verbs, reasons, gate
    verdicts, lineage, summary, the declared rollouts' next steps) under ``mlctl`` keys. Values
    that came from ``${VAR}`` are ``(sensitive)`` and marked ``true`` in ``*_sensitive``; the
    placeholder never appears.
    """
    return {
        "format_version": JSON_FORMAT_VERSION,
        "applyable": plan.has_changes and not plan.blocking,
        "complete": True,
        "errored": False,
        "resource_changes": [_resource_change(c) for c in plan.resource_changes],
        "resource_drift": [_resource_change(c) for c in plan.drift],
        "diagnostics": [diagnostic_json(d, mask_text) for d in plan.diagnostics],
        "mlctl": {
            "plan_format_version": plan.format_version,
            "mlctl_version": plan.mlctl_version,
            "environment": plan.environment,
            "created_at": plan.created_at,
            "lineage": plan.lineage,
            "serial": plan.serial,
            "spec_digest": plan.spec_digest,
            "data": dict(plan.data),
            "refresh": plan.refresh,
            "targets": list(plan.targets),
            "replace": list(plan.replace),
            "warnings": [mask_text(str(w)) for w in plan.warnings],
            "blocking": [mask_text(b) for b in plan.blocking],
            "summary": dict(plan.counts().items()),
            "summary_line": plan.summary(),
            "rollouts": [r.model_dump(mode="json") for r in plan.rollouts],
        },
    }


def render_json(plan: Plan) -> str:
    """:func:`plan_json` as indented JSON text."""
    return redact(json.dumps(plan_json(plan), indent=2) + "\n")


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
