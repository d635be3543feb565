"""Every configuration error a user can make: exit 1, file:line, one message, no traceback,
state untouched. Each case edits one file of an applied example repository."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from conftest import invoke

D = "environments/dev/"

# (file, old text, new text, expected file:line prefix regex, words the message must contain)
CASES = [
    (
        "models.yaml",
        "n_estimators: 25",
        "n_estimator: 25",
        r"models\.yaml:\d+",
        ["n_estimator", "did you mean 'n_estimators'"],
    ),
    (
        "models.yaml",
        "      target: churned",
        "      target: churned\n      tagret: x",
        r"models\.yaml:\d+",
        ["tagret", "did you mean 'target'"],
    ),
    ("models.yaml", "test_size: 0.2 ", "test_size: 1.5 ", r"models\.yaml:\d+", ["test_size"]),
    ("models.yaml", "test_size: 0.2 ", "test_size: 0   ", r"models\.yaml:\d+", ["test_size"]),
    (
        "models.yaml",
        "sklearn.ensemble.RandomForestClassifier",
        "os.system",
        r"models\.yaml:\d+",
        ["os.system", "estimator"],
    ),
    (
        "models.yaml",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.RandomForestClasifier",
        r"models\.yaml:\d+",
        ["did you mean"],
    ),
    (
        "models.yaml",
        "labels: churn_labels",
        "labels: churn_lables",
        r"models\.yaml:\d+",
        ["churn_lables", "did you mean 'churn_labels'"],
    ),
    (
        "models.yaml",
        "- customer_features:avg_order_value",
        "- customer_feature:avg_order_value",
        r"models\.yaml:\d+",
        ["customer_feature"],
    ),
    (
        "models.yaml",
        "- customer_features:avg_order_value",
        "- customer_features:avg_order_valu",
        r"models\.yaml:\d+",
        ["avg_order_valu"],
    ),
    (
        "models.yaml",
        'schedule: "0 6 * * 1"',
        'schedule: "0 25 * * 1"',
        r"models\.yaml:\d+",
        ["0 25 * * 1"],
    ),
    ("models.yaml", "min_auc: 0.80", "min_auc: 1.5", r"models\.yaml:\d+", ["min_auc"]),
    ("models.yaml", "min_auc: 0.80", "max_rmse: 0.80", r"models\.yaml:\d+", ["max_rmse"]),
    ("models.yaml", "max_depth: 8", "max_depth: [8", r"models\.yaml:\d+", []),
    (
        "models.yaml",
        "      production: staging",
        "      production: prod",
        r"models\.yaml:\d+",
        ["production"],
    ),
    (
        "models.yaml",
        "    training:",
        "    training:\n      target: again",
        r"models\.yaml:\d+",
        ["target"],
    ),
    (
        "data.yaml",
        "path: data/churn_labels.csv",
        "path: ../../etc/passwd",
        r"data\.yaml:\d+",
        ["escapes the repository"],
    ),
    ("data.yaml", "path: data/churn_labels.csv", "path: /etc/passwd", r"data\.yaml:\d+", []),
    (
        "data.yaml",
        "max_null_ratio: 0.05",
        "max_null_ratio: 5",
        r"data\.yaml:\d+",
        ["max_null_ratio"],
    ),
    (
        "data.yaml",
        "min_rows: 10000\n      max",
        "min_rows: -3\n      max",
        r"data\.yaml:\d+",
        ["min_rows"],
    ),
    ("features.yaml", "ttl: 90d", "ttl: ninety days", r"features\.yaml:\d+", ["ttl"]),
    (
        "features.yaml",
        "source: customer_activity",
        "source: customer_activty",
        r"features\.yaml:\d+",
        ["did you mean 'customer_activity'"],
    ),
    (
        "features.yaml",
        "entities: [customer]",
        "entities: [custmer]",
        r"features\.yaml:\d+",
        ["custmer"],
    ),
    ("monitors.yaml", "kind: drift", "kind: drfit", r"monitors\.yaml:\d+", ["kind"]),
    (
        "monitors.yaml",
        "max_error_rate: 0.01",
        "max_error_rate: 2",
        r"monitors\.yaml:\d+",
        ["max_error_rate"],
    ),
    (
        "monitors.yaml",
        "  churn-quality:\n    model: churn-predictor",
        "  churn-quality:\n    model: churn-predicter",
        r"monitors\.yaml:\d+",
        ["churn-predicter"],
    ),
    ("deployments.yaml", "provider: local ", "provider: gke   ", r"deployments\.yaml:\d+", ["gke"]),
    ("deployments.yaml", "replicas: 1", "replicas: zero", r"deployments\.yaml:\d+", ["replicas"]),
    (
        "environment.yaml",
        "artifacts: local",
        "artifacts: s3bucket",
        r"environment\.yaml:\d+",
        ["s3bucket"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[2][:30]}" for c in CASES])
def test_bad_configuration(applied: Path, case: tuple[str, str, str, str, list[str]]) -> None:
    name, old, new, where, words = case
    path = applied / D / name
    text = path.read_text()
    assert old in text, f"fixture drifted: {old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))
    state = (applied / "state" / "dev.json").read_bytes()
    for command in (
        ["validate", "-e", "dev"],
        ["plan", "-e", "dev"],
        ["apply", "-e", "dev", "--auto-approve"],
    ):
        result = invoke(applied, *command)
        assert result.exit_code == 1, (command, result.output)
        assert "Traceback" not in result.output
        assert re.search(where, result.stderr), result.stderr
        for word in words:
            assert word in result.stderr, result.stderr
    assert (applied / "state" / "dev.json").read_bytes() == state


def test_duplicate_name_across_files_names_both(applied: Path) -> None:
    extra = applied / D / "more.yaml"
    extra.write_text("entities:\n  customer:\n    join_key: customer_id\n")
    result = invoke(applied, "validate", "-e", "dev")
    assert result.exit_code == 1
    assert "features.yaml" in result.stderr and "more.yaml" in result.stderr


def test_unknown_environment(applied: Path) -> None:
    result = invoke(applied, "plan", "-e", "dve")
    assert result.exit_code == 1 and "dev" in result.stderr and "Traceback" not in result.output


def test_unset_secret_variable(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLCTL_TEST_BUCKET", raising=False)
    path = applied / D / "models.yaml"
    path.write_text(path.read_text().replace("team: growth", "team: ${MLCTL_TEST_BUCKET}"))
    result = invoke(applied, "plan", "-e", "dev")
    assert result.exit_code == 1 and "MLCTL_TEST_BUCKET" in result.stderr


def test_unsafe_estimator_is_never_imported(applied: Path, tmp_path: Path) -> None:
    """An estimator path naming a module with an import side effect is refused, not imported."""
    evil = tmp_path / "evilmod.py"
    marker = tmp_path / "imported"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\nclass Boom: pass\n")
    path = applied / D / "models.yaml"
    path.write_text(path.read_text().replace("sklearn.ensemble.RandomForestClassifier", "evilmod.Boom"))
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        for command in (
            ["validate", "-e", "dev"],
            ["plan", "-e", "dev"],
            ["apply", "-e", "dev", "--auto-approve"],
        ):
            result = invoke(applied, *command)
            assert result.exit_code == 1 and "evilmod.Boom" in result.stderr
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert "evilmod" not in sys.modules


def test_bad_usage_exits_1_with_one_line(applied: Path) -> None:
    result = invoke(applied, "plan")
    assert result.exit_code == 1 and "Missing option" in result.stderr
    result = invoke(applied, "apply", "-e", "dev", str(applied / "nope.plan"))
    assert result.exit_code == 1 and "not found" in result.stderr
    (applied / "garbage.plan").write_text("{not json")
    result = invoke(applied, "apply", "-e", "dev", str(applied / "garbage.plan"))
    assert result.exit_code == 1 and "not an mlctl plan file" in result.stderr


def test_corrupt_state_is_a_clear_error(applied: Path) -> None:
    (applied / "state" / "dev.json").write_text("{broken")
    result = invoke(applied, "plan", "-e", "dev")
    assert result.exit_code == 1 and "corrupt" in result.stderr and "Traceback" not in result.output


def test_missing_data_file(applied: Path) -> None:
    (applied / "data" / "churn_outcomes.csv").unlink()
    result = invoke(applied, "plan", "-e", "dev")
    assert result.exit_code == 1
    assert re.search(
        r"data\.yaml:\d+: dataset\.churn_outcomes: data/churn_outcomes\.csv not found",
        result.stderr,
    )


def test_unwritable_plan_out_is_a_user_error(applied: Path) -> None:
    for out in (applied / "state", Path("/proc/no/such/place.plan")):
        result = invoke(applied, "plan", "-e", "dev", "--out", str(out))
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"Error: cannot write the plan to {out}"), result.stderr


def test_a_secret_in_a_path_is_not_printed(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_TEST_FILE", "s3cr3t-name")
    path = applied / D / "data.yaml"
    path.write_text(
        path.read_text().replace("path: data/churn_outcomes.csv", "path: data/${MLCTL_TEST_FILE}.csv")
    )
    for command in (["plan", "-e", "dev"], ["apply", "-e", "dev", "--auto-approve"]):
        result = invoke(applied, *command)
        assert result.exit_code == 1
        assert "${MLCTL_TEST_FILE}" in result.stderr and "s3cr3t" not in result.output


# -- the same diagnostics as JSON (plan --format json, validate --format json) -------------


def json_failure(repo: Path, *args: str) -> dict[str, Any]:
    """Run a command that must fail: exit 1, the diagnostics document on stdout, and on stderr
    the text view's lines, one per diagnostic, each the ``message`` of one JSON diagnostic."""
    result = invoke(repo, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    document = json.loads(result.stdout)
    assert document["valid"] is False and document["errored"] is True
    assert document["error_count"] == len(document["diagnostics"]) and document["warning_count"] == 0
    assert result.stderr.splitlines() == [f"Error: {d['message']}" for d in document["diagnostics"]]
    return cast(dict[str, Any], document)


def test_plan_json_of_a_bad_config_is_a_diagnostics_document(applied: Path) -> None:
    path = applied / D / "models.yaml"
    path.write_text(path.read_text().replace("test_size: 0.2 ", "test_size: 2   ", 1))
    state = (applied / "state" / "dev.json").read_bytes()

    document = json_failure(applied, "plan", "-e", "dev", "--format", "json")

    [diagnostic] = document["diagnostics"]
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "test_size: 2" in text)
    assert diagnostic["severity"] == "error"
    assert diagnostic["path"] == "models.churn-predictor.training.test_size"
    assert diagnostic["range"] == {"filename": f"{D}models.yaml", "start": {"line": line}}
    assert "test_size" in diagnostic["message"] and diagnostic["summary"] in diagnostic["message"]
    assert (applied / "state" / "dev.json").read_bytes() == state
    # validate prints the same document for the same problem
    assert json_failure(applied, "validate", "-e", "dev", "--format", "json") == document


def test_plan_json_of_any_user_error_parses(applied: Path) -> None:
    """Not only configuration: whatever stops the plan, stdout is the diagnostics document."""
    (applied / "data" / "churn_outcomes.csv").unlink()
    [missing] = json_failure(applied, "plan", "-e", "dev", "--format", "json")["diagnostics"]
    assert missing["address"] == "dataset.churn_outcomes"
    assert missing["range"]["filename"] == f"{D}data.yaml"
    [unknown] = json_failure(applied, "plan", "-e", "dve", "--format", "json")["diagnostics"]
    assert "dev" in unknown["summary"] and unknown["range"] is None


def test_plan_json_diagnostics_never_show_a_secret(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_TEST_FILE", "s3cr3t-name")
    path = applied / D / "data.yaml"
    path.write_text(
        path.read_text().replace("path: data/churn_outcomes.csv", "path: data/${MLCTL_TEST_FILE}.csv")
    )
    result = invoke(applied, "plan", "-e", "dev", "--format", "json")
    assert result.exit_code == 1 and "s3cr3t" not in result.output
    [diagnostic] = json.loads(result.stdout)["diagnostics"]
    assert "${MLCTL_TEST_FILE}" in diagnostic["message"]


def test_validate_json_of_valid_environments(applied: Path) -> None:
    result = invoke(applied, "validate", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "format_version": "1.0",
        "valid": True,
        "errored": False,
        "error_count": 0,
        "warning_count": 0,
        "diagnostics": [],
    }
    assert result.stderr == ""


def test_validate_json_collects_every_environment(applied: Path) -> None:
    for env in ("dev", "prod"):
        path = applied / "environments" / env / "models.yaml"
        path.write_text(path.read_text().replace("test_size: 0.2 ", "test_size: 2   ", 1))
    document = json_failure(applied, "validate", "--format", "json")
    assert sorted(d["range"]["filename"] for d in document["diagnostics"]) == [
        "environments/dev/models.yaml",
        "environments/prod/models.yaml",
    ]
