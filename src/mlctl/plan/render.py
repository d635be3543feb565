"""Plan renderers: the same Plan as human text, GitHub markdown, or JSON.

Renderers return strings and never print (the CLI prints). Text follows Terraform: changes
found by refresh first under their own heading, a legend of only the symbols that occur, one
block per change sorted in apply order, and one summary line.
"""

from __future__ import annotations

import json
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


def render_markdown(plan: Plan) -> str:
    """GitHub-flavoured markdown: summary first, then the changes in a collapsible block."""
    out = [f"### mlctl plan: `{plan.environment}`", "", f"**{plan.summary()}**", ""]
    counts = plan.counts()
    if counts:
        out.append("| action | count |")
        out.append("|---|---|")
        for action in SYMBOLS:
            if counts.get(action):
                out.append(f"| {action} | {counts[action]} |")
        out.append("")
    if plan.blocking:
        out.append("**Would block:**")
        out.extend(f"- {b}" for b in plan.blocking)
        out.append("")
    for warning in plan.warnings:
        out.append(f"> ⚠️ {warning}")
    if plan.warnings:
        out.append("")
    if plan.drift:
        out.append("<details><summary>Changed outside of mlctl</summary>")
        out.append("")
        out.append("```")
        out.extend(f"{c.address}: {c.reason}" for c in plan.drift)
        out.append("```")
        out.append("</details>")
        out.append("")
    if plan.has_changes:
        out.append("<details><summary>Changes</summary>")
        out.append("")
        out.append("```diff")
        for change in plan.resource_changes:
            out.extend(render_change(change))
            out.append("")
        out.append("```")
        out.append("</details>")
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
