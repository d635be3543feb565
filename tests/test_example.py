"""The example repository: synthetic data generator, template, ``init_repo`` and project copy."""

from __future__ import annotations

import datetime
import io
import json
import socket
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlctl.errors import MlctlError
from mlctl.example import generator
from mlctl.example.generator import FEATURES, FLOAT_FEATURES, generate
from mlctl.example.init import DATA_FILES, ensure_example_data, init_repo, template_files
from mlctl.spec.models import Environment, ProviderFile

REPO = Path(__file__).resolve().parents[1]
ENVS = ("dev", "prod")
ACTIVITY_COLUMNS = ["customer_id", "event_timestamp", *FEATURES]
AS_OF = "2026-03-15"  # a fixed as-of day: the data's timeline ends at its midnight (UTC)
ANCHOR = pd.Timestamp(AS_OF, tz="UTC")
LABEL_COLUMNS = ["customer_id", "event_timestamp", "churned"]


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default-size data set, generated once."""
    paths = generate(tmp_path_factory.mktemp("full"), as_of=AS_OF)
    frames = {name: pd.read_csv(path) for name, path in paths.items()}
    for frame in frames.values():
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return {"paths": paths, "frames": frames}


def _join(labels: pd.DataFrame, activity: pd.DataFrame, ttl_days: int = 90) -> pd.DataFrame:
    """Point-in-time join: the latest snapshot at or before each label, within the ttl."""
    return pd.merge_asof(
        labels.sort_values("event_timestamp"),
        activity.sort_values("event_timestamp"),
        on="event_timestamp",
        by="customer_id",
        direction="backward",
        tolerance=pd.Timedelta(days=ttl_days),
    )


# --- generator ---------------------------------------------------------------------------


def test_generate_is_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", customers=1500, seed=11, as_of=AS_OF)
    second = generate(tmp_path / "b", customers=1500, seed=11, as_of=AS_OF)
    other = generate(tmp_path / "c", customers=1500, seed=12, as_of=AS_OF)
    assert set(first) == {"customer_activity", "churn_labels", "churn_outcomes"}
    assert sorted(p.name for p in first.values()) == sorted(DATA_FILES)
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    assert first["customer_activity"].read_bytes() != other["customer_activity"].read_bytes()


def test_another_day_moves_the_timeline_only(tmp_path: Path) -> None:
    """The as-of day shifts every timestamp by the same amount and changes nothing else."""
    base = generate(tmp_path / "a", customers=800, as_of="2026-03-15")
    later = generate(tmp_path / "b", customers=800, as_of=datetime.date(2026, 4, 14))
    for name in base:
        before, after = pd.read_csv(base[name]), pd.read_csv(later[name])
        shift = pd.to_datetime(after["event_timestamp"]) - pd.to_datetime(before["event_timestamp"])
        assert (shift == pd.Timedelta(days=30)).all(), name
        pd.testing.assert_frame_equal(
            before.drop(columns="event_timestamp"), after.drop(columns="event_timestamp")
        )


def test_default_as_of_is_today(tmp_path: Path) -> None:
    today = datetime.datetime.now(datetime.UTC).date()
    default = generate(tmp_path / "a", customers=300)
    explicit = generate(tmp_path / "b", customers=300, as_of=today.isoformat())
    if datetime.datetime.now(datetime.UTC).date() == today:  # not across midnight
        assert default["churn_labels"].read_bytes() == explicit["churn_labels"].read_bytes()


def test_a_bad_as_of_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(MlctlError, match="not a date"):
        generate(tmp_path, customers=10, as_of="15/03/2026")
    with pytest.raises(MlctlError, match="not a date"):
        init_repo(tmp_path / "repo", as_of="yesterday")
    assert not (tmp_path / "repo" / "environments").exists()


def test_generate_rejects_no_customers(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, customers=0)


def test_columns_and_types(tmp_path: Path) -> None:
    paths = generate(tmp_path, customers=3000, as_of=AS_OF)
    activity = pd.read_csv(paths["customer_activity"])
    labels = pd.read_csv(paths["churn_labels"])
    outcomes = pd.read_csv(paths["churn_outcomes"])
    assert list(activity.columns) == ACTIVITY_COLUMNS
    assert list(labels.columns) == LABEL_COLUMNS
    assert list(outcomes.columns) == LABEL_COLUMNS
    for column in ("total_orders_30d", "days_since_last_order", "support_tickets_90d"):
        assert pd.api.types.is_integer_dtype(activity[column]), column
        assert activity[column].min() >= 0
    # the guide's request model declares these floats (its example sends login_frequency_7d 2.5)
    assert FLOAT_FEATURES == ("avg_order_value", "login_frequency_7d")
    for column in FLOAT_FEATURES:
        assert pd.api.types.is_float_dtype(activity[column]), column
        assert activity[column].min() >= 0
    logins = activity["login_frequency_7d"].dropna()
    assert (logins != logins.round()).mean() > 0.5  # logins per day: fractions, not counts
    assert activity["customer_id"].str.fullmatch(r"C\d{6}").all()
    for frame in (activity, labels, outcomes):
        stamps = frame["event_timestamp"].astype(str)
        assert stamps.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
        assert pd.to_datetime(frame["event_timestamp"], utc=True).notna().all()
    for frame in (labels, outcomes):
        assert set(frame["churned"]) == {"Yes", "No"}
    # integers are written without a decimal point, blanks as empty fields
    header, first_row = paths["customer_activity"].read_text().splitlines()[:2]
    assert header == ",".join(ACTIVITY_COLUMNS)
    assert ".0," not in first_row


def test_full_size_data(full: dict[str, Any]) -> None:
    frames = full["frames"]
    activity, labels, outcomes = (
        frames["customer_activity"],
        frames["churn_labels"],
        frames["churn_outcomes"],
    )
    assert activity["customer_id"].nunique() >= 20000
    assert labels["customer_id"].is_unique and len(labels) == activity["customer_id"].nunique()
    per_customer = activity.groupby("customer_id").size()
    assert per_customer.between(3, 6).all()
    span = activity.groupby("customer_id")["event_timestamp"].agg(lambda t: t.max() - t.min())
    assert pd.Timedelta(days=150) <= span.max() <= pd.Timedelta(days=180)
    assert len(activity) >= 10000  # the data checks' min_rows
    nulls = activity.isna().mean()
    assert 0.003 < nulls["avg_order_value"] < 0.03
    assert 0.003 < nulls["login_frequency_7d"] < 0.03
    assert nulls.drop(["avg_order_value", "login_frequency_7d"]).eq(0).all()
    assert 0.15 <= (labels["churned"] == "Yes").mean() <= 0.4
    assert 0.15 <= (outcomes["churned"] == "Yes").mean() <= 0.4
    assert len(outcomes) >= 1000
    # small enough to generate on the fly and keep in a demo
    assert full["paths"]["customer_activity"].stat().st_size < 6_000_000


def test_labels_follow_snapshots(full: dict[str, Any]) -> None:
    activity, labels = full["frames"]["customer_activity"], full["frames"]["churn_labels"]
    first_seen = activity.groupby("customer_id")["event_timestamp"].min()
    after_first = labels["event_timestamp"].to_numpy() >= first_seen.loc[labels["customer_id"]]
    assert after_first.mean() >= 0.9
    joined = _join(labels, activity)
    missing = joined["total_orders_30d"].isna().mean()
    assert 0.005 <= missing <= 0.05  # a few labels find no feature row: imputation is exercised


def test_timeline_ends_at_the_as_of_day(full: dict[str, Any]) -> None:
    """Nothing happens after the as-of day, and nearly every customer's latest snapshot is at
    most 30 days old: its online values stay live (ttl 90 days) for two months."""
    frames = full["frames"]
    for name, frame in frames.items():
        assert frame["event_timestamp"].max() <= ANCHOR, name
    latest = frames["customer_activity"].groupby("customer_id")["event_timestamp"].max()
    age = ANCHOR - latest
    assert age.min() >= pd.Timedelta(days=1)
    recent = age <= pd.Timedelta(days=30)
    assert recent.mean() > 0.98
    ttl = pd.Timedelta(days=generator._TTL_DAYS)
    assert (age[~recent] > ttl).all()  # the rest went quiet long ago: expired online values


def test_outcomes_come_later(full: dict[str, Any]) -> None:
    labels = full["frames"]["churn_labels"].set_index("customer_id")["event_timestamp"]
    outcomes = full["frames"]["churn_outcomes"]
    assert outcomes["customer_id"].is_unique
    later = outcomes["event_timestamp"].to_numpy() > labels.loc[outcomes["customer_id"]]
    assert later.all()
    joined = _join(outcomes, full["frames"]["customer_activity"])
    assert joined["total_orders_30d"].notna().all()


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVS)
def test_configured_model_passes_its_gates(full: dict[str, Any], env: str) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    model = _environment(REPO / "environments" / env).models["churn-predictor"]
    frames = full["frames"]
    joined = _join(frames["churn_labels"], frames["customer_activity"])
    x = joined[list(FEATURES)].astype(float)
    y = (joined["churned"] == "Yes").astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=model.training.test_size, random_state=model.training.random_state
    )
    estimator = RandomForestClassifier(**model.training.params, n_jobs=-1)
    pipeline = make_pipeline(SimpleImputer(strategy="median"), estimator).fit(x_train, y_train)
    auc = roc_auc_score(y_test, pipeline.predict_proba(x_test)[:, 1])
    accuracy = accuracy_score(y_test, pipeline.predict(x_test))
    assert model.gates.min_auc is not None and model.gates.min_accuracy is not None
    assert model.gates.min_auc + 0.02 <= auc <= 0.93  # clears the gate with a margin, not 1.0
    assert model.gates.min_accuracy + 0.02 <= accuracy


# --- template and the project's own copy ---------------------------------------------------


def test_template_contents() -> None:
    paths = {rel for rel, _ in template_files()}
    expected = {f"environments/{env}/{name}.yaml" for env in ENVS for name in _ENV_FILES}
    expected |= {"providers/local.yaml", "state/.gitkeep", "data/.gitkeep", ".gitignore"}
    expected |= {f".github/workflows/{name}.yml" for name in WORKFLOWS}
    expected |= {f"policies/{name}.rego" for name in POLICIES}
    assert paths == expected
    ignored = dict(template_files())[".gitignore"].decode().split()
    for pattern in ("data/*.csv", "data/*.parquet", "state/*.json", "state/*.lock", ".mlctl/"):
        assert pattern in ignored


_ENV_FILES = ("environment", "data", "features", "models", "deployments", "monitors")
WORKFLOWS = ("plan", "apply", "monitor", "rollback")
POLICIES = ("production_gates", "protect_production", "team_labels")  # tests/test_policies.py


def test_project_copy_matches_template() -> None:
    template = {
        rel: content
        for rel, content in template_files()
        if rel.startswith(("environments/", "providers/", "state/", ".github/", "policies/"))
    }
    project = {
        path.relative_to(REPO).as_posix(): path.read_bytes()
        for folder in ("environments", "providers", ".github", "policies")
        for path in (REPO / folder).rglob("*")
        if path.is_file()
    }
    shipped = {f".github/workflows/{name}.yml" for name in WORKFLOWS}
    project = {rel: v for rel, v in project.items() if not rel.startswith(".github/") or rel in shipped}
    project["state/.gitkeep"] = (REPO / "state" / ".gitkeep").read_bytes()
    assert sorted(project) == sorted(template)
    for rel, content in template.items():
        assert project[rel] == content, f"{rel} differs from src/mlctl/example/files/{rel}"


def _environment(folder: Path) -> Environment:
    """Merge every YAML file of an environment (a simple stand-in for the real loader)."""
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        assert isinstance(document, dict), path
        for key, value in document.items():
            if isinstance(value, dict) and key not in ("backend", "providers"):
                section = merged.setdefault(key, {})
                duplicates = set(section) & set(value)
                assert not duplicates, f"{path}: {duplicates} defined twice"
                section.update(value)
            else:
                assert key not in merged, f"{path}: {key} defined twice"
                merged[key] = value
    return Environment.model_validate(merged)


@pytest.mark.parametrize("env", ENVS)
def test_template_environment_validates(tmp_path: Path, env: str) -> None:
    init_repo(tmp_path, generate_data=False)
    spec = _environment(tmp_path / "environments" / env)
    assert spec.backend.type == "local" and spec.backend.path == f"state/{env}.json"
    assert set(spec.datasets) == {"customer_activity", "churn_labels", "churn_outcomes"}
    assert spec.datasets["churn_labels"].checks.columns["churned"].allowed == ["Yes", "No"]
    activity = spec.datasets["customer_activity"]
    assert list(activity.schema_) == ACTIVITY_COLUMNS
    view = spec.feature_views["customer_features"]
    assert view.source == "customer_activity" and view.entities == ["customer"]
    assert list(view.features) == list(FEATURES)
    assert view.ttl_seconds == generator._TTL_DAYS * 86400
    model = spec.models["churn-predictor"]
    assert model.training.features == [f"customer_features:{f}" for f in FEATURES]
    assert model.training.task == "classification"
    assert model.stages.staging == "latest" and model.stages.production == "staging"
    assert spec.endpoints["churn-api"].model == "churn-predictor"
    assert {m.kind for m in spec.monitors.values()} == {"drift", "serving", "performance"}
    for monitor in spec.monitors.values():
        assert monitor.model in spec.models
        if monitor.kind == "performance":
            assert monitor.labels in spec.datasets
    for name in spec.providers.model_dump().values():
        if name is None:  # an optional role the example does not use (e.g. tracking)
            continue
        provider = yaml.safe_load((tmp_path / "providers" / f"{name}.yaml").read_text())
        ProviderFile.model_validate({"provider": provider})


def test_prod_is_stricter_than_dev(tmp_path: Path) -> None:
    init_repo(tmp_path, generate_data=False)
    dev, prod = (_environment(tmp_path / "environments" / env) for env in ENVS)
    dev_gates = dev.models["churn-predictor"].gates
    prod_gates = prod.models["churn-predictor"].gates
    assert prod_gates.min_auc and dev_gates.min_auc and prod_gates.min_auc >= dev_gates.min_auc
    assert prod.endpoints["churn-api"].replicas > dev.endpoints["churn-api"].replicas


@pytest.mark.parametrize("env", ENVS)
def test_rollback_write_back_changes_one_line(env: str) -> None:
    """A ruamel round trip that pins production rewrites that line only, comments and all.

    ``preserve_quotes`` matters: the ``"on"`` key must stay quoted, or YAML 1.1 readers
    (PyYAML) take it for ``true``.
    """
    from ruamel.yaml import YAML

    path = REPO / "environments" / env / "models.yaml"
    source = path.read_text()
    rt = YAML()
    rt.preserve_quotes = True
    document = rt.load(source)
    document["models"]["churn-predictor"]["stages"]["production"] = 3
    out = io.StringIO()
    rt.dump(document, out)
    before, after = source.splitlines(), out.getvalue().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1].strip().startswith("production: 3 ")
    assert "#" in changed[0][1]
    merged = yaml.safe_load(out.getvalue())
    assert merged["models"]["churn-predictor"]["stages"]["production"] == 3
    Environment.model_validate(merged)


# --- init_repo and ensure_example_data ------------------------------------------------------


def test_init_repo_writes_the_tree(tmp_path: Path) -> None:
    written = init_repo(tmp_path / "repo", customers=500, as_of=AS_OF)
    rels = {p.relative_to(tmp_path / "repo").as_posix() for p in written}
    assert {rel for rel, _ in template_files()} <= rels
    assert {f"data/{name}" for name in DATA_FILES} <= rels
    assert all(p.is_file() for p in written)
    assert (tmp_path / "repo" / "environments" / "dev" / "models.yaml").read_bytes() == (
        REPO / "environments" / "dev" / "models.yaml"
    ).read_bytes()


def test_init_repo_refuses_an_existing_repository(tmp_path: Path) -> None:
    init_repo(tmp_path, generate_data=False)
    before = (tmp_path / "environments" / "dev" / "models.yaml").read_text()
    with pytest.raises(MlctlError, match="not empty"):
        init_repo(tmp_path, generate_data=False)
    assert (tmp_path / "environments" / "dev" / "models.yaml").read_text() == before


def test_init_repo_accepts_an_empty_environments_dir(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "README.md").write_text("mine\n")
    written = init_repo(tmp_path, generate_data=False)
    assert tmp_path / "environments" / "prod" / "monitors.yaml" in written
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert not (tmp_path / "data" / DATA_FILES[0]).exists()


def test_init_never_overwrites_existing_files(tmp_path: Path) -> None:
    """Workflows, .gitignore or anything else of the template that exists is kept byte for
    byte; init says which (issue 11)."""
    from conftest import invoke

    mine = {
        ".gitignore": b"my-ignores\n",
        ".github/workflows/apply.yml": b"name: my apply\n",
        ".github/workflows/monitor.yml": b"name: my monitor\n",
        "providers/local.yaml": b"type: local\nroot: elsewhere\n",
    }
    for rel, content in mine.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)
    result = invoke(tmp_path, "init", str(tmp_path), "--no-data")
    assert result.exit_code == 0, result.output
    for rel, content in mine.items():
        assert (tmp_path / rel).read_bytes() == content, rel
    lines = result.stdout.splitlines()
    kept = lines[lines.index("Kept 4 existing file(s) as they were (not overwritten):") + 1 :][:4]
    assert sorted(line.strip() for line in kept) == sorted(mine)
    assert (tmp_path / ".github" / "workflows" / "plan.yml").is_file()  # the missing ones are written
    assert (tmp_path / "environments" / "prod" / "models.yaml").is_file()


def test_init_backend_s3_keeps_prod_in_the_bucket(tmp_path: Path) -> None:
    """`mlctl init --backend s3://BUCKET/PREFIX --endpoint-url URL`: prod's state, artifacts
    (and with them runs, candidates and the prediction log) in that bucket; dev stays local."""
    from conftest import invoke
    from mlctl.spec.loader import load_environment

    result = invoke(
        tmp_path,
        "init",
        str(tmp_path / "repo"),
        "--no-data",
        "--backend",
        "s3://ml-team/churn/",
        "--endpoint-url",
        "http://127.0.0.1:9000",
    )
    assert result.exit_code == 0, result.output
    assert "s3://ml-team/churn" in result.stdout and "dev stays local" in result.stdout
    repo = tmp_path / "repo"
    prod = load_environment(repo, "prod")
    backend = prod.config.backend
    assert (backend.type, backend.bucket, backend.key) == ("s3", "ml-team", "churn/state/prod.json")
    assert backend.endpoint_url == "http://127.0.0.1:9000"
    assert prod.config.providers.artifacts == "s3"
    provider = prod.providers["s3"]
    assert (provider.type, provider.bucket, provider.prefix) == ("s3", "ml-team", "churn/artifacts")
    assert getattr(provider, "endpoint_url", None) == "http://127.0.0.1:9000"
    dev = load_environment(repo, "dev")
    assert dev.config.backend.type == "local" and dev.config.providers.artifacts == "local"
    template = dict(template_files())
    assert (repo / "environments" / "prod" / "models.yaml").read_bytes() == template[
        "environments/prod/models.yaml"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--backend", "/tmp/state"],
        ["--backend", "s3://Bad_Bucket/x"],
        ["--backend", "s3://ok-bucket/a/../b"],
        ["--backend", "s3://ok-bucket/x: y"],
        ["--backend", "s3://ok-bucket/x", "--endpoint-url", "${EVIL_ENDPOINT}"],
        ["--backend", "s3://ok-bucket/x", "--endpoint-url", "ftp://host"],
        ["--endpoint-url", "http://127.0.0.1:9000"],
    ],
)
def test_init_backend_refuses_bad_locations(tmp_path: Path, args: list[str]) -> None:
    from conftest import invoke

    result = invoke(tmp_path, "init", str(tmp_path / "repo"), "--no-data", *args)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("customers", ["0", "-5"])
def test_init_without_customers_is_one_clear_error(tmp_path: Path, customers: str) -> None:
    """Refused before anything is written: no environments/ left behind, no crash."""
    from conftest import invoke

    result = invoke(tmp_path, "init", str(tmp_path / "repo"), "--customers", customers)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: --customers {customers}: the example needs at least 1 customer\n"
    assert not (tmp_path / "repo").exists()


def test_ensure_example_data(tmp_path: Path) -> None:
    assert ensure_example_data(tmp_path, customers=300) is True
    activity = tmp_path / "data" / "customer_activity.csv"
    stamp = activity.stat().st_mtime_ns
    assert ensure_example_data(tmp_path, customers=300) is False
    assert activity.stat().st_mtime_ns == stamp
    (tmp_path / "data" / "churn_outcomes.csv").unlink()
    assert ensure_example_data(tmp_path, customers=300) is True
    assert all((tmp_path / "data" / name).is_file() for name in DATA_FILES)


# --- mlctl demo traffic ---------------------------------------------------------------------


def test_shifted_population_drifts_and_breaks_the_old_lesson() -> None:
    """The changed world: more, cheaper orders and more logins (feature drift), and most of
    these engaged-looking customers churn (concept drift)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, churned = generator.shifted_population(rng, 5000)
    reference = pd.read_csv(
        generate(Path(tempfile.mkdtemp()), customers=2000, as_of=AS_OF)["customer_activity"]
    )
    assert x.shape == (5000, len(FEATURES)) and not np.isnan(x).any()
    column = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert np.median(column["avg_order_value"]) < reference["avg_order_value"].median() - 15
    assert np.median(column["total_orders_30d"]) > reference["total_orders_30d"].median() + 2
    assert np.median(column["login_frequency_7d"]) > reference["login_frequency_7d"].median()
    assert churned.mean() > 0.55
    # under the old rule these customers would mostly stay
    assert generator.churn_outcome(rng, x).mean() < 0.2


def test_traffic_draws_fresh_customers_and_a_shifted_share(tmp_path: Path) -> None:
    from mlctl.example import traffic

    source = generate(tmp_path, customers=2000)["customer_activity"]  # ends today: values are fresh
    plan = traffic._draw(source, "customer_id", 90 * 86400, 500, 0.4, seed=3)
    again = traffic._draw(source, "customer_id", 90 * 86400, 500, 0.4, seed=3)
    assert plan == again
    assert len(plan.bodies) == 500 and sum(plan.shifted) == 200
    activity = pd.read_csv(source)
    known = set(activity["customer_id"])
    for body, shifted in zip(plan.bodies, plan.shifted, strict=True):
        if shifted:
            assert body["customer_id"] not in known and body["customer_id"] > "C002000"
            assert set(body) == {"customer_id", *FEATURES}
            for name in FEATURES:
                assert isinstance(body[name], float if name in FLOAT_FEATURES else int), name
        else:
            assert set(body) == {"customer_id"} and body["customer_id"] in known
    # only customers whose online row is complete and fresh are asked for by key
    incomplete = set(
        activity.sort_values("event_timestamp")
        .groupby("customer_id")
        .tail(1)
        .pipe(lambda f: f[f[list(FEATURES)].isna().any(axis=1)]["customer_id"])
    )
    assert not incomplete & {b["customer_id"] for b in plan.bodies}
    old = generate(tmp_path / "old", customers=300, as_of="2020-01-01")["customer_activity"]
    with pytest.raises(MlctlError, match="younger than the feature view's ttl"):
        traffic._draw(old, "customer_id", 90 * 86400, 10, 0.0, seed=0)


class _StubServer:
    """A model server stand-in: /ready, and /predict answering version 7."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"ready": True})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                received.append(body)
                self._send(200, {**body, "prediction": "No", "probability": 0.2, "version": 7})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_demo_traffic_sends_requests_and_appends_labels(repo: Path) -> None:
    from conftest import invoke

    outcomes = repo / "data" / "churn_outcomes.csv"
    before = pd.read_csv(outcomes)
    started = pd.Timestamp.now(tz="UTC").floor("s")
    stub = _StubServer()
    try:
        result = invoke(repo, "demo", "traffic", "-e", "dev", "--url", stub.url, "--requests", "200")
    finally:
        stub.close()
    assert result.exit_code == 0, result.output
    assert "Sent 200 requests" in result.output and "120 by customer id" in result.output
    assert "80 from a shifted population" in result.output
    assert "Answered 200 (v7: 200); no errors." in result.output
    assert "Wrote 200 delayed labels" in result.output and "read by monitor churn-quality" in result.output
    assert len(stub.received) == 200
    after = pd.read_csv(outcomes)
    assert list(after.columns) == list(before.columns)
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)
    new = after.iloc[len(before) :]
    assert len(new) == 200 and set(new["churned"]) == {"Yes", "No"}
    assert sorted(new["customer_id"]) == sorted(b["customer_id"] for b in stub.received)
    assert (pd.to_datetime(new["event_timestamp"], utc=True) >= started).all()
    # the labels file still passes its dataset's checks
    plan = invoke(repo, "plan", "-e", "dev", "--target", "dataset.churn_outcomes")
    assert plan.exit_code == 0, plan.output


def test_demo_traffic_adds_the_shifted_customers_to_the_training_data(repo: Path, tmp_path: Path) -> None:
    """The retrain a drift triggers learns the new population: each answered shifted
    customer's snapshot (the features it was sent with) joins the feature source, its outcome
    the training labels, dated so the point-in-time join pairs them; the same seed and data
    append the same bytes."""
    import shutil

    from conftest import invoke

    twin = tmp_path / "twin"
    shutil.copytree(repo, twin)
    activity, labels = Path("data/customer_activity.csv"), Path("data/churn_labels.csv")
    before = {name: (repo / name).read_bytes() for name in (activity, labels)}
    stub = _StubServer()
    try:
        outputs = [
            invoke(
                where, "demo", "traffic", "-e", "dev", "--url", stub.url, "--requests", "200", "--seed", "5"
            )
            for where in (repo, twin)
        ]
    finally:
        stub.close()
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert (
            "Added 80 shifted customers to the training data of churn-predictor: "
            "snapshots to data/customer_activity.csv, outcomes to data/churn_labels.csv." in result.output
        )
    for name in (activity, labels):
        assert (repo / name).read_bytes() == (twin / name).read_bytes(), name
        assert (repo / name).read_bytes().startswith(before[name]), "rows are appended, never rewritten"
    sent = {b["customer_id"]: b for b in stub.received[:200] if len(b) > 1}
    assert len(sent) == 80
    old = pd.read_csv(io.BytesIO(before[activity]))
    new_activity = pd.read_csv(repo / activity).iloc[len(old) :]
    new_labels = pd.read_csv(repo / labels).iloc[len(pd.read_csv(io.BytesIO(before[labels]))) :]
    assert sorted(new_activity["customer_id"]) == sorted(sent) == sorted(new_labels["customer_id"])
    for frame in (old, new_activity, new_labels):
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    assert (new_activity["event_timestamp"] == old["event_timestamp"].max() + pd.Timedelta(hours=1)).all()
    delay = (
        new_labels.set_index("customer_id")["event_timestamp"]
        - new_activity.set_index("customer_id")["event_timestamp"]
    )
    assert delay.between(pd.Timedelta(hours=1), pd.Timedelta(hours=12)).all()
    joined = _join(new_labels, pd.concat([old, new_activity])).set_index("customer_id")
    for customer, body in sent.items():
        for name in FEATURES:
            assert joined.loc[customer, name] == pytest.approx(body[name]), (customer, name)
    assert set(new_labels["churned"]) == {"Yes", "No"}
    # both files still pass their datasets' checks
    plan = invoke(
        repo, "plan", "-e", "dev", "--target", "dataset.customer_activity", "--target", "dataset.churn_labels"
    )
    assert plan.exit_code == 0, plan.output


def test_demo_traffic_checks_every_file_before_writing_any(repo: Path) -> None:
    """Training labels without the target column: one clear error, and no file appended to
    (the delayed labels are not written half-way either)."""
    from conftest import invoke

    labels = repo / "data" / "churn_labels.csv"
    labels.write_text(labels.read_text().replace("churned", "outcome", 1))
    files = {name: (repo / "data" / name).read_bytes() for name in DATA_FILES}
    stub = _StubServer()
    try:
        result = invoke(repo, "demo", "traffic", "-e", "dev", "--url", stub.url, "--requests", "50")
    finally:
        stub.close()
    assert result.exit_code == 1
    assert result.stderr == f"Error: {labels} has no column churned\n"
    assert {name: (repo / "data" / name).read_bytes() for name in DATA_FILES} == files


def test_demo_traffic_without_a_server_is_one_clear_error(repo: Path) -> None:
    from conftest import invoke

    outcomes = repo / "data" / "churn_outcomes.csv"
    before = outcomes.read_bytes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke(repo, "demo", "traffic", "-e", "dev", "--url", f"localhost:{port}", "--wait", "0.5")
    assert result.exit_code == 1
    assert f"no model server ready at http://localhost:{port}" in result.output
    assert "Traceback" not in result.output
    assert outcomes.read_bytes() == before


@pytest.mark.parametrize("link", [".github/workflows", ".github", "data", "."])
def test_init_refuses_a_symlinked_directory(tmp_path: Path, link: str) -> None:
    """`DIR/.github/workflows` as a dangling link crashed init (FileExistsError, exit 3)."""
    from conftest import invoke

    target = tmp_path / "repo"
    if link == ".":
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    else:
        (target / link).parent.mkdir(parents=True, exist_ok=True)
        (target / link).symlink_to(tmp_path / "nowhere")  # dangling
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    result = invoke(tmp_path, "init", str(target), "--no-data")
    assert result.exit_code == 1, result.output
    shown = target if link == "." else target / link
    line = f"Error: {shown} is a symbolic link; mlctl init writes only into real directories\n"
    assert result.stderr == line
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before
