"""The loader: merging files, interpolation, source locations, digest, environments."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mlctl.errors import ConfigError, NotFoundError
from mlctl.spec import EnvSpec, list_environments, load_environment
from mlctl.spec.models import DriftMonitor, LocalProvider, S3Provider

VALID = Path(__file__).parent / "spec_cases" / "valid"
ENV = "environments/dev"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(VALID, target)
    return target


def load(repo: Path, environ: dict[str, str] | None = None) -> EnvSpec:
    return load_environment(repo, "dev", environ=environ or {})


def test_valid_example_loads(repo: Path) -> None:
    spec = load(repo)
    assert spec.name == "dev"
    assert spec.repo == repo
    assert set(spec.config.models) == {"churn-predictor"}
    model = spec.config.models["churn-predictor"]
    assert model.retrain is not None and model.retrain.on == ["drift", "new_data"]  # `on:` key
    assert model.stages.production == "staging"
    assert isinstance(spec.config.monitors["churn-drift"], DriftMonitor)
    assert spec.config.datasets["churn_labels"].schema_["churned"] == "int"
    assert spec.providers == {"local": LocalProvider(type="local", root=".mlctl")}
    assert spec.config.backend.path == "state/dev.json"
    assert list(spec.files) == sorted(spec.files)
    assert len(spec.files) == 7
    assert spec.files[-1] == repo / "providers" / "local.yaml"
    assert spec.secret_paths == frozenset()


def test_import_is_light() -> None:
    import subprocess

    code = (
        "import sys, mlctl.spec; "
        "bad = [m for m in ('pandas', 'sklearn', 'croniter', 'boto3', 'fastapi') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_merge_across_files(repo: Path) -> None:
    (repo / ENV / "more-models.yaml").write_text(
        "models:\n"
        "  churn-small:\n"
        "    training:\n"
        "      labels: churn_labels\n"
        "      target: churned\n"
        "      features: [customer_features:avg_order_value]\n"
        "      estimator: sklearn.linear_model.LogisticRegression\n"
    )
    (repo / ENV / "zz-backend.yml").write_text("backend:\n  path: state/other.json\n")
    spec = load(repo)
    assert set(spec.config.models) == {"churn-predictor", "churn-small"}
    assert spec.config.backend.path == "state/other.json"
    assert spec.file_of("models", "churn-small") == repo / ENV / "more-models.yaml"
    assert spec.file_of("model", "churn-predictor") == repo / ENV / "models.yaml"
    assert spec.locate("models.churn-small.training.estimator") == (f"{ENV}/more-models.yaml", 7)


def test_same_backend_key_in_two_files_is_an_error(repo: Path) -> None:
    (repo / ENV / "zz.yaml").write_text("# x\nbackend: {type: local}\n")
    with pytest.raises(ConfigError) as caught:
        load(repo)
    message = str(caught.value)
    assert f"{ENV}/zz.yaml:2: backend.type:" in message
    assert f"{ENV}/environment.yaml:1" in message


def test_locate_and_file_of(repo: Path) -> None:
    spec = load(repo)
    assert spec.locate("models.churn-predictor.stages.production") == (f"{ENV}/models.yaml", 12)
    assert spec.locate("models.churn-predictor.training.features.1") == (f"{ENV}/models.yaml", 7)
    assert spec.locate("feature_views.customer_features.ttl") == (f"{ENV}/features.yaml", 7)
    # nearest defined ancestor for keys that are defaults
    assert spec.locate("models.churn-predictor.training.random_state") == (
        f"{ENV}/models.yaml",
        4,
    )
    assert spec.locate("nothing.here") == (None, None)
    assert spec.locate("provider:local.root") == ("providers/local.yaml", 2)
    assert spec.file_of("feature_view", "customer_features") == repo / ENV / "features.yaml"
    with pytest.raises(NotFoundError, match="did you mean 'churn-predictor'"):
        spec.file_of("models", "churn-predicter")


def test_interpolation_secrets_and_digest(repo: Path) -> None:
    # ${VAR} where it neither aims a request nor enters a version identity: a model's tags, the
    # path and description of a dataset no model trains on; `$${` escapes a literal
    (repo / "providers" / "s3.yaml").write_text(
        "type: s3\nbucket: models\nregion: eu-west-1\nprefix: $${literal}\n"
    )
    environment = repo / ENV / "environment.yaml"
    environment.write_text(environment.read_text().replace("artifacts: local", "artifacts: s3"))
    data = repo / ENV / "data.yaml"
    data.write_text(data.read_text().replace("data/scoring_log.csv", "data/${LOG_FILE}"))
    models = repo / ENV / "models.yaml"
    models.write_text(models.read_text().replace("team: growth", "team: 'ml-${TEAM}', region: '${REGION}'"))
    spec = load(repo, {"REGION": "eu-secret-1", "TEAM": "topsecret-team", "LOG_FILE": "scoring_log.csv"})
    provider = spec.providers["s3"]
    assert isinstance(provider, S3Provider)
    assert provider.prefix == "${literal}"
    tags = spec.config.models["churn-predictor"].tags
    assert tags == {"team": "ml-topsecret-team", "region": "eu-secret-1"}
    assert spec.config.datasets["scoring_log"].path == "data/scoring_log.csv"
    assert spec.secret_paths == {
        "datasets.scoring_log.path",
        "models.churn-predictor.tags.team",
        "models.churn-predictor.tags.region",
    }
    assert spec.placeholders["datasets.scoring_log.path"] == "data/${LOG_FILE}"
    assert spec.display("models.churn-predictor.tags.region", tags["region"]) == "${REGION}"
    # every resolved value, whole or a variable inside one, is redacted from any text
    assert spec.redact("team ml-topsecret-team in eu-secret-1") == "team ml-${TEAM} in ${REGION}"
    assert spec.redact("topsecret-team") == "${TEAM}"
    # the digest hashes the placeholder, so it does not move with the secret's value
    other = load(repo, {"REGION": "eu-other-2", "TEAM": "another-team-xyz", "LOG_FILE": "scoring_log.csv"})
    assert other.digest == spec.digest
    assert "topsecret" not in spec.digest


def test_digest_tracks_changes_not_layout(repo: Path) -> None:
    before = load(repo).digest
    models = repo / ENV / "models.yaml"
    text = models.read_text()
    reordered = text.replace(
        "{n_estimators: 20, max_depth: 5, random_state: 42}",
        "{random_state: 42, max_depth: 5, n_estimators: 20}",
    )
    models.write_text("# a new comment\n" + reordered)
    assert load(repo).digest == before
    models.write_text(text.replace("max_depth: 5", "max_depth: 6"))
    assert load(repo).digest != before


def test_anchors_aliases_and_merge_keys(repo: Path) -> None:
    (repo / ENV / "models.yaml").write_text(
        "defaults: &training\n"
        "  labels: churn_labels\n"
        "  target: churned\n"
        "  estimator: sklearn.ensemble.RandomForestClassifier\n"
        "models:\n"
        "  churn-predictor:\n"
        "    training:\n"
        "      <<: *training\n"
        "      features: &feats [customer_features:total_orders_30d]\n"
        "    stages: {staging: latest, production: staging}\n"
    )
    with pytest.raises(ConfigError, match="unknown key 'defaults'"):
        load(repo)
    text = (repo / ENV / "models.yaml").read_text().replace("defaults:", "x-defaults:")
    (repo / ENV / "models.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unknown key 'x-defaults'"):
        load(repo)  # unknown keys stay errors; anchors belong inside known sections
    (repo / ENV / "models.yaml").write_text(
        "models:\n"
        "  churn-predictor:\n"
        "    training: &training\n"
        "      labels: churn_labels\n"
        "      target: churned\n"
        "      features: [customer_features:total_orders_30d]\n"
        "      estimator: sklearn.ensemble.RandomForestClassifier\n"
        "    stages: {staging: latest, production: staging}\n"
        "  churn-b:\n"
        "    training:\n"
        "      <<: *training\n"
        "      estimator: sklearn.ensemble.ExtraTreesClassifier\n"
        "  churn-c:\n"
        "    training: *training\n"
    )
    spec = load(repo)
    assert spec.config.models["churn-b"].training.target == "churned"
    assert spec.config.models["churn-b"].training.estimator.endswith("ExtraTreesClassifier")
    assert spec.config.models["churn-c"].training.labels == "churn_labels"
    assert spec.locate("models.churn-c.training.target") == (f"{ENV}/models.yaml", 5)
    assert spec.locate("models.churn-b.training.estimator") == (f"{ENV}/models.yaml", 12)


def test_alias_bomb_is_refused(repo: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    (repo / ENV / "bomb.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="alias"):
        load(repo)


def test_empty_file_is_fine(repo: Path) -> None:
    (repo / ENV / "empty.yaml").write_text("# nothing yet\n")
    assert "churn-predictor" in load(repo).config.models


def test_unknown_environment(repo: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        load_environment(repo, "prd")
    message = str(caught.value)
    assert "environment 'prd' not found (known: dev, prod)" in message
    assert "did you mean 'prod'?" in message


def test_empty_environment_dir(repo: Path) -> None:
    (repo / "environments" / "staging").mkdir()
    with pytest.raises(ConfigError, match=r"environments/staging: no \*\.yaml files"):
        load_environment(repo, "staging")


def test_list_environments(repo: Path, tmp_path: Path) -> None:
    assert list_environments(repo) == ["dev", "prod"]
    assert list_environments(tmp_path / "nowhere") == []


def test_multiple_documents_and_tags_are_errors(repo: Path) -> None:
    (repo / ENV / "x.yaml").write_text("models: {}\n---\nmodels: {}\n")
    (repo / ENV / "y.yaml").write_text("endpoints: !!python/object:os.system {}\n")
    with pytest.raises(ConfigError) as caught:
        load(repo)
    message = str(caught.value)
    assert f"{ENV}/x.yaml:2: a file may hold only one YAML document" in message
    assert f"{ENV}/y.yaml:1: endpoints: unsupported YAML tag" in message


def test_empty_provider_file_and_missing_local_default(repo: Path) -> None:
    (repo / "providers" / "local.yaml").unlink()
    assert load(repo).providers == {}  # "local" defaults to LocalProvider(type="local")
    (repo / "providers" / "k8s.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"providers/k8s\.yaml:1: .*empty provider file"):
        load(repo)
