"""Schema v1 of the desired state, as pydantic models.

One :class:`Environment` is the merge of every ``environments/<env>/*.yaml``. Field names
are the YAML keys (``schema`` is ``schema_`` in Python). Models forbid unknown keys; range and
shape checks live here, cross references and filesystem rules in :mod:`mlctl.spec.validate`.
Importing this module is cheap: no pandas, scikit-learn or croniter.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlctl.spec.estimators import ALLOWED_ESTIMATORS, Task

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
ColumnType = Literal["string", "int", "float", "bool", "datetime", "category"]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]

_DURATION = re.compile(r"^([0-9]+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_SECONDS = 100 * 365 * 86400
"""The longest duration (ttl, window) a spec may give: 100 years. Every use site (datetime,
pandas and int64 nanosecond arithmetic) holds it without overflow; nothing needs more."""


REGION_PATTERN = r"^(?:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}|auto)$"
"""An AWS region name (``us-east-1``, ``eu-central-2``, ``us-gov-west-1``), or ``auto``
(Cloudflare R2). botocore signs the region into every request's ``Authorization`` header, so
it is checked: a free string there could carry anything to the server. S3-compatible servers
(MinIO, SeaweedFS) use ``us-east-1``."""


def _region(value: str | None) -> str | None:
    if value is not None and not re.match(REGION_PATTERN, value):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"{shown!r} is not a region name like us-east-1 or eu-central-2")
    return value


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as ``30m``, ``12h``, ``1d`` or ``2w``; ``ValueError`` if malformed
    or longer than :data:`MAX_DURATION_SECONDS` (100 years)."""
    match = _DURATION.match(text.strip())
    shown = text if len(text) <= 40 else text[:37] + "..."
    if not match or int(match.group(1)[:20]) <= 0:
        raise ValueError(f"'{shown}' is not a duration like 30m, 12h, 1d or 2w")
    digits = match.group(1).lstrip("0")
    seconds = int(digits[:20]) * _UNIT_SECONDS[match.group(2)]
    if len(digits) > 20 or seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"'{shown}' is longer than 100 years (36500d), the longest duration allowed")
    return seconds


class Strict(BaseModel):
    """Base for every schema node: unknown keys are errors; a float is finite (``.nan`` and
    ``.inf`` are refused: a NaN bound compares false with everything, so it would pass)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class Backend(Strict):
    """Where the environment's state lives: a local file (default) or an S3 object."""

    type: Literal["local", "s3"] = "local"
    path: str | None = Field(None, description="local state file, relative to the repository")
    bucket: str | None = None
    key: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None

    _region_is_valid = field_validator("region")(_region)

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Backend:
        if self.type == "s3" and not (self.bucket and self.key):
            raise ValueError("an s3 backend needs bucket and key")
        return self


class ProviderRefs(Strict):
    """Names of ``providers/<name>.yaml`` used for each role."""

    artifacts: Name = "local"
    serving: Name = "local"
    training: Name = "local"
    online: Name = Field(
        "local",
        description="online feature store: a local provider (embedded SQLite under its root) "
        "or a redis provider",
    )
    tracking: Name | None = Field(
        None,
        description="an mlflow provider that mirrors runs, versions and stage aliases "
        "(mlctl's state stays the source of truth); unset: no mirror",
    )


class ColumnCheck(Strict):
    """Checks on one column's values."""

    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float | bool] | None = None
    not_null: bool = False
    max_null_ratio: Rate | None = None

    @model_validator(mode="after")
    def _min_le_max(self) -> ColumnCheck:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class DataChecks(Strict):
    """Checks a dataset must pass before anything trains on it."""

    min_rows: Annotated[int, Field(ge=0)] | None = None
    max_null_ratio: Rate | None = None
    columns: dict[str, ColumnCheck] = Field(default_factory=dict)


class Dataset(Strict):
    """A table of data: a CSV or Parquet file in the repository or at an ``s3://`` URL."""

    path: str
    format: Literal["csv", "parquet"] | None = Field(
        None, description="inferred from the path's suffix when absent"
    )
    timestamp: str | None = Field(None, description="event-time column")
    schema_: dict[str, ColumnType] = Field(default_factory=dict, alias="schema")
    checks: DataChecks = Field(default_factory=DataChecks)
    description: str | None = None

    @property
    def file_format(self) -> Literal["csv", "parquet"]:
        """The declared format, or the one the path's suffix implies (csv by default)."""
        if self.format:
            return self.format
        return "parquet" if self.path.endswith((".parquet", ".pq")) else "csv"


class Entity(Strict):
    """A business object features are keyed by."""

    join_key: str
    value_type: ColumnType = "string"
    description: str | None = None


class FeatureView(Strict):
    """Named features read from one dataset, keyed by entities, valid for ``ttl``."""

    entities: list[Name] = Field(min_length=1)
    source: Name
    ttl: str | None = Field(None, description="duration like 12h, 1d, 90d; none = no expiry")
    online: bool = False
    features: dict[str, ColumnType] = Field(min_length=1)
    description: str | None = None

    @field_validator("ttl")
    @classmethod
    def _ttl_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value

    @property
    def ttl_seconds(self) -> int | None:
        """The ttl in seconds, or None when values never expire."""
        return duration_seconds(self.ttl) if self.ttl else None


class Training(Strict):
    """How a model version is trained: data, features, estimator and its parameters."""

    labels: Name = Field(description="dataset with the entity key, a timestamp and the target")
    target: str
    features: list[str] = Field(min_length=1, description="'view:feature' references")
    estimator: str = Field(description="an allow-listed estimator class")
    params: dict[str, Any] = Field(default_factory=dict)
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    random_state: int = 42

    @field_validator("features")
    @classmethod
    def _feature_refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            view, _, feature = ref.partition(":")
            if not view or not feature:
                raise ValueError(f"feature '{ref}' must be written 'view:feature'")
        if len(set(value)) != len(value):
            raise ValueError("a feature is listed twice")
        return value

    @field_validator("params")
    @classmethod
    def _params_are_plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        def plain(item: Any) -> bool:
            if isinstance(item, float):
                return math.isfinite(item)
            if isinstance(item, (str, int, bool)) or item is None:
                return True
            if isinstance(item, list):
                return all(plain(i) for i in item)
            if isinstance(item, dict):
                return all(isinstance(k, str) and plain(v) for k, v in item.items())
            return False

        for key, item in value.items():
            if not plain(item):
                raise ValueError(
                    f"param '{key}' must be a plain value (text, a finite number, true/false, "
                    "or lists and mappings of them)"
                )
        return value

    @property
    def task(self) -> Task:
        """classification or regression, from the estimator allow-list."""
        return ALLOWED_ESTIMATORS[self.estimator]


class Gates(Strict):
    """Quality bars a version must clear before it may enter staging or production."""

    min_accuracy: Rate | None = None
    min_precision: Rate | None = None
    min_recall: Rate | None = None
    min_f1: Rate | None = None
    min_auc: Rate | None = None
    max_log_loss: Annotated[float, Field(ge=0.0)] | None = None
    max_rmse: Annotated[float, Field(ge=0.0)] | None = None
    max_mae: Annotated[float, Field(ge=0.0)] | None = None
    min_r2: Annotated[float, Field(le=1.0)] | None = None
    max_latency_ms: Annotated[float, Field(gt=0.0)] | None = None
    max_regression: Rate | None = Field(
        None, description="largest allowed drop of the primary metric below production"
    )
    primary_metric: Literal["auc", "accuracy", "f1", "r2"] | None = Field(
        None, description="metric max_regression compares; auc (classifiers) or r2 by default"
    )


StagePin = Literal["latest", "none"]
ProductionPin = Literal["staging", "none"]


class Stages(Strict):
    """Which version each stage holds: ``staging: latest|none|N``, ``production: staging|none|N``."""

    staging: Annotated[int, Field(ge=1)] | StagePin = "latest"
    production: Annotated[int, Field(ge=1)] | ProductionPin = "none"


class Retrain(Strict):
    """When to train again although the spec did not change."""

    schedule: str | None = Field(None, description="cron expression, e.g. '0 6 * * 1'")
    on: list[Literal["drift", "new_data", "performance"]] = Field(default_factory=list)
    min_new_rows: Annotated[int, Field(ge=1)] = 1000


class Serving(Strict):
    """How predictions are served and labelled."""

    risk_levels: dict[str, Rate] = Field(default_factory=dict)


class Model(Strict):
    """A model: its training spec, gates, stage pins, retraining triggers and serving."""

    description: str | None = None
    training: Training
    gates: Gates = Field(default_factory=Gates)
    stages: Stages = Field(default_factory=Stages)
    retrain: Retrain | None = None
    serving: Serving = Field(default_factory=Serving)
    tags: dict[str, str] = Field(default_factory=dict)


class Autoscale(Strict):
    """Horizontal autoscaling of an endpoint."""

    min_replicas: Annotated[int, Field(ge=1)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 4
    target_cpu_percent: Annotated[int, Field(ge=1, le=100)] = 70


class RolloutAnalysis(Strict):
    """How a rollout's arms are compared (:mod:`mlctl.monitor.rollout_analysis`)."""

    min_samples: Annotated[int, Field(ge=10)] = Field(200, description="requests per arm before any verdict")
    max_latency_increase: Annotated[float, Field(ge=0.0)] = Field(
        0.2, description="relative p95 latency increase of the candidate tolerated (0.2 = +20%)"
    )
    max_error_rate_increase: Rate = Field(0.01, description="absolute error-rate increase tolerated")
    max_prediction_drift: Rate = Field(
        0.2, description="KS statistic between the arms' predictions tolerated"
    )
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = Field(
        0.05, description="family-wise error rate (Holm-corrected over the tests)"
    )
    max_accuracy_decrease: Rate = Field(
        0.02,
        description="absolute accuracy decrease of the candidate tolerated once delayed labels "
        "arrive (the labels dataset of the model's performance monitor)",
    )
    min_labelled: Annotated[int, Field(ge=10)] = Field(
        100, description="labelled predictions per arm before quality joins the tests"
    )


class Rollout(Strict):
    """Progressive delivery of a candidate stage next to the endpoint's stage.

    ``canary`` moves the candidate's share of traffic through ``steps`` (percentages),
    ``ab`` holds a fixed split (the first step), ``shadow`` has the candidate score every
    request off the response path while the endpoint's stage answers."""

    strategy: Literal["canary", "shadow", "ab"] = "canary"
    candidate: Literal["staging", "production"] = "staging"
    steps: list[Annotated[float, Field(gt=0.0, le=100.0)]] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        description="candidate traffic percentages, strictly increasing",
    )
    analysis: RolloutAnalysis = Field(default_factory=RolloutAnalysis)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("steps needs at least one percentage")
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):  # noqa: RUF007
            raise ValueError("steps must be strictly increasing")
        return value


class Endpoint(Strict):
    """A serving endpoint for one stage of one model."""

    model: Name
    stage: Literal["staging", "production"] = "production"
    provider: Name = "local"
    replicas: Annotated[int, Field(ge=1)] = 1
    autoscale: Autoscale | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    rollout: Rollout | None = None

    @model_validator(mode="after")
    def _candidate_differs(self) -> Endpoint:
        if self.rollout is not None and self.rollout.candidate == self.stage:
            raise ValueError(f"rollout.candidate must be another stage than the endpoint's ({self.stage})")
        return self


Action = Literal["alert", "retrain", "rollback"]


def _default_actions() -> list[Action]:
    return ["alert"]


class MonitorBase(Strict):
    model: Name
    actions: list[Action] = Field(default_factory=lambda: _default_actions())
    schedule: str | None = Field(None, description="cron expression")
    window: str | None = Field(None, description="duration of current data to read, e.g. 7d")
    consecutive: Annotated[int, Field(ge=1)] = Field(1, description="runs a breach must persist")

    @field_validator("window")
    @classmethod
    def _window_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value


class DriftMonitor(MonitorBase):
    """Per-feature and prediction drift of current data against the training profile."""

    kind: Literal["drift"]
    current: str = Field("predictions", description="a dataset, or 'predictions' (the log)")
    test: Literal["ks", "psi", "wasserstein", "jensenshannon", "chi2"] = "ks"
    threshold: Annotated[float, Field(gt=0.0)] = 0.15
    features: list[str] | None = None
    min_samples: Annotated[int, Field(ge=1)] = 100


class PerformanceMonitor(MonitorBase):
    """Delayed-label quality of served predictions."""

    kind: Literal["performance"]
    labels: Name
    min_accuracy: Rate | None = None
    min_auc: Rate | None = None


class ServingMonitor(MonitorBase):
    """Latency, error rate and volume of an endpoint."""

    kind: Literal["serving"]
    max_p95_latency_ms: Annotated[float, Field(gt=0.0)] | None = None
    max_error_rate: Rate | None = None
    min_requests: Annotated[int, Field(ge=0)] | None = None


Monitor = Annotated[DriftMonitor | PerformanceMonitor | ServingMonitor, Field(discriminator="kind")]


class Environment(Strict):
    """The merged desired state of one environment (every ``*.yaml`` in its folder)."""

    backend: Backend = Field(default_factory=Backend)
    providers: ProviderRefs = Field(default_factory=ProviderRefs)
    datasets: dict[Name, Dataset] = Field(default_factory=dict)
    entities: dict[Name, Entity] = Field(default_factory=dict)
    feature_views: dict[Name, FeatureView] = Field(default_factory=dict)
    models: dict[Name, Model] = Field(default_factory=dict)
    endpoints: dict[Name, Endpoint] = Field(default_factory=dict)
    monitors: dict[Name, Monitor] = Field(default_factory=dict)


class LocalProvider(Strict):
    """Artifacts and runs on local disk; endpoints served by ``mlctl serve``."""

    type: Literal["local"]
    root: str = Field(".mlctl", description="directory for artifacts and runs, repo-relative")


class S3Provider(Strict):
    """Artifacts in an S3 bucket (any S3-compatible server through ``endpoint_url``)."""

    type: Literal["s3"]
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None

    _region_is_valid = field_validator("region")(_region)


class K8sProvider(Strict):
    """Endpoints and training jobs on Kubernetes."""

    type: Literal["k8s"]
    namespace: str = "default"
    context: str | None = None
    image: str = "mlctl-serving:latest"
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    apply: bool = Field(
        True,
        description="false: apply records versions but never calls the cluster; Argo CD or Flux "
        "apply the manifests `mlctl render` writes",
    )
    rollout_timeout: Annotated[int, Field(ge=0)] = Field(
        300,
        description="seconds deploy waits for a rollout to finish (all replicas updated and "
        "available); a failed or late rollout is a failed action and the previous version stays "
        "live; 0: do not wait",
    )
    token_secret: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",  # a Kubernetes object name
        description="name of a Secret whose key `token` serving requires as a Bearer token "
        "(env MLCTL_SERVE_TOKEN); unset: the Deployment passes `serve --insecure`",
    )


class RedisProvider(Strict):
    """An online feature store in Redis (``url``, or ``host``/``port``/``db``)."""

    type: Literal["redis"]
    url: str | None = Field(None, description="redis://[:password@]host:port/db; overrides host/port/db")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 6379
    db: Annotated[int, Field(ge=0)] = 0
    password: str | None = Field(None, description="use ${VAR}; never written to state")
    key_prefix: str = Field("mlctl:", description="prefix of every key mlctl writes")


class MlflowProvider(Strict):
    """An MLflow tracking server and model registry, used as a mirror (``providers.tracking``).

    Credentials come from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD in the
    environment, never from YAML."""

    type: Literal["mlflow"]
    tracking_uri: str = Field(
        description="http(s)://host:port of the MLflow server (no ${VAR}: it decides where credentials go)"
    )
    experiment: str | None = Field(None, description="experiment runs are logged to; default mlctl-<env>")


ProviderConfig = Annotated[
    LocalProvider | S3Provider | K8sProvider | RedisProvider | MlflowProvider, Field(discriminator="type")
]


class ProviderFile(Strict):
    """Wrapper used to validate one ``providers/<name>.yaml``."""

    provider: ProviderConfig
