"""Read-only commands: models, runs, state, schema, init, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from conftest import MLCTL, edit, invoke, state_of


def test_models_list_json_shape(applied: Path) -> None:
    result = invoke(applied, "models", "list", "-e", "dev", "--json")
    assert result.exit_code == 0
    models = json.loads(result.stdout)
    assert [m["name"] for m in models] == ["churn-predictor"]
    model = models[0]
    assert model["stages"] == {"staging": 1, "production": 1}
    version = model["versions"][0]
    assert {"version", "status", "metrics", "artifact"} <= set(version)
    assert set(version["artifact"]) == {"uri", "sha256"}
    text = invoke(applied, "models", "list", "-e", "dev").stdout
    assert "churn-predictor" in text and "v1" in text


def test_models_versions(applied: Path) -> None:
    data = json.loads(invoke(applied, "models", "versions", "churn-predictor", "-e", "dev", "--json").stdout)
    assert data[0]["version"] == 1 and data[0]["stage"] == "production"
    result = invoke(applied, "models", "versions", "nope", "-e", "dev")
    assert result.exit_code == 1 and "not found" in result.stderr


def test_runs_record_everything_a_reviewer_needs(applied: Path) -> None:
    runs = json.loads(invoke(applied, "runs", "list", "-e", "dev", "--json").stdout)
    assert len(runs) == 1
    run = json.loads(invoke(applied, "runs", "show", "-e", "dev", runs[0]["run_id"][:12], "--json").stdout)
    assert run["params"]["max_depth"] == 8 and run["params"]["estimator"].endswith("RandomForestClassifier")
    assert run["metrics"]["auc"] > 0.8
    assert set(run["data"]) == {"churn_labels", "customer_activity"}
    assert run["environment"] == "dev"
    env = json.dumps(run)
    assert "scikit-learn" in env or "sklearn" in env
    names = {Path(a).name if isinstance(a, str) else a.get("name") for a in run["artifacts"]}
    assert {
        "signature.json",
        "feature_importance.png",
        "confusion_matrix.png",
        "reference_profile.json",
        "reference_sample.parquet",
    } <= names
    version = state_of(applied)["models"]["churn-predictor"]["versions"][0]
    assert version["run_id"] == run["run_id"]


def test_runs_compare(applied: Path) -> None:
    edit(applied / "environments/dev/models.yaml", "max_depth: 8", "max_depth: 7")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    runs = json.loads(invoke(applied, "runs", "list", "-e", "dev", "--json").stdout)
    result = invoke(applied, "runs", "compare", "-e", "dev", runs[0]["run_id"], runs[1]["run_id"], "--json")
    assert result.exit_code == 0
    assert "max_depth" in result.stdout
    assert invoke(applied, "runs", "show", "-e", "dev", "zzz").exit_code == 1


def test_state_list_show_pull(applied: Path) -> None:
    listed = invoke(applied, "state", "list", "-e", "dev").stdout.split()
    assert listed[0].startswith("dataset.") and "model_version.churn-predictor" in listed
    shown = json.loads(invoke(applied, "state", "show", "-e", "dev", "endpoint.churn-api").stdout)
    assert shown["status"]["version"] == 1
    pulled = json.loads(invoke(applied, "state", "pull", "-e", "dev").stdout)
    assert pulled["format_version"] == 1 and pulled["lineage"] and pulled["serial"] > 0
    assert pulled["git"] is not None
    missing = invoke(applied, "state", "show", "-e", "dev", "endpoint.churn-ap")
    assert missing.exit_code == 1 and "did you mean endpoint.churn-api" in missing.stderr


def test_schema_validates_the_example(applied: Path) -> None:
    schema = json.loads(invoke(applied, "schema").stdout)
    for env in ("dev", "prod"):
        merged: dict = {}
        for file in sorted((applied / "environments" / env).glob("*.yaml")):
            merged.update(yaml.safe_load(file.read_text()) or {})
        jsonschema.validate(merged, schema)
    bad = {
        "models": {
            "m": {
                "training": {
                    "labels": "x",
                    "target": "y",
                    "features": ["a:b"],
                    "estimator": "e",
                    "test_size": 2,
                }
            }
        }
    }
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("schema accepted test_size 2")


def test_init_writes_a_working_repository(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = invoke(tmp_path, "init", str(target), "--customers", "20000")
    assert result.exit_code == 0, result.output
    for rel in (
        "environments/dev/models.yaml",
        "environments/prod/models.yaml",
        "providers/local.yaml",
        ".gitignore",
        "data/churn_labels.csv",
        "state",
    ):
        assert (target / rel).exists(), rel
    assert invoke(target, "validate").exit_code == 0
    plan = invoke(target, "plan", "-e", "dev", "--detailed-exitcode")
    assert plan.exit_code == 2 and "train model_version.churn-predictor" in plan.stdout
    again = invoke(tmp_path, "init", str(target))
    assert again.exit_code == 1 and "not empty" in again.stderr


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "HEAVY = ('pandas', 'sklearn', 'fastapi', 'boto3', 'numpy', 'matplotlib')\n"
        "from mlctl.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in HEAVY if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out


def test_plan_imports_nothing_heavy(applied: Path) -> None:
    edit(applied / "environments/dev/models.yaml", "max_depth: 8", "max_depth: 7")
    code = (
        "import sys\n"
        "HEAVY = ('pandas', 'sklearn', 'fastapi', 'boto3', 'numpy', 'matplotlib')\n"
        "from mlctl.cli.main import main\n"
        f"try:\n    main(['-C', {str(applied)!r}, 'plan', '-e', 'dev'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in HEAVY if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "train model_version.churn-predictor" in out
    assert "HEAVY []" in out


def test_version_and_python_m(applied: Path) -> None:
    proc = subprocess.run([*MLCTL, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "mlctl" in proc.stdout
