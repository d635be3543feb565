"""``maturity``: where an environment stands on the MLOps guide's maturity model, with evidence.

The guide's levels are 0 *Manual* (notebooks, hand-copied models), 1 *Tracked* (models in git,
every version from a recorded run), 2 *Automated* (data checks, gates, features and deployment
run by the pipeline from CI), 3 *Full MLOps* (monitoring, policies, progressive delivery: canary,
shadow, A/B) and 4 *Self-Healing* (retraining and rollback triggered by monitors, the rollback
procedure documented and exercised). :data:`ITEMS` is the checklist, one row per item: its
level, what it checks (the docstring of its check function says exactly which evidence) and the
one change that would meet it. A level is reached when every item of it and of every level
below is met; level 0 needs nothing.

Contract: read-only. :func:`maturity` reads the workspace's desired state, its state (no lock:
a snapshot) and files of the repository (``.github/workflows/``, ``policies/``); it never
refreshes providers and never writes. ``now`` (default: the current time) anchors "in the last
7 days". The renderers return strings (text, markdown, JSON); nothing here prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import State
from mlctl.workspace import Workspace

LEVELS: dict[int, str] = {
    0: "Manual",
    1: "Tracked",
    2: "Automated",
    3: "Full MLOps",
    4: "Self-Healing",
}

#: How recent a drift monitor run must be to count as monitoring.
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class Facts:
    """What the checks read: the desired state, the state, the repository root and the time."""

    spec: EnvSpec
    state: State
    repo: Path
    now: datetime

    @property
    def env(self) -> str:
        return self.spec.name


#: A check returns (met, evidence).
Check = Callable[[Facts], tuple[bool, str]]


def _models_in_git(f: Facts) -> tuple[bool, str]:
    """At least one model is declared in ``environments/<env>/``."""
    models = sorted(f.spec.config.models)
    return bool(models), (f"{len(models)} model(s) declared: {', '.join(models)}" if models else "no model")


def _runs_recorded(f: Facts) -> tuple[bool, str]:
    """Every registered version in the state names the training run it came from (``run_id``),
    and at least one version exists."""
    versions = [(name, v) for name, r in sorted(f.state.models.items()) for v in r.versions]
    missing = [f"{name} v{v.version}" for name, v in versions if not v.run_id]
    if not versions:
        return False, "no version registered yet"
    if missing:
        return False, f"no run recorded for {', '.join(missing)}"
    return True, f"{len(versions)} version(s), each with its run"


def _gates(f: Facts) -> tuple[bool, str]:
    """Every model declares at least one quality gate."""
    bare = [n for n, m in sorted(f.spec.config.models.items()) if not m.gates.model_dump(exclude_none=True)]
    if not f.spec.config.models:
        return False, "no model"
    if bare:
        return False, f"no gates on {', '.join(bare)}"
    gates = {
        n: sorted(k for k, v in m.gates.model_dump(exclude_none=True).items() if k != "primary_metric")
        for n, m in sorted(f.spec.config.models.items())
    }
    return True, "; ".join(f"{n}: {', '.join(g)}" for n, g in gates.items())


def _training_datasets(spec: EnvSpec) -> dict[str, set[str]]:
    """model -> the datasets its training reads (its labels and its feature views' sources)."""
    views = spec.config.feature_views
    out: dict[str, set[str]] = {}
    for name, model in spec.config.models.items():
        used = {model.training.labels}
        for ref in model.training.features:
            view = views.get(ref.split(":", 1)[0]) if ":" in ref else None
            if view is not None:
                used.add(view.source)
        out[name] = used
    return out


def _data_checks(f: Facts) -> tuple[bool, str]:
    """Every dataset a model trains on (its labels, its feature views' sources) declares
    ``checks``, which apply runs before training."""
    datasets = f.spec.config.datasets
    used = sorted({d for ds in _training_datasets(f.spec).values() for d in ds})
    if not used:
        return False, "no model trains on a declared dataset"
    unchecked = [
        d
        for d in used
        if d not in datasets
        or not (
            datasets[d].checks.min_rows is not None
            or datasets[d].checks.max_null_ratio is not None
            or datasets[d].checks.columns
        )
    ]
    if unchecked:
        return False, f"no checks on {', '.join(unchecked)}"
    return True, f"checks on {', '.join(used)} run before training"


def _feature_view(f: Facts) -> tuple[bool, str]:
    """Every model's features come from declared feature views (``view:feature``)."""
    views = f.spec.config.feature_views
    if not f.spec.config.models:
        return False, "no model"
    loose = [
        n
        for n, m in sorted(f.spec.config.models.items())
        if not m.training.features or any(r.split(":", 1)[0] not in views for r in m.training.features)
    ]
    if loose:
        return False, f"features not from a feature view: {', '.join(loose)}"
    used = sorted({r.split(":", 1)[0] for m in f.spec.config.models.values() for r in m.training.features})
    return True, f"feature view(s) used: {', '.join(used)}"


def _workflow(repo: Path, name: str) -> bool:
    folder = repo / ".github" / "workflows"
    return (folder / f"{name}.yml").is_file() or (folder / f"{name}.yaml").is_file()


def _ci(f: Facts) -> tuple[bool, str]:
    """``.github/workflows/plan.yml`` (plan on pull requests) and ``apply.yml`` (apply on
    merge) are present."""
    missing = [n for n in ("plan", "apply") if not _workflow(f.repo, n)]
    if missing:
        return False, f"missing .github/workflows/{', '.join(m + '.yml' for m in missing)}"
    return True, ".github/workflows/plan.yml and apply.yml present"


def _endpoint_deployed(f: Facts) -> tuple[bool, str]:
    """An endpoint is declared and the state records it applied (``endpoint.NAME``)."""
    declared = sorted(f.spec.config.endpoints)
    if not declared:
        return False, "no endpoint declared"
    live = [n for n in declared if f"endpoint.{n}" in f.state.resources]
    if not live:
        return False, f"{', '.join(declared)} declared but never applied"
    return True, f"deployed: {', '.join(live)}"


def _monitors(f: Facts) -> tuple[bool, str]:
    """Monitors of the three kinds of the guide's monitoring table are declared: ``drift``,
    ``serving`` (latency, errors) and ``performance`` (delayed labels)."""
    kinds = {m.kind for m in f.spec.config.monitors.values()}
    missing = [k for k in ("drift", "serving", "performance") if k not in kinds]
    if missing:
        return False, f"no {', '.join(missing)} monitor"
    return True, f"{len(f.spec.config.monitors)} monitor(s): drift, serving and performance"


def _drift_recent(f: Facts) -> tuple[bool, str]:
    """A ``drift`` monitor ran in the last 7 days (``state.monitors[NAME].last_run_at``)."""
    drift = sorted(n for n, m in f.spec.config.monitors.items() if m.kind == "drift")
    if not drift:
        return False, "no drift monitor declared"
    runs: list[tuple[datetime, str]] = []
    for name in drift:
        record = f.state.monitors.get(name)
        if record is not None and record.last_run_at:
            try:
                at = datetime.fromisoformat(record.last_run_at.replace("Z", "+00:00"))
            except ValueError:
                continue
            runs.append((at if at.tzinfo else at.replace(tzinfo=UTC), name))
    if not runs:
        return False, f"{', '.join(drift)} never ran"
    at, name = max(runs)
    when = at.isoformat().replace("+00:00", "Z")
    if f.now - at > RECENT:
        return False, f"{name} last ran {when}, more than 7 days ago"
    return True, f"{name} ran {when}"


def _policies(f: Facts) -> tuple[bool, str]:
    """``policies/*.rego`` exist (evaluated on every plan; denials block apply)."""
    files = sorted(p.name for p in (f.repo / "policies").glob("*.rego") if not p.name.endswith("_test.rego"))
    if not files:
        return False, "no policies/*.rego"
    return True, f"{len(files)} policy file(s): {', '.join(files)}"


def _rollouts(f: Facts) -> tuple[bool, str]:
    """An endpoint declares a ``rollout`` (canary, shadow or A/B) of a candidate stage."""
    declared = {n: getattr(e, "rollout", None) for n, e in sorted(f.spec.config.endpoints.items())}
    found = [f"{n} ({r.strategy})" for n, r in declared.items() if r is not None]
    if not found:
        return False, "no endpoint declares a rollout"
    return True, f"rollout declared: {', '.join(found)}"


def _retrain(f: Facts) -> tuple[bool, str]:
    """Every model declares retrain triggers (``retrain.on`` or ``retrain.schedule``) and a
    monitor's actions include ``retrain``."""
    models = f.spec.config.models
    bare = [
        n for n, m in sorted(models.items()) if m.retrain is None or not (m.retrain.on or m.retrain.schedule)
    ]
    if not models:
        return False, "no model"
    if bare:
        return False, f"no retrain triggers on {', '.join(bare)}"
    retraining = sorted(n for n, m in f.spec.config.monitors.items() if "retrain" in m.actions)
    if not retraining:
        return False, "no monitor has the retrain action"
    return True, f"retrain declared on every model; monitors that retrain: {', '.join(retraining)}"


def _auto_rollback(f: Facts) -> tuple[bool, str]:
    """A monitor's actions include ``rollback`` (a breach rolls production back by itself)."""
    rolling = sorted(n for n, m in f.spec.config.monitors.items() if "rollback" in m.actions)
    if not rolling:
        return False, "no monitor has the rollback action"
    return True, f"monitors that roll back: {', '.join(rolling)}"


def _rollback_ready(f: Facts) -> tuple[bool, str]:
    """``.github/workflows/rollback.yml`` documents the procedure and the state records a
    rollback (a stage move with action ``rollback``): the lever was pulled at least once."""
    if not _workflow(f.repo, "rollback"):
        return False, "no .github/workflows/rollback.yml"
    done = [
        (e.time, name, e)
        for name, r in sorted(f.state.models.items())
        for e in r.history
        if e.action == "rollback"
    ]
    if not done:
        return False, "rollback.yml present, but no rollback recorded"
    time, name, event = max(done, key=lambda d: d[0])
    return True, (
        f"rollback.yml present; last rollback {time}: {name} v{event.from_version} -> "
        f"v{event.to_version} by {event.actor or '?'}"
    )


@dataclass(frozen=True)
class Item:
    """One checklist item: ``level`` it belongs to, what it asks, its check, the fix."""

    key: str
    level: int
    title: str
    check: Check
    fix: str


#: The checklist. ``ENV`` in a fix is replaced by the environment's name.
ITEMS: tuple[Item, ...] = (
    Item("models_in_git", 1, "models declared in git", _models_in_git,
         "declare a model in environments/ENV/models.yaml"),
    Item("runs_recorded", 1, "a run recorded for every version", _runs_recorded,
         "train through `mlctl apply -e ENV`, which records a run per version"),
    Item("gates", 2, "quality gates on every model", _gates,
         "add gates (e.g. min_auc, max_regression) to each model"),
    Item("data_checks", 2, "a data check before training", _data_checks,
         "add checks (min_rows, max_null_ratio, columns) to every dataset a model trains on"),
    Item("feature_view", 2, "features from a feature view", _feature_view,
         "declare feature_views and name features as view:feature"),
    Item("ci", 2, "plan on pull requests, apply on merge", _ci,
         "add .github/workflows/plan.yml and apply.yml (mlctl init writes both)"),
    Item("endpoint_deployed", 2, "an endpoint deployed", _endpoint_deployed,
         "run `mlctl apply -e ENV` with an endpoint declared in deployments.yaml"),
    Item("monitors", 3, "drift, serving and performance monitors", _monitors,
         "declare monitors of kind drift, serving and performance in monitors.yaml"),
    Item("drift_recent", 3, "a drift monitor run in the last 7 days", _drift_recent,
         "schedule `mlctl monitor run -e ENV` (.github/workflows/monitor.yml)"),
    Item("policies", 3, "policies on the plan", _policies,
         "add policies/*.rego (mlctl init ships examples)"),
    Item("rollouts", 3, "progressive delivery (canary, shadow or A/B)", _rollouts,
         "declare rollout: {strategy: canary, candidate: staging} on an endpoint"),
    Item("retrain", 4, "retraining triggers declared", _retrain,
         "add retrain: {on: [drift, new_data]} to each model and the retrain action to a drift monitor"),
    Item("auto_rollback", 4, "a monitor that rolls back", _auto_rollback,
         "add actions: [alert, rollback] to a serving monitor"),
    Item("rollback_ready", 4, "rollback procedure documented and exercised", _rollback_ready,
         "keep .github/workflows/rollback.yml and rehearse: `mlctl rollback MODEL -e ENV --reason drill`"),
)  # fmt: skip


@dataclass(frozen=True)
class ItemResult:
    key: str
    level: int
    title: str
    met: bool
    evidence: str
    fix: str


@dataclass(frozen=True)
class LevelResult:
    level: int
    name: str
    met: bool


@dataclass
class MaturityReport:
    """The checklist evaluated on one environment; ``level``: the highest level reached."""

    environment: str
    level: int
    levels: list[LevelResult] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return LEVELS[self.level]

    @property
    def next_step(self) -> ItemResult | None:
        """The first unmet item of the lowest level not reached (None at level 4)."""
        return next((i for i in self.items if not i.met and i.level == self.level + 1), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "level": self.level,
            "name": self.name,
            "levels": [asdict(x) for x in self.levels],
            "items": [asdict(x) for x in self.items],
        }


def assess(facts: Facts) -> MaturityReport:
    """Evaluate :data:`ITEMS` on ``facts`` (pure: reads only ``facts``, and files under ``repo``)."""
    items = []
    for item in ITEMS:
        met, evidence = item.check(facts)
        items.append(
            ItemResult(item.key, item.level, item.title, met, evidence, item.fix.replace("ENV", facts.env))
        )
    levels = [LevelResult(0, LEVELS[0], True)]
    for number in range(1, max(LEVELS) + 1):
        met = levels[-1].met and all(i.met for i in items if i.level == number)
        levels.append(LevelResult(number, LEVELS[number], met))
    reached = max(x.level for x in levels if x.met)
    return MaturityReport(facts.env, reached, levels, items)


def maturity(ws: Workspace, *, now: datetime | None = None) -> MaturityReport:
    """The maturity report of ``ws`` (see the module contract)."""
    state = ws.backend.read() or State(environment=ws.env)
    return assess(Facts(ws.spec, state, ws.repo, now or datetime.now(UTC)))


# -- renderers ------------------------------------------------------------------------------


def render_text(report: MaturityReport) -> str:
    """Levels, then each item with ``[x]``/``[ ]``, its evidence and (unmet) the fix."""
    out = [f"Maturity of environment {report.environment}: level {report.level} ({report.name})", ""]
    for level in report.levels[1:]:
        out.append(f"Level {level.level} {level.name}: {'met' if level.met else 'not met'}")
        for item in (i for i in report.items if i.level == level.level):
            out.append(f"  [{'x' if item.met else ' '}] {item.title}: {item.evidence}")
            if not item.met:
                out.append(f"      to meet it: {item.fix}")
    step = report.next_step
    out += ["", f"Next: {step.fix}" if step else "Every item of every level is met."]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown_lines(report: MaturityReport, *, heading: str = "##", collapsed: bool = False) -> list[str]:
    """The report as GitHub markdown lines: a heading with the level, the next step, and a
    table of every item (inside ``<details>`` when ``collapsed``, as in the plan comment)."""
    step = report.next_step
    out = [
        f"{heading} Maturity of `{report.environment}`: level {report.level} ({report.name})",
        "",
        f"**Next:** {_md(step.fix)}" if step else "**Every item of every level is met.**",
        "",
    ]
    if collapsed:
        out += ["<details><summary>Maturity checklist</summary>", ""]
    out += ["| level | item | met | evidence | to meet it |", "|---|---|---|---|---|"]
    for item in report.items:
        mark = ":white_check_mark:" if item.met else ":x:"
        fix = "" if item.met else _md(item.fix)
        level = f"{item.level} {LEVELS[item.level]}"
        out.append(f"| {level} | {_md(item.title)} | {mark} | {_md(item.evidence)} | {fix} |")
    if collapsed:
        out += ["", "</details>"]
    return out


def render_markdown(report: MaturityReport) -> str:
    return "\n".join(markdown_lines(report)).rstrip("\n") + "\n"


def render_json(report: MaturityReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}

__all__ = [
    "ITEMS",
    "LEVELS",
    "RENDERERS",
    "Facts",
    "Item",
    "ItemResult",
    "LevelResult",
    "MaturityReport",
    "assess",
    "markdown_lines",
    "maturity",
]
