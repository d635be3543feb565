"""``mlctl maturity``: the checklist of the guide's maturity model, evaluated with evidence.

A bare repository (a model in git, nothing applied, no CI) is level 0, level 1 once its versions
come from recorded runs; the example repository as `mlctl init` writes it (its endpoint
declares a canary), applied, with a drift monitor run and a rollback, reaches level 4.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import edit, invoke
from mlctl.operations.maturity import ITEMS, LEVELS, Facts, assess, render_text
from mlctl.state.document import MonitorRecord, State
from monitor_support import activity_rows, write_log
from plan.world import applied_state, load, write_repo

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def test_every_level_has_items_and_every_check_says_what_it_reads() -> None:
    assert set(LEVELS) == {0, 1, 2, 3, 4}
    assert {item.level for item in ITEMS} == {1, 2, 3, 4}
    assert len({item.key for item in ITEMS}) == len(ITEMS)
    for item in ITEMS:
        assert item.check.__doc__ and item.fix


def test_a_bare_repository_is_level_0_then_1(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    spec = load(root)
    bare = assess(Facts(spec, State(environment="dev"), root, NOW))
    assert bare.level == 0 and bare.name == "Manual"
    items = {i.key: i for i in bare.items}
    assert items["models_in_git"].met and not items["runs_recorded"].met
    assert bare.next_step is not None and bare.next_step.key == "runs_recorded"
    assert "mlctl apply -e dev" in bare.next_step.fix
    assert not items["ci"].met and not items["policies"].met and not items["rollback_ready"].met

    tracked = assess(Facts(spec, applied_state(spec), root, NOW))
    assert tracked.level == 1 and [x.met for x in tracked.levels] == [True, True, False, False, False]
    assert tracked.next_step is not None and tracked.next_step.level == 2
    text = render_text(tracked)
    assert text.startswith("Maturity of environment dev: level 1 (Tracked)")
    assert "[ ] plan on pull requests, apply on merge: missing .github/workflows/plan.yml" in text


def test_a_drift_run_counts_for_seven_days(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    spec = load(root)
    drift = [n for n, m in spec.config.monitors.items() if m.kind == "drift"]
    if not drift:
        pytest.skip("the plan world declares no drift monitor")
    state = applied_state(spec)
    state.monitors[drift[0]] = MonitorRecord(last_run_at="2026-01-05T00:00:00Z")
    recent = {i.key: i for i in assess(Facts(spec, state, root, NOW)).items}["drift_recent"]
    assert recent.met and "2026-01-05" in recent.evidence
    late = NOW + timedelta(days=10)
    stale = {i.key: i for i in assess(Facts(spec, state, root, late)).items}["drift_recent"]
    assert not stale.met and "more than 7 days ago" in stale.evidence


MODELS = Path("environments/dev/models.yaml")


@pytest.mark.slow
def test_the_applied_example_reaches_level_4(applied: Path) -> None:
    write_log(applied, activity_rows(applied, 2000, seed=3))
    ran = invoke(applied, "monitor", "run", "-e", "dev", "churn-drift")
    assert ran.exit_code in (0, 2), ran.output
    edit(applied / MODELS, "max_depth: 8", "max_depth: 7")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    rolled = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--reason", "drill")
    assert rolled.exit_code == 0, rolled.output

    report = json.loads(invoke(applied, "maturity", "-e", "dev", "--format", "json").stdout)
    assert [i["key"] for i in report["items"] if not i["met"]] == [], report
    assert report["level"] == 4
    rollouts = {i["key"]: i for i in report["items"]}["rollouts"]
    assert rollouts["evidence"].startswith("rollout declared: churn-api")  # the example's canary

    result = invoke(applied, "maturity", "-e", "dev")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Maturity of environment dev: level 4 (Self-Healing)")
    assert "Every item of every level is met." in result.stdout
    assert "last rollback" in result.stdout and "churn-drift ran" in result.stdout

    markdown = invoke(applied, "maturity", "-e", "dev", "--format", "markdown").stdout
    assert markdown.startswith("## Maturity of `dev`: level 4 (Self-Healing)")
    comment = invoke(applied, "plan", "-e", "dev", "--format", "markdown", "--maturity").stdout
    assert "### Maturity of `dev`: level 4 (Self-Healing)" in comment
