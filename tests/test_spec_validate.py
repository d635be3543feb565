"""Bad configurations: each one raises ConfigError naming the file:line, key path and a hint."""

from __future__ import annotations

import builtins
import importlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlctl.errors import ConfigError, Diagnostic
from mlctl.spec import load_environment
from mlctl.spec.validate import is_valid_cron

VALID = Path(__file__).parent / "spec_cases" / "valid"
ENV = "environments/dev"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(VALID, target)
    return target


def edit(repo: Path, name: str, old: str, new: str) -> None:
    """Replace the first ``old`` in ``environments/dev/<name>`` (or a repo path) by ``new``."""
    path = repo / name if "/" in name else repo / ENV / name
    text = path.read_text() if path.exists() else ""
    if old:
        assert old in text, f"{old!r} not in {name}"
        text = text.replace(old, new, 1)
    else:
        text = new
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def find(error: ConfigError, path: str) -> Diagnostic:
    for diagnostic in error.diagnostics:
        if diagnostic.path == path:
            return diagnostic
    raise AssertionError(f"no diagnostic for {path}: {error}")


# (id, file, old, new, "file:line", dotted path, summary fragment, hint fragment or None)
CASES = [
    (
        "unknown-key-hint",
        "models.yaml",
        "      test_size: 0.2",
        "      test_sise: 0.2",
        "models.yaml:10",
        "models.churn-predictor.training.test_sise",
        "unknown key 'test_sise'",
        "did you mean 'test_size'?",
    ),
    (
        "unknown-key-no-match",
        "models.yaml",
        "    tags: {team: growth}",
        "    colour: blue",
        "models.yaml:15",
        "models.churn-predictor.colour",
        "unknown key 'colour'",
        "allowed keys: description, gates",
    ),
    (
        "unknown-top-level",
        "extra.yaml",
        "",
        "model: {}\n",
        "extra.yaml:1",
        "model",
        "unknown key 'model'",
        "did you mean 'models'?",
    ),
    (
        "wrong-type",
        "deployments.yaml",
        "replicas: 1",
        "replicas: many",
        "deployments.yaml:2",
        "endpoints.churn-api.replicas",
        "valid integer",
        None,
    ),
    (
        "test-size-zero",
        "models.yaml",
        "test_size: 0.2",
        "test_size: 0",
        "models.yaml:10",
        "models.churn-predictor.training.test_size",
        "greater than 0",
        None,
    ),
    (
        "test-size-1.5",
        "models.yaml",
        "test_size: 0.2",
        "test_size: 1.5",
        "models.yaml:10",
        "models.churn-predictor.training.test_size",
        "less than 1",
        None,
    ),
    (
        "error-rate-above-1",
        "monitors.yaml",
        "max_error_rate: 0.01",
        "max_error_rate: 1.5",
        "monitors.yaml:3",
        "monitors.churn-serving.max_error_rate",
        "less than or equal to 1",
        None,
    ),
    (
        "bad-cron-retrain",
        "models.yaml",
        '"0 6 * * 1"',
        '"0 25 * * 1"',
        "models.yaml:13",
        "models.churn-predictor.retrain.schedule",
        "invalid cron expression '0 25 * * 1'",
        "five fields",
    ),
    (
        "bad-cron-monitor",
        "monitors.yaml",
        "test: ks,",
        "test: ks, schedule: every day,",
        "monitors.yaml:2",
        "monitors.churn-drift.schedule",
        "invalid cron expression 'every day'",
        None,
    ),
    (
        "bad-ttl",
        "features.yaml",
        "ttl: 1d",
        "ttl: 1 day",
        "features.yaml:7",
        "feature_views.customer_features.ttl",
        "'1 day' is not a duration",
        None,
    ),
    (
        "estimator-typo",
        "models.yaml",
        "RandomForestClassifier",
        "RandomForestClassifer",
        "models.yaml:8",
        "models.churn-predictor.training.estimator",
        "estimator 'sklearn.ensemble.RandomForestClassifer' is not allowed",
        "did you mean 'sklearn.ensemble.RandomForestClassifier'?",
    ),
    (
        "estimator-os-system",
        "models.yaml",
        "sklearn.ensemble.RandomForestClassifier",
        "os.system",
        "models.yaml:8",
        "models.churn-predictor.training.estimator",
        "estimator 'os.system' is not allowed",
        "allowed: sklearn.",
    ),
    (
        "path-escape",
        "data.yaml",
        "data/customer_activity.csv",
        "../x.csv",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "'../x.csv' escapes the repository",
        None,
    ),
    (
        "path-escape-nested",
        "data.yaml",
        "data/customer_activity.csv",
        "data/../../x.csv",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "escapes the repository",
        None,
    ),
    (
        "absolute-path",
        "data.yaml",
        "data/customer_activity.csv",
        "/etc/passwd",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "absolute path '/etc/passwd'",
        None,
    ),
    (
        "s3-without-key",
        "data.yaml",
        "data/customer_activity.csv",
        "s3://bucket",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "needs a bucket and a key",
        None,
    ),
    (
        "unsupported-url",
        "data.yaml",
        "data/customer_activity.csv",
        "http://x/y.csv",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "unsupported location",
        "s3://",
    ),
    (
        "missing-dataset-ref",
        "models.yaml",
        "labels: churn_labels",
        "labels: churn_label",
        "models.yaml:5",
        "models.churn-predictor.training.labels",
        "unknown dataset 'churn_label'",
        "did you mean 'churn_labels'?",
    ),
    (
        "unknown-view",
        "models.yaml",
        "[customer_features:total",
        "[customer_featurs:total",
        "models.yaml:7",
        "models.churn-predictor.training.features.0",
        "unknown feature view 'customer_featurs'",
        "did you mean 'customer_features'?",
    ),
    (
        "unknown-feature",
        "models.yaml",
        "customer_features:total_orders_30d,",
        "customer_features:total_orders,",
        "models.yaml:7",
        "models.churn-predictor.training.features.0",
        "feature view 'customer_features' has no feature 'total_orders'",
        "did you mean 'total_orders_30d'?",
    ),
    (
        "monitor-unknown-model",
        "monitors.yaml",
        "churn-quality: {model: churn-predictor",
        "churn-quality: {model: churn-predicter",
        "monitors.yaml:4",
        "monitors.churn-quality.model",
        "unknown model 'churn-predicter'",
        "did you mean 'churn-predictor'?",
    ),
    (
        "endpoint-unknown-model",
        "deployments.yaml",
        "model: churn-predictor",
        "model: churn",
        "deployments.yaml:2",
        "endpoints.churn-api.model",
        "unknown model 'churn'",
        None,
    ),
    (
        "duplicate-name-two-files",
        "more-models.yaml",
        "",
        "# a copy\nmodels:\n  churn-predictor:\n    training: {labels: churn_labels}\n",
        "more-models.yaml:3",
        "models.churn-predictor",
        "model 'churn-predictor' is defined twice: in environments/dev/models.yaml:3 and "
        "environments/dev/more-models.yaml:3",
        None,
    ),
    (
        "duplicate-key",
        "models.yaml",
        "      test_size: 0.2",
        "      test_size: 0.2\n      target: x",
        "models.yaml:11",
        "models.churn-predictor.training.target",
        "duplicate key 'target' (first defined at environments/dev/models.yaml:6)",
        None,
    ),
    (
        "yaml-syntax",
        "features.yaml",
        "    online: true",
        "    online: [true",
        "features.yaml:9",
        "",
        "invalid YAML",
        None,
    ),
    (
        "yaml-bad-indent",
        "models.yaml",
        "      target: churned",
        "     target: churned",
        "models.yaml:6",
        "",
        "invalid YAML",
        None,
    ),
    (
        "unset-var",
        "data.yaml",
        "data/customer_activity.csv",
        "${DATA_ROOT}/activity.csv",
        "data.yaml:3",
        "datasets.customer_activity.path",
        "environment variable DATA_ROOT is not set",
        None,
    ),
    (
        "gate-regression-on-classifier",
        "models.yaml",
        "max_regression: 0.01}",
        "max_regression: 0.01, max_rmse: 3}",
        "models.yaml:11",
        "models.churn-predictor.gates.max_rmse",
        "gate max_rmse does not apply to a classification model",
        "min_auc",
    ),
    (
        "gate-classifier-on-regressor",
        "models.yaml",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "models.yaml:11",
        "models.churn-predictor.gates.min_auc",
        "gate min_auc does not apply to a regression model",
        "max_rmse",
    ),
    (
        "endpoint-unknown-provider",
        "deployments.yaml",
        "provider: local",
        "provider: k8s",
        "deployments.yaml:2",
        "endpoints.churn-api.provider",
        "unknown provider 'k8s'",
        None,
    ),
    (
        "env-unknown-provider",
        "environment.yaml",
        "artifacts: local",
        "artifacts: locl",
        "environment.yaml:2",
        "providers.artifacts",
        "unknown provider 'locl'",
        "did you mean 'local'?",
    ),
    (
        "source-without-timestamp",
        "data.yaml",
        "    timestamp: event_timestamp\n",
        "",
        "features.yaml:6",
        "feature_views.customer_features.source",
        "source dataset 'customer_activity' has no timestamp column",
        "set datasets.customer_activity.timestamp",
    ),
    (
        "labels-schema-missing-target",
        "data.yaml",
        "datetime, churned: int}",
        "datetime}",
        "models.yaml:6",
        "models.churn-predictor.training.target",
        "target 'churned' is not in the schema of labels dataset 'churn_labels'",
        None,
    ),
    (
        "join-key-not-in-source",
        "features.yaml",
        "join_key: customer_id",
        "join_key: cust_id",
        "features.yaml:5",
        "feature_views.customer_features.entities.0",
        "join key 'cust_id' of entity 'customer' is not in the schema",
        None,
    ),
    (
        "non-string-key",
        "models.yaml",
        "tags: {team: growth}",
        "tags: {1: growth}",
        "models.yaml:15",
        "models.churn-predictor.tags",
        "key 1 is not a string",
        "quote it",
    ),
    (
        "staging-none-production-staging",
        "models.yaml",
        "staging: latest",
        "staging: none",
        "models.yaml:12",
        "models.churn-predictor.stages.production",
        "production follows staging, but staging is 'none'",
        None,
    ),
    (
        "stage-pin-typo",
        "models.yaml",
        "staging: latest",
        "staging: latst",
        "models.yaml:12",
        "models.churn-predictor.stages.staging",
        "must be a valid integer or 'latest' or 'none' (got 'latst')",
        "did you mean 'latest'?",
    ),
    (
        "drift-unknown-current",
        "monitors.yaml",
        "current: scoring_log",
        "current: scoring_logs",
        "monitors.yaml:2",
        "monitors.churn-drift.current",
        "unknown dataset 'scoring_logs'",
        "did you mean 'scoring_log'?",
    ),
    (
        "drift-unknown-feature",
        "monitors.yaml",
        "test: ks,",
        "test: ks, features: [avg_value],",
        "monitors.yaml:2",
        "monitors.churn-drift.features.0",
        "model 'churn-predictor' has no feature 'avg_value'",
        None,
    ),
    (
        "monitor-kind-typo",
        "monitors.yaml",
        "kind: drift",
        "kind: drfit",
        "monitors.yaml:2",
        "monitors.churn-drift.kind",
        "unknown kind 'drfit'",
        "did you mean 'drift'?",
    ),
    (
        "invalid-name",
        "models.yaml",
        "  churn-predictor:",
        "  churn predictor:",
        "models.yaml:3",
        "models.churn predictor",
        "invalid name 'churn predictor'",
        None,
    ),
    (
        "provider-file-unknown-key",
        "providers/s3.yaml",
        "",
        "type: s3\nbucket: b\nendpoint_ur: http://minio:9000\n",
        "providers/s3.yaml:3",
        "provider:s3.endpoint_ur",
        "unknown key 'endpoint_ur'",
        "did you mean 'endpoint_url'?",
    ),
    (
        "provider-wrong-role",
        "providers/store.yaml",
        "",
        "type: s3\nbucket: b\n",
        "environment.yaml:2",
        "providers.serving",
        "provider 'store' is of type s3",
        None,
    ),
    (
        "backend-path-escape",
        "environment.yaml",
        "backend: {type: local}",
        "backend: {type: local, path: ../state.json}",
        "environment.yaml:1",
        "backend.path",
        "escapes the repository",
        None,
    ),
    (
        "check-column-not-in-schema",
        "data.yaml",
        "columns: {avg_order_value:",
        "columns: {avg_order_valu:",
        "data.yaml:6",
        "datasets.customer_activity.checks.columns.avg_order_valu",
        "column 'avg_order_valu' is not in the dataset's schema",
        "avg_order_value",
    ),
    (
        "param-of-the-wrong-type",
        "models.yaml",
        "max_depth: 5",
        "max_depth: abc",
        "models.yaml:9",
        "models.churn-predictor.training.params.max_depth",
        "'abc' is not accepted by RandomForestClassifier (an int >= 1, or null)",
        None,
    ),
    (
        "param-out-of-its-interval",
        "models.yaml",
        "n_estimators: 20",
        "n_estimators: 0",
        "models.yaml:9",
        "models.churn-predictor.training.params.n_estimators",
        "0 is not accepted by RandomForestClassifier (an int >= 1)",
        None,
    ),
    (
        "param-a-float-where-an-int",
        "models.yaml",
        "max_depth: 5",
        "max_depth: 5.5",
        "models.yaml:9",
        "models.churn-predictor.training.params.max_depth",
        "5.5 is not accepted by RandomForestClassifier (an int >= 1, or null)",
        None,
    ),
    (
        "param-an-unknown-option",
        "models.yaml",
        "max_depth: 5",
        "criterion: ginny",
        "models.yaml:9",
        "models.churn-predictor.training.params.criterion",
        "'ginny' is not accepted by RandomForestClassifier (one of 'entropy', 'gini', 'log_loss')",
        None,
    ),
    (
        "param-random-state-negative",
        "models.yaml",
        "random_state: 42}",
        "random_state: -1}",
        "models.yaml:9",
        "models.churn-predictor.training.params.random_state",
        "-1 is not accepted by RandomForestClassifier (an int in [0, 4294967295], or null)",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "where", "path", "summary", "hint"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_configuration(
    repo: Path,
    name: str,
    old: str,
    new: str,
    where: str,
    path: str,
    summary: str,
    hint: str | None,
) -> None:
    if name == "providers/store.yaml":
        edit(repo, "environment.yaml", "serving: local", "serving: store")
    edit(repo, name, old, new)
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={})
    message = str(caught.value)
    diagnostic = find(caught.value, path) if path else caught.value.diagnostics[0]
    line = str(diagnostic)
    assert where in line, message
    assert line.startswith(f"{ENV}/" if not where.startswith("providers/") else "providers/")
    assert summary in line, message
    if hint is not None:
        assert diagnostic.hint is not None and hint in diagnostic.hint, message
    assert line in message


def test_estimator_is_never_imported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"import attempted: {args}")

    def guarded(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("os", "sklearn", "subprocess"):
            raise AssertionError(f"import of {name} attempted")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", forbidden)
    monkeypatch.setattr(builtins, "__import__", guarded)
    edit(repo, "models.yaml", "sklearn.ensemble.RandomForestClassifier", "os.system")
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={})
    assert "estimator 'os.system' is not allowed" in str(caught.value)


def test_symlink_escape(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "data").mkdir(exist_ok=True)
    (repo / "data" / "link").symlink_to(outside)
    edit(repo, "data.yaml", "data/customer_activity.csv", "data/link/x.csv")
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={})
    assert "data.yaml:3" in str(find(caught.value, "datasets.customer_activity.path"))
    (repo / "data" / "file.csv").symlink_to(outside / "x.csv")
    edit(repo, "data.yaml", "data/link/x.csv", "data/file.csv")
    with pytest.raises(ConfigError, match="escapes the repository"):
        load_environment(repo, "dev", environ={})


def test_every_problem_is_reported_sorted(repo: Path) -> None:
    edit(repo, "models.yaml", "test_size: 0.2", "test_size: 2")
    edit(repo, "deployments.yaml", "replicas: 1", "replicas: 0")
    edit(repo, "data.yaml", "timestamp: event_timestamp", "timestamp: [event_timestamp]")
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={})
    files = [d.file or "" for d in caught.value.diagnostics]
    assert files == sorted(files)
    assert {d.path for d in caught.value.diagnostics} >= {
        "models.churn-predictor.training.test_size",
        "endpoints.churn-api.replicas",
        "datasets.customer_activity.timestamp",
    }


@pytest.mark.parametrize(
    ("name", "old", "new", "path", "shown"),
    [
        ("models.yaml", "target: churned", 'target: "chu\\nrned"', "training.target", "'chu\\nrned'"),
        ("models.yaml", "max_depth: 5", 'max_depth: "a\\rb"', "training.params.max_depth", "'a\\rb'"),
        ("models.yaml", "test_size: 0.2", 'test_size: "x\\n"', "training.test_size", "'x\\n'"),
        ("models.yaml", "test_size: 0.2", '"test\\nsize": 0.2', "training.test\\nsize", "'test\\nsize'"),
        (
            "deployments.yaml",
            "stage: production",
            'stage: "prod\\tuction\\u2028x"',
            "stage",
            "tuction\\u2028x",
        ),
        ("models.yaml", '"0 6 * * 1"', '"0 6 * * x\\ny"', "retrain.schedule", "'0 6 * * x\\ny'"),
    ],
)
def test_every_diagnostic_is_one_line(
    repo: Path, name: str, old: str, new: str, path: str, shown: str
) -> None:
    """A value with a newline (or another control character) is shown repr-style, escaped."""
    edit(repo, name, old, new)
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={})
    lines = [str(d) for d in caught.value.diagnostics]
    assert len(lines) == 1, lines
    [line] = lines
    assert len(line.splitlines()) == 1 and line.isprintable(), line
    assert path in line and shown in line, line


def test_secret_is_not_echoed_in_errors(repo: Path) -> None:
    edit(repo, "deployments.yaml", "replicas: 1", "replicas: '${REPLICAS}'")
    with pytest.raises(ConfigError) as caught:
        load_environment(repo, "dev", environ={"REPLICAS": "hunter2"})
    assert "hunter2" not in str(caught.value)
    assert "${REPLICAS}" in str(caught.value)


CRON_SAMPLES = [
    "0 6 * * 1",
    "*/15 * * * *",
    "0 0 1 jan *",
    "0 0 * * mon-fri",
    "5 4 * * sun",
    "0 22-23 * * 0,6",
    "0 0 1-31/2 * *",
    "@daily",
    "@hourly",
    "0 0 * * 7",
    "59 23 31 12 *",
    "60 * * * *",
    "* 24 * * *",
    "0 0 0 * *",
    "0 0 * 13 *",
    "0 0 * * 8",
    "*/0 * * * *",
    "* * * *",
    "",
    "every day",
    "0 0 L * *",
    "5/10 * * * *",
    "0 22-2 * * *",
    "* * * * * *",
    "@reboot",
    "0 6 * * 1 extra junk",
]


@pytest.mark.parametrize("expression", CRON_SAMPLES)
def test_cron_agrees_with_croniter(expression: str) -> None:
    from croniter import croniter

    assert is_valid_cron(expression) == bool(croniter.is_valid(expression))
