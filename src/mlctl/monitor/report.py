"""Reports of a monitor run: terminal text, JSON, Markdown (for an issue or a PR) and one
self-contained HTML page with a histogram per feature, reference against current.

Contract: renderers take a :class:`~mlctl.monitor.run.RunResult` and return text; nothing
here evaluates or writes state. Findings are sorted breaches first, then by severity, then by
statistic. The HTML embeds its images as base64 PNG (matplotlib, Agg backend) and loads
nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from mlctl.monitor.findings import Finding, MonitorResult, sort_findings
from mlctl.monitor.run import RunResult

_ICON = {"ok": "ok", "breach": "BREACH", "insufficient": "not judged", "skipped": "skipped", "error": "ERROR"}
_MD_ICON = {"ok": "✅", "breach": "🔴", "insufficient": "⚪", "skipped": "⏭️", "error": "❌"}


def fmt(value: Any, digits: int = 3) -> str:
    """``value`` as reports show it: ``-`` for None, floats to ``digits`` places (scientific when
    tiny or huge), anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _status(result: MonitorResult) -> str:
    if result.fired:
        return "FIRED"
    if result.status == "breach":
        return f"breach {result.consecutive}/{result.required}"
    return _ICON.get(result.status, result.status)


def render_text(run: RunResult) -> str:
    """Terminal summary: one block per monitor, then the alerts and a last line."""
    lines = [f"Monitors of {run.environment} at {run.time}:", ""]
    for r in run.results:
        version = f" v{r.version}" if r.version else ""
        lines.append(f"  {r.name} ({r.kind}, {r.model}{version}): {_status(r)}")
        lines.append(f"    {r.summary}")
        if r.source:
            lines.append(f"    data: {r.source}")
        for f in sort_findings(r.findings):
            if r.kind == "drift" and not f.breach and not f.note and f.severity == "low":
                continue
            lines.append(f"    {'!' if f.breach else '-'} {_finding_line(f)}")
        for a in r.actions:
            lines.append(f"    {a.action}: {'' if a.ok else 'FAILED: '}{a.detail}")
    lines.append("")
    lines += run.rollout_lines()
    for r in run.fired:
        lines.append(f"ALERT {run.environment}/{r.name} ({r.severity}): {r.summary}")
    fired = len(run.fired)
    lines.append(
        f"{len(run.results)} monitor{'s' if len(run.results) != 1 else ''} run, {fired} fired."
        if fired
        else f"{len(run.results)} monitor{'s' if len(run.results) != 1 else ''} run, none fired."
    )
    return "\n".join(lines)


def _finding_line(f: Finding) -> str:
    if f.note.startswith("not judged"):
        return f"{f.name}: {f.note}"
    text = f"{f.name}: {f.test} {fmt(f.statistic)} (threshold {f.op} {fmt(f.threshold)}), {f.severity}"
    if f.p_adjusted is not None:
        text += f", p_adj {fmt(f.p_adjusted)}"
    if f.note:
        text += f"; {f.note}"
    return text


def render_json(run: RunResult) -> str:
    return json.dumps(run.to_dict(), indent=2)


def render_markdown(run: RunResult) -> str:
    """GitHub-flavoured Markdown: a summary line, a table per monitor."""
    fired = run.fired
    head = (
        f"### 🔴 mlctl monitors: {len(fired)} of {len(run.results)} fired in `{run.environment}`"
        if fired
        else f"### ✅ mlctl monitors: none of {len(run.results)} fired in `{run.environment}`"
    )
    out = [head, "", f"_{run.time}_", ""]
    out += ["| Monitor | Kind | Model | Status | Summary |", "|---|---|---|---|---|"]
    for r in run.results:
        version = f" v{r.version}" if r.version else ""
        out.append(
            f"| `{r.name}` | {r.kind} | {r.model}{version} | {_MD_ICON.get(r.status, '')} {_status(r)} | "
            f"{_md(r.summary)} |"
        )
    for r in run.results:
        if not r.findings and not r.actions:
            continue
        out += [
            "",
            f"<details{' open' if r.fired else ''}><summary><b>{html.escape(r.name)}</b>: "
            f"{html.escape(r.summary)}</summary>",
            "",
        ]
        if r.source:
            out += [f"Data: {_md(r.source)}", ""]
        if r.findings:
            out += [
                "| | Name | Test | Statistic | Threshold | Severity | p (adj.) | n ref / cur |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for f in sort_findings(r.findings):
                mark = "🔴" if f.breach else ("⚪" if f.note.startswith("not judged") else "")
                out.append(
                    f"| {mark} | `{f.name}` | {f.test} | {fmt(f.statistic)} | {f.op} {fmt(f.threshold)} | "
                    f"{f.severity} | {fmt(f.p_adjusted)} | {fmt(f.n_reference)} / {fmt(f.n_current)} |"
                )
        for a in r.actions:
            out.append(f"- **{a.action}**: {'' if a.ok else 'failed: '}{_md(a.detail)}")
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _histogram(ref: Any, cur: Any, categorical: bool, title: str) -> str:
    """A base64 PNG comparing reference and current distributions."""
    from mlctl.extras import require

    matplotlib = require("matplotlib", "report")  # the mlctl[report] extra
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.2, 2.8), dpi=90)
    try:
        if categorical:
            values = sorted({*map(str, ref), *map(str, cur)})[:20]
            r = np.array([np.mean(np.asarray(ref, dtype=str) == v) if len(ref) else 0 for v in values])
            c = np.array([np.mean(np.asarray(cur, dtype=str) == v) if len(cur) else 0 for v in values])
            x = np.arange(len(values))
            ax.bar(x - 0.2, r, 0.4, label="reference", color="#4c72b0")
            ax.bar(x + 0.2, c, 0.4, label="current", color="#dd8452")
            ax.set_xticks(x, values, rotation=30, fontsize=7)
        else:
            both = np.concatenate([np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)])
            if both.size:
                lo, hi = np.quantile(both, [0.005, 0.995])
                if lo == hi:
                    lo, hi = lo - 0.5, hi + 0.5
                bins = [float(b) for b in np.linspace(lo, hi, 31)]
                ax.hist(
                    np.clip(ref, lo, hi),
                    bins=bins,
                    density=True,
                    alpha=0.55,
                    label="reference",
                    color="#4c72b0",
                )
                ax.hist(
                    np.clip(cur, lo, hi),
                    bins=bins,
                    density=True,
                    alpha=0.55,
                    label="current",
                    color="#dd8452",
                )
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;font-size:.85rem}
th{background:#f5f5f5}.breach{color:#b00020;font-weight:600}.high{background:#fde2e1}
.medium{background:#fff4d6}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #ddd;padding:.5rem}
.card.breach{border-color:#b00020}.muted{color:#777}
"""


def render_html(run: RunResult) -> str:
    """One self-contained page: summary table, then per monitor its findings and histograms."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>mlctl monitors: {esc(run.environment)}</title><style>{REPORT_CSS}</style></head><body>",
        f"<h1>Monitors of <code>{esc(run.environment)}</code></h1>",
        f"<p class='muted'>{esc(run.time)} &middot; {len(run.fired)} of {len(run.results)} fired</p>",
        "<table><tr><th>Monitor</th><th>Kind</th><th>Model</th><th>Status</th><th>Summary</th></tr>",
    ]
    for r in run.results:
        cls = "breach" if r.status == "breach" else ""
        parts.append(
            f"<tr><td>{esc(r.name)}</td><td>{r.kind}</td><td>{esc(r.model)}"
            f"{' v' + str(r.version) if r.version else ''}</td><td class='{cls}'>{esc(_status(r))}</td>"
            f"<td>{esc(r.summary)}</td></tr>"
        )
    parts.append("</table>")
    for r in run.results:
        parts.append(f"<h2>{esc(r.name)} <span class='muted'>({r.kind})</span></h2><p>{esc(r.summary)}</p>")
        if r.source:
            parts.append(f"<p class='muted'>data: {esc(r.source)}</p>")
        for a in r.actions:
            parts.append(f"<p><b>{a.action}</b>: {'' if a.ok else 'failed: '}{esc(a.detail)}</p>")
        if r.metrics:
            parts.append("<table><tr>" + "".join(f"<th>{esc(k)}</th>" for k in r.metrics) + "</tr><tr>")
            parts.append("".join(f"<td>{esc(fmt(v))}</td>" for v in r.metrics.values()) + "</tr></table>")
        if not r.findings:
            continue
        parts.append(
            "<table><tr><th>Name</th><th>Test</th><th>Statistic</th><th>Threshold</th><th>Severity</th>"
            "<th>p</th><th>p (adjusted)</th><th>n ref</th><th>n cur</th><th>Note</th></tr>"
        )
        ordered = sort_findings(r.findings)
        for f in ordered:
            cls = f"{'breach ' if f.breach else ''}{f.severity if f.statistic is not None else ''}"
            parts.append(
                f"<tr class='{cls}'><td>{esc(f.name)}</td><td>{f.test}</td><td>{fmt(f.statistic)}</td>"
                f"<td>{f.op} {fmt(f.threshold)}</td><td>{f.severity}</td><td>{fmt(f.p_value)}</td>"
                f"<td>{fmt(f.p_adjusted)}</td><td>{fmt(f.n_reference)}</td><td>{fmt(f.n_current)}</td>"
                f"<td>{esc(f.note)}</td></tr>"
            )
        parts.append("</table>")
        plots = [f for f in ordered if f.name in r.samples]
        if plots:
            parts.append("<div class='grid'>")
            for f in plots:
                ref, cur, categorical = r.samples[f.name]
                title = f"{f.name}: {f.test} {fmt(f.statistic)} ({f.severity})"
                image = _histogram(ref, cur, categorical, title)
                parts.append(
                    f"<div class='card{' breach' if f.breach else ''}'><img alt='{esc(f.name)} histogram' "
                    f"src='data:image/png;base64,{image}'></div>"
                )
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(run: RunResult, directory: Path) -> list[Path]:
    """Write monitor-report.json, .md and .html into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "monitor-report.json": render_json(run) + "\n",
        "monitor-report.md": render_markdown(run),
        "monitor-report.html": render_html(run),
    }
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
