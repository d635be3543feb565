"""The pull-request comment: one markdown report for the plans of several environments.

Contract: :func:`build_comment` returns one or more comment bodies, each at most ``limit``
characters (GitHub refuses comments over 65,536; the default leaves room). Every body starts
with the hidden marker :data:`MARKER`, so a workflow finds its own comment and updates it in
place instead of adding one per push. The first body opens with the summary of every
environment (counts by action, the gates and checks that would block apply), then one section
per environment: its summary, evaluated candidates next to production, and the changes inside
``<details>``. Environments a pull request's plan held back (``held``: a server the base branch
does not declare, see :mod:`mlctl.gitops.endpoints`) are listed first, like blockers. Values
that came from ``${VAR}`` are ``(sensitive)``.

When everything does not fit, ``mode="truncate"`` (one comment) drops change details from the
end, whole changes at a time, and says how many were left out and where the full plan is (the
JSON plan artifact); ``mode="split"`` packs the sections into numbered parts ("part 2 of 3"),
each with its own marker (``<!-- mlctl-plan part 2 -->``). Summaries are never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mlctl.plan.model import Plan
from mlctl.plan.render import details_block, markdown_blocking, markdown_counts, markdown_section
from mlctl.redaction import redact

MARKER = "<!-- mlctl-plan -->"
LIMIT = 65_000
Mode = Literal["truncate", "split"]


@dataclass
class Report:
    """The plans of one run of ``plan`` (one per environment) and what was compared."""

    plans: list[Plan]
    base: str | None = None
    head: str | None = None
    notes: list[str] = field(default_factory=list)
    appendix: list[str] = field(default_factory=list)  # markdown lines after the summary (plan --maturity)
    held: list[str] = field(default_factory=list)  # one line per environment not planned before review


def artifact_pointer() -> str:
    """Where the full JSON plan is: the workflow run's artifacts when in GitHub Actions."""
    server = os.environ.get("GITHUB_SERVER_URL")
    repository = os.environ.get("GITHUB_REPOSITORY")
    run = os.environ.get("GITHUB_RUN_ID")
    name = os.environ.get("MLCTL_PLAN_ARTIFACT", "mlctl-plan")
    if server and repository and run:
        return f"the [`{name}` artifact of this workflow run]({server}/{repository}/actions/runs/{run})"
    return f"the `{name}` artifact (the JSON plan: `mlctl plan --format json`)"


def _overall(report: Report) -> list[str]:
    plans = report.plans
    title = "## mlctl plan"
    if len(plans) == 1:
        title += f": `{plans[0].environment}`"
    elif plans:
        title += ": " + ", ".join(f"`{p.environment}`" for p in plans)
    out = [MARKER, title, ""]
    if report.held:
        shown = [line.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") for line in report.held]
        out += ["**Not planned before review:**", *(f"- :no_entry: {line}" for line in shown), ""]
    if not plans and not report.held:
        out += ["**No environment changed.** Nothing to plan.", ""]
    changed = [p for p in plans if p.has_changes]
    blocked = [p for p in plans if p.blocking]
    if plans:
        if not changed:
            out.append("**No changes.** Every environment matches its configuration.")
        else:
            verdict = ":x: apply would fail" if blocked else ":white_check_mark: ready to apply"
            out.append(
                f"**{len(changed)} of {len(plans)} environment{'s' if len(plans) != 1 else ''} "
                f"would change; {verdict}.**"
            )
        out.append("")
        if len(plans) > 1:
            out += [f"- `{p.environment}`: {p.summary()}" for p in plans] + [""]
        counts = markdown_counts(plans)
        if counts:
            out += [*counts, ""]
        blocking = markdown_blocking(plans)
        if blocking:
            out += [*blocking, ""]
    if report.base or report.head:
        out.append(
            f"<sub>compared {report.base or '?'} ... {(report.head or '?')[:12]}"
            + "".join(f"; {n}" for n in report.notes)
            + "</sub>"
        )
        out.append("")
    elif report.notes:
        out += [f"<sub>{'; '.join(report.notes)}</sub>", ""]
    if report.appendix:
        out += [*report.appendix, ""]
    return out


def _text(lines: Sequence[str]) -> str:
    return "\n".join(lines)


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _cut(chunk: list[str], budget: int) -> list[str]:
    """The first lines of one oversized change that fit ``budget`` characters, with a note."""
    out: list[str] = []
    note = "  ... (this change is too long for a comment; see the JSON plan)"
    used = len(note) + 1
    for line in chunk:
        if used + len(line) + 1 > budget:
            break
        out.append(line)
        used += len(line) + 1
    return [*out, note, ""]


def _pack_changes(chunks: list[list[str]], budget: int, label: str) -> tuple[list[str], list[list[str]]]:
    """As many whole changes as fit ``budget`` in one ``<details>`` block, and the rest.

    A single change longer than the whole budget is cut (with a note) rather than lost.
    """
    overhead = _size(details_block([], label))
    taken: list[list[str]] = []
    used = overhead
    for index, chunk in enumerate(chunks):
        size = _size(chunk)
        if used + size <= budget:
            taken.append(chunk)
            used += size
            continue
        if not taken and budget - overhead > 200:
            return details_block([_cut(chunk, budget - overhead)], label), chunks[index + 1 :]
        return (details_block(taken, label) if taken else []), chunks[index:]
    return (details_block(taken, label) if taken else []), []


def _sections(report: Report) -> list[tuple[list[str], list[list[str]], list[list[str]], str]]:
    out = []
    for plan in report.plans:
        head, chunks, tail = markdown_section(plan)
        n = len(chunks)
        out.append((head, chunks, tail, f"{n} change{'s' if n != 1 else ''} in `{plan.environment}`"))
    return out


def build_comment(report: Report, *, limit: int = LIMIT, mode: Mode = "truncate") -> list[str]:
    """The comment bodies for ``report`` (see the module contract); every value resolved from
    ``${VAR}`` is redacted (:func:`~mlctl.redaction.redact`), whatever line carries it."""
    return [redact(body) for body in _bodies(report, limit=limit, mode=mode)]


def _bodies(report: Report, *, limit: int, mode: Mode) -> list[str]:
    if limit < 2_000:
        raise ValueError("limit must leave room for the summary (>= 2000 characters)")
    summary = _overall(report)
    sections = _sections(report)
    full = list(summary)
    for head, chunks, tail, label in sections:
        full += head
        if chunks:
            full += details_block(chunks, label)
        for block in tail:
            full += block
    if _size(full) <= limit:
        return [_text(full).rstrip("\n") + "\n"]
    if mode == "split":
        return _split(summary, sections, limit)
    return [_truncate(summary, sections, limit)]


def _truncate(
    summary: list[str],
    sections: list[tuple[list[str], list[list[str]], list[list[str]], str]],
    limit: int,
) -> str:
    pointer = artifact_pointer()
    reserve = 400 + len(pointer)
    out = list(summary)
    # Heads first (they carry the verdicts), then as many changes as the rest allows.
    heads = sum(_size(h) for h, _, _, _ in sections)
    budget = limit - _size(out) - heads - reserve
    omitted = 0
    for head, chunks, tail, label in sections:
        out += head
        block, rest = _pack_changes(chunks, max(budget, 0), label)
        if block:
            out += block
            budget -= _size(block)
        omitted += len(rest)
        for extra in tail:
            if _size(extra) <= budget:
                out += extra
                budget -= _size(extra)
    if omitted:
        out += [
            f"> :scissors: {omitted} change{'s' if omitted != 1 else ''} not shown: the comment "
            f"would exceed {limit:,} characters. The full plan is in {pointer}.",
            "",
        ]
    text = _text(out).rstrip("\n") + "\n"
    if len(text) > limit:  # heads alone too long (thousands of warnings): hard cut, fences closed
        text = text[: limit - 200].rsplit("\n", 1)[0] + f"\n\n> :scissors: truncated; see {pointer}.\n"
    return text


def _split(
    summary: list[str],
    sections: list[tuple[list[str], list[list[str]], list[list[str]], str]],
    limit: int,
) -> list[str]:
    budget = limit - 200  # room for the part header
    parts: list[list[str]] = [list(summary)]

    def room() -> int:
        return budget - _size(parts[-1])

    def place(block: list[str]) -> None:
        if _size(block) > room() and parts[-1]:
            parts.append([])
        parts[-1].extend(block)

    for head, chunks, tail, label in sections:
        place(head)
        rest = chunks
        continued = False
        while rest:
            name = label + (" (continued)" if continued else "")
            block, remaining = _pack_changes(rest, room(), name)
            if not block:
                if not parts[-1]:
                    break  # cannot happen with limit >= 2000; never loop forever
                parts.append([])
                continue
            parts[-1].extend(block)
            rest = remaining
            continued = True
            if rest:
                parts.append([])
        for extra in tail:
            place(extra)
    total = len(parts)
    bodies = []
    for number, lines in enumerate(parts, start=1):
        if total > 1:
            if number == 1:
                lines = [lines[0], lines[1] + f" (part 1 of {total})", *lines[2:]]
            else:
                lines = [
                    f"<!-- mlctl-plan part {number} -->",
                    f"## mlctl plan (part {number} of {total})",
                    "",
                    *lines,
                ]
        bodies.append(_text(lines).rstrip("\n") + "\n")
    return bodies


__all__ = ["LIMIT", "MARKER", "Report", "artifact_pointer", "build_comment"]
