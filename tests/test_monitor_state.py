"""State fields added for monitoring parse from old state files, and the monitor command
stays light at import."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from mlctl.plan.triggers import Due, candidate_identity, due_triggers, sweep_cleared, trigger_status
from mlctl.spec.models import Model
from mlctl.state.document import ModelRegistry, ModelVersion, RetrainTrigger, State

OLD_STATE = {
    "format_version": 1,
    "lineage": "3f1c0a1e-0000-4000-8000-000000000000",
    "serial": 4,
    "environment": "dev",
    "resources": {},
    "models": {"m": {"next_version": 2, "versions": [], "stages": {"staging": None, "production": None}}},
}


def test_old_state_without_triggers_or_monitors_parses() -> None:
    state = State.from_json(json.dumps(OLD_STATE))
    assert state.models["m"].triggers == []
    assert state.monitors == {}
    again = State.from_json(state.to_json())
    assert again.models["m"].triggers == [] and again.monitors == {}


def _model(schedule: str | None) -> Model:
    return Model.model_validate(
        {
            "training": {
                "labels": "l",
                "target": "y",
                "features": ["v:f"],
                "estimator": "sklearn.linear_model.LogisticRegression",
            },
            "retrain": {"schedule": schedule, "on": ["drift"]} if schedule else None,
        }
    )


def test_schedule_due_only_after_a_tick_since_last_training() -> None:
    registry = ModelRegistry(
        versions=[ModelVersion(version=1, identity="i1", status="passed", created_at="2026-11-20T10:00:00Z")]
    )
    model = _model("0 6 * * 1")  # Mondays 06:00
    assert due_triggers(model, registry, datetime(2026, 11, 22, 12, tzinfo=UTC)) == []  # Sunday
    (due,) = due_triggers(model, registry, datetime(2026, 11, 23, 7, tzinfo=UTC))  # Monday 07:00
    assert due.id == "schedule:2026-11-23T06:00Z" and not due.stored
    assert due_triggers(_model(None), registry, datetime(2030, 1, 1, tzinfo=UTC)) == []


def test_identity_with_and_after_a_trigger() -> None:
    inputs, data = {"a": 1}, {"d": "sha256:1"}
    v1 = ModelVersion(version=1, identity="plain", status="passed", training=inputs, data=data)
    registry = ModelRegistry(versions=[v1], stages={"staging": 1, "production": 1})
    assert candidate_identity("plain", inputs, data, registry, []) == "plain"
    due = [Due("drift:x", "drift", "drift in f", True)]
    salted = candidate_identity("plain", inputs, data, registry, due)
    assert salted not in (None, "plain")
    # once v2 was trained for the trigger, the same spec and data mean v2
    v2 = ModelVersion(version=2, identity=salted, status="passed", training=inputs, data=data)
    registry.versions.append(v2)
    registry.triggers.append(RetrainTrigger(id="drift:x", kind="drift", reason="r", trained_version=2))
    assert candidate_identity("plain", inputs, data, registry, []) == salted
    assert trigger_status(registry.triggers[0], registry) == "trained"
    registry.stages["production"] = 2
    assert trigger_status(registry.triggers[0], registry) == "cleared"
    assert [t.id for t in sweep_cleared(registry)] == ["drift:x"] and registry.triggers[0].cleared_at
    # other data: the ordinary identity again
    assert candidate_identity("other", inputs, {"d": "sha256:2"}, registry, []) == "other"
    assert candidate_identity(None, inputs, data, registry, due) is None


def test_monitor_command_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from mlctl.cli.main import main\n"
        "try:\n    main(['monitor', 'run', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "--detailed-exitcode" in out.stdout


def test_monitor_schedule_due() -> None:
    from mlctl.monitor.evaluation import is_due as _due
    from mlctl.state.document import MonitorRecord

    ran = MonitorRecord(last_run_at="2026-11-23T02:30:00Z")
    assert _due(None, ran, datetime(2026, 11, 23, 3, tzinfo=UTC))
    assert _due("0 2 * * *", None, datetime(2026, 11, 23, 3, tzinfo=UTC))
    assert not _due("0 2 * * *", ran, datetime(2026, 11, 23, 23, tzinfo=UTC))  # ran after today's 02:00
    assert _due("0 2 * * *", ran, datetime(2026, 11, 24, 2, 1, tzinfo=UTC))
