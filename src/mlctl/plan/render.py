"""Plan renderers: the same Plan as human text, GitHub markdown, or JSON.

Renderers return strings and never print (the CLI prints). Text follows Terraform: changes
found by refresh first under their own heading, a legend of only the symbols that occur, one
block per change sorted in apply order, and one summary line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlctl.plan.diff import short
from mlctl.plan.model import SYMBOLS, Plan, ResourceChange

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


def render_change(change: ResourceChange) -> list[str]:
    """The text block of one change (headline, symbol + address, indented details)."""
    action = _main_action(change)
    symbol = SYMBOLS.get(action, change.symbol)
    lines = [f"  {_headline(change)}", f"  {symbol:>3} {action} {change.address}"]
    if action == "create" and isinstance(change.after, dict) and not change.details:
        for key, value in change.after.items():
            lines.append(f"        {key}: {short(value)}")
    for line in _value_line(change) + change.details:
        lines.append(f"        {line}")
    for block in change.blocking:
        lines.append(f"        ! {block}")
    return lines


def render_text(plan: Plan) -> str:
    """Terraform-style human output ending with the summary line."""
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
                    out.append(f"      ~ {key}: {short(before.get(key))} -> {short(after.get(key))}")
        out.append("")
        out.append("Applying will bring these objects back in line with the configuration.")
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
                out.append(f"  {SYMBOLS[action]:>3} {_LEGEND[action]}")
        out.append("")
        out.append(f'mlctl will perform the following actions in environment "{plan.environment}":')
        out.append("")
        for change in plan.resource_changes:
            out.extend(render_change(change))
            out.append("")
    for warning in plan.warnings:
        out.append(f"Warning: {warning}")
    if plan.warnings:
        out.append("")
    out.append(plan.summary())
    return "\n".join(out) + "\n"


_PLACEHOLDER = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
_QUOTED_SECRET = re.compile(r'"(?:[^"\\]|\\.)*' + _PLACEHOLDER + r'(?:[^"\\]|\\.)*"')
_BARE_SECRET = re.compile(r"[^\s,;()\[\]{}]*" + _PLACEHOLDER + r"[^\s,;()\[\]{}]*")
SENSITIVE = "(sensitive)"


def mask_text(text: str) -> str:
    """``text`` with every value that came from ``${VAR}`` replaced by ``(sensitive)``."""
    if "${" not in text:
        return text
    return _BARE_SECRET.sub(SENSITIVE, _QUOTED_SECRET.sub(SENSITIVE, text))


def mask_value(value: Any) -> Any:
    """A copy of ``value`` where every string holding a ``${VAR}`` placeholder is ``(sensitive)``.

    Specs in state and plans keep the placeholder text of secret values (never the resolved
    value); comments show neither.
    """
    if isinstance(value, str):
        return SENSITIVE if re.search(_PLACEHOLDER, value) else value
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value


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
            "warnings": [mask_text(w) for w in plan.warnings],
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
        head.append(f"> :warning: {_escape(warning)}")
    if plan.warnings:
        head.append("")
    for change in plan.resource_changes:
        table = markdown_evaluation(change)
        if table:
            head += [*table, ""]
    chunks = [[*render_change(change), ""] for change in plan.resource_changes]
    tail: list[list[str]] = []
    if plan.drift:
        block = ["<details><summary>Changed outside of mlctl (found by refresh)</summary>", "", "```"]
        block += [f"{c.address}: {c.reason}" for c in plan.drift]
        block += ["```", "", "Applying will bring these objects back in line with the configuration."]
        block += ["</details>", ""]
        tail.append(block)
    return head, chunks, tail


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
    return "\n".join(out) + "\n"


def plan_json(plan: Plan) -> dict[str, Any]:
    """The machine-readable plan (``format_version``, ``resource_changes[]`` ...)."""
    data = plan.model_dump(mode="json")
    data["summary"] = {k: v for k, v in plan.counts().items()}
    data["summary_line"] = plan.summary()
    return data


def render_json(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
