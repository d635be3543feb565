"""Rules the schema alone cannot express: cross references, files, tasks, schedules.

Contract: :func:`validate` takes an :class:`~mlctl.spec.envspec.EnvSpec` whose ``config``
already passed the pydantic schema and returns every problem it finds as a located
:class:`~mlctl.errors.Diagnostic` (empty list: valid). It reads the filesystem only to
resolve paths (symlinks included) and never imports code named by the YAML: estimators are
looked up in :data:`~mlctl.spec.estimators.ALLOWED_ESTIMATORS` by name. Version pins are
not checked here (they need the state; plan checks them).

A value that came from ``${VAR}`` is shown as its placeholder in every message (the message
names the placeholder, and :meth:`_Validator.error` redacts whatever else slips in), and every
message is one line: a value's control characters are shown as their repr escapes. Dataset
paths may not name places that hold credentials or mlctl's own records (:meth:`_Validator.refused`):
``.git/`` anywhere, the state directory ``state/`` and the environment's state file, the root of
every local provider; an ``s3://`` dataset must be in a bucket the environment uses (its s3
artifacts provider or its s3 backend), outside the backend's state key and the artifact prefix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlctl.errors import Diagnostic
from mlctl.spec.display import one_line
from mlctl.spec.estimators import ALLOWED_ESTIMATORS, estimator_params, param_problem
from mlctl.spec.models import DriftMonitor, LocalProvider, PerformanceMonitor, S3Provider, ServingMonitor
from mlctl.spec.names import did_you_mean

if TYPE_CHECKING:
    from mlctl.spec.envspec import EnvSpec, ProviderType

PREDICTIONS = "predictions"
"""Reserved ``current`` of a drift monitor: the endpoint's prediction log."""

CLASSIFICATION_GATES = frozenset(
    {"min_accuracy", "min_precision", "min_recall", "min_f1", "min_auc", "max_log_loss"}
)
REGRESSION_GATES = frozenset({"max_rmse", "max_mae", "min_r2"})
_PRIMARY = {"classification": {"auc", "accuracy", "f1"}, "regression": {"r2"}}
# which provider types can play which role of environment.providers / endpoints
_ROLES = {
    "artifacts": {"local", "s3"},
    "serving": {"local", "k8s"},
    "training": {"local", "k8s"},
    "online": {"local", "redis"},
    "tracking": {"mlflow"},
}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
STATE_DIRECTORY = "state"
"""Where local state files live by convention (``state/<env>.json``): never a dataset."""
DEFAULT_ROOT = ".mlctl"
"""The local provider's default root (artifacts, runs, caches): never a dataset."""


def validate(spec: EnvSpec, *, all_providers: Mapping[str, ProviderType] | None = None) -> list[Diagnostic]:
    """Every cross-reference, path, task, stage and schedule problem of ``spec``.

    ``all_providers`` are every ``providers/*.yaml`` (the spec holds only those it uses): the
    roots of all local providers are refused as dataset paths, since another environment may
    use one.
    """
    return _Validator(spec, all_providers).run()


class _Validator:
    def __init__(self, spec: EnvSpec, all_providers: Mapping[str, ProviderType] | None = None):
        self.spec = spec
        self.config = spec.config
        self.diagnostics: list[Diagnostic] = []
        self.repo_real = spec.repo.resolve()
        self._dirs: dict[str, Path] = {}
        self._parts: dict[str, tuple[str, ...] | None] = {}
        self.all_providers = dict(spec.providers if all_providers is None else all_providers)
        self._places: list[tuple[tuple[str, ...], str, bool]] | None = None

    def error(self, path: str, summary: str, hint: str | None = None) -> None:
        file, line = self.spec.locate(path)

        def shown(text: str) -> str:
            return one_line(self.spec.redact(text))

        self.diagnostics.append(Diagnostic(shown(summary), path, file, line, shown(hint) if hint else hint))

    def ref(self, path: str, what: str, name: str, known: Collection[str]) -> bool:
        """Report ``name`` unless it is in ``known``; True when it is."""
        if name in known:
            return True
        names = list(known)
        hint = did_you_mean(name, names)
        if hint is None:
            hint = f"defined: {', '.join(sorted(names))}" if names else f"no {what}s are defined"
        self.error(path, f"unknown {what} '{self.show(path, name)}'", hint)
        return False

    def run(self) -> list[Diagnostic]:
        self.backend()
        self.providers()
        self.datasets()
        self.feature_views()
        self.models()
        self.endpoints()
        self.monitors()
        return sorted(self.diagnostics, key=lambda d: (d.file or "", d.line or 0, d.path, d.summary))

    # ------------------------------------------------------------------ sections

    def backend(self) -> None:
        backend = self.config.backend
        if backend.type == "local" and backend.path is not None:
            self.local_path("backend.path", backend.path)
            if self.is_git(backend.path):
                self.error("backend.path", "the state file may not be inside .git/")

    def providers(self) -> None:
        for stem, provider in self.spec.providers.items():
            path = f"provider:{stem}"
            if provider.type == "local":
                self.local_path(f"{path}.root", provider.root)
                if self.is_git(provider.root):
                    self.error(f"{path}.root", "a provider root may not be inside .git/")
            elif provider.type == "s3" and not provider.bucket.strip():
                self.error(f"{path}.bucket", "bucket must not be empty")
            elif provider.type == "mlflow" and not _URL.match(provider.tracking_uri):
                self.error(f"{path}.tracking_uri", "tracking_uri must be a URL (http://host:port)")
        refs = self.config.providers
        for role in ("artifacts", "serving", "training", "online"):
            self.provider_ref(f"providers.{role}", getattr(refs, role), role)
        if refs.tracking is not None:
            self.provider_ref("providers.tracking", refs.tracking, "tracking")

    def provider_ref(self, path: str, name: str, role: str) -> None:
        types = self.provider_types()
        if not self.ref(path, "provider", name, types):
            return
        if types[name] not in _ROLES[role]:
            usable = " or ".join(sorted(_ROLES[role]))
            self.error(
                path,
                f"provider '{name}' is of type {types[name]}, which cannot do {role}",
                f"use a {usable} provider",
            )

    def provider_types(self) -> dict[str, str]:
        types: dict[str, str] = {stem: p.type for stem, p in self.spec.providers.items()}
        types.setdefault("local", "local")
        return types

    def datasets(self) -> None:
        for name, dataset in self.config.datasets.items():
            base = f"datasets.{name}"
            self.data_path(f"{base}.path", dataset.path)
            columns = dataset.schema_
            if not columns:
                continue
            if dataset.timestamp and dataset.timestamp not in columns:
                shown = self.show(f"{base}.timestamp", dataset.timestamp)
                self.error(
                    f"{base}.timestamp",
                    f"timestamp column '{shown}' is not in the dataset's schema",
                    did_you_mean(dataset.timestamp, columns),
                )
            for column in dataset.checks.columns:
                if column not in columns:
                    self.error(
                        f"{base}.checks.columns.{column}",
                        f"column '{column}' is not in the dataset's schema",
                        did_you_mean(column, columns),
                    )

    def feature_views(self) -> None:
        config = self.config
        for name, view in config.feature_views.items():
            base = f"feature_views.{name}"
            for index, entity in enumerate(view.entities):
                self.ref(f"{base}.entities.{index}", "entity", entity, config.entities)
            if not self.ref(f"{base}.source", "dataset", view.source, config.datasets):
                continue
            dataset = config.datasets[view.source]
            if not dataset.timestamp:
                self.error(
                    f"{base}.source",
                    f"source dataset '{view.source}' has no timestamp column; point-in-time joins need one",
                    f"set datasets.{view.source}.timestamp",
                )
            columns = dataset.schema_
            if not columns:
                continue
            for index, entity_name in enumerate(view.entities):
                known = config.entities.get(entity_name)
                if known and known.join_key not in columns:
                    self.error(
                        f"{base}.entities.{index}",
                        f"join key '{known.join_key}' of entity '{entity_name}' is not in "
                        f"the schema of dataset '{view.source}'",
                        did_you_mean(known.join_key, columns),
                    )
            for feature in view.features:
                if feature not in columns:
                    self.error(
                        f"{base}.features.{feature}",
                        f"feature '{feature}' is not in the schema of dataset '{view.source}'",
                        did_you_mean(feature, columns),
                    )

    def models(self) -> None:
        config = self.config
        for name, model in config.models.items():
            base = f"models.{name}"
            training = model.training
            task = ALLOWED_ESTIMATORS.get(training.estimator)
            if task is None:
                hint = did_you_mean(training.estimator, ALLOWED_ESTIMATORS)
                shown = self.show(f"{base}.training.estimator", training.estimator)
                self.error(
                    f"{base}.training.estimator",
                    f"estimator '{shown}' is not allowed",
                    hint or "allowed: " + ", ".join(sorted(ALLOWED_ESTIMATORS)),
                )
            else:
                known_params = estimator_params(training.estimator)
                short = training.estimator.rsplit(".", 1)[-1]
                for param, value in training.params.items():
                    path = f"{base}.training.params.{param}"
                    if known_params and param not in known_params:
                        self.error(
                            path, f"{short} has no parameter '{param}'", did_you_mean(param, known_params)
                        )
                        continue
                    accepted = param_problem(training.estimator, param, value)
                    if accepted is not None:
                        self.error(path, f"{self.value(path, value)} is not accepted by {short} ({accepted})")
            join_keys: list[str] = []
            for index, ref in enumerate(training.features):
                view_name, _, feature = ref.partition(":")
                path = f"{base}.training.features.{index}"
                if not self.ref(path, "feature view", view_name, config.feature_views):
                    continue
                view = config.feature_views[view_name]
                if feature not in view.features:
                    hint = did_you_mean(feature, view.features)
                    self.error(
                        path,
                        f"feature view '{view_name}' has no feature '{feature}'",
                        hint or f"its features: {', '.join(view.features)}",
                    )
                if feature == training.target:
                    shown = self.show(f"{base}.training.target", training.target)
                    self.error(path, f"the target '{shown}' is also used as a feature")
                for entity_name in view.entities:
                    entity = config.entities.get(entity_name)
                    if entity and entity.join_key not in join_keys:
                        join_keys.append(entity.join_key)
            self.labels(base, training.labels, training.target, join_keys)
            if task is not None:
                self.gates(base, model.gates.model_fields_set, task, model.gates.primary_metric)
            if model.stages.production == "staging" and model.stages.staging == "none":
                self.error(
                    f"{base}.stages.production",
                    "production follows staging, but staging is 'none'",
                    "pin staging (latest or a version) or pin production to a version",
                )
            if model.retrain and model.retrain.schedule is not None:
                self.cron(f"{base}.retrain.schedule", model.retrain.schedule)

    def labels(self, base: str, labels: str, target: str, join_keys: list[str]) -> None:
        path = f"{base}.training.labels"
        if not self.ref(path, "dataset", labels, self.config.datasets):
            return
        dataset = self.config.datasets[labels]
        if not dataset.timestamp:
            self.error(
                path,
                f"labels dataset '{labels}' has no timestamp column; point-in-time joins need one",
                f"set datasets.{labels}.timestamp",
            )
        columns = dataset.schema_
        if not columns:
            return
        if target not in columns:
            self.error(
                f"{base}.training.target",
                f"target '{self.show(f'{base}.training.target', target)}' is not in the schema of "
                f"labels dataset '{labels}'",
                did_you_mean(target, columns),
            )
        for key in join_keys:
            if key not in columns:
                self.error(
                    path,
                    f"join key '{key}' is not in the schema of labels dataset '{labels}'",
                    did_you_mean(key, columns),
                )

    def gates(self, base: str, gates: set[str], task: str, primary: str | None) -> None:
        wrong = REGRESSION_GATES if task == "classification" else CLASSIFICATION_GATES
        right = CLASSIFICATION_GATES if task == "classification" else REGRESSION_GATES
        for gate in sorted(gates & wrong):
            self.error(
                f"{base}.gates.{gate}",
                f"gate {gate} does not apply to a {task} model",
                f"{task} gates: {', '.join(sorted(right))}",
            )
        if primary is not None and primary not in _PRIMARY[task]:
            self.error(
                f"{base}.gates.primary_metric",
                f"primary_metric {primary} does not apply to a {task} model",
                f"use {' or '.join(sorted(_PRIMARY[task]))}",
            )

    def endpoints(self) -> None:
        config = self.config
        for name, endpoint in config.endpoints.items():
            base = f"endpoints.{name}"
            if self.ref(f"{base}.model", "model", endpoint.model, config.models):
                stages = config.models[endpoint.model].stages
                if getattr(stages, endpoint.stage) == "none":
                    self.error(
                        f"{base}.stage",
                        f"endpoint serves the {endpoint.stage} stage of model "
                        f"'{endpoint.model}', which pins {endpoint.stage}: none",
                        f"pin models.{endpoint.model}.stages.{endpoint.stage}",
                    )
            self.provider_ref(f"{base}.provider", endpoint.provider, "serving")
            scale = endpoint.autoscale
            if scale and scale.min_replicas > scale.max_replicas:
                self.error(
                    f"{base}.autoscale.min_replicas",
                    f"min_replicas ({scale.min_replicas}) is greater than "
                    f"max_replicas ({scale.max_replicas})",
                )

    def monitors(self) -> None:
        config = self.config
        served = {e.model for e in config.endpoints.values()}
        for name, monitor in config.monitors.items():
            base = f"monitors.{name}"
            known_model = self.ref(f"{base}.model", "model", monitor.model, config.models)
            if monitor.schedule is not None:
                self.cron(f"{base}.schedule", monitor.schedule)
            if isinstance(monitor, DriftMonitor):
                if monitor.current != PREDICTIONS:
                    self.ref(
                        f"{base}.current",
                        "dataset",
                        monitor.current,
                        [*config.datasets, PREDICTIONS],
                    )
                if known_model and monitor.features is not None:
                    refs = config.models[monitor.model].training.features
                    names = [*refs, *(ref.partition(":")[2] for ref in refs)]
                    for index, feature in enumerate(monitor.features):
                        if feature not in names:
                            hint = did_you_mean(feature, names)
                            self.error(
                                f"{base}.features.{index}",
                                f"model '{monitor.model}' has no feature '{feature}'",
                                hint or f"its features: {', '.join(refs)}",
                            )
            elif isinstance(monitor, PerformanceMonitor):
                self.ref(f"{base}.labels", "dataset", monitor.labels, config.datasets)
                if known_model:
                    estimator = config.models[monitor.model].training.estimator
                    if ALLOWED_ESTIMATORS.get(estimator) == "regression":
                        for gate in sorted({"min_accuracy", "min_auc"} & monitor.model_fields_set):
                            self.error(
                                f"{base}.{gate}",
                                f"{gate} does not apply to regression model '{monitor.model}'",
                            )
            elif isinstance(monitor, ServingMonitor) and known_model and monitor.model not in served:
                self.error(
                    f"{base}.model",
                    f"serving monitor watches model '{monitor.model}', but no endpoint serves it",
                    "add an endpoint for it or use a drift/performance monitor",
                )

    # ------------------------------------------------------------------ values

    def cron(self, path: str, expression: str) -> None:
        if not is_valid_cron(expression):
            self.error(
                path,
                f"invalid cron expression '{self.show(path, expression)}'",
                "five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * 1'",
            )

    def data_path(self, path: str, value: str) -> None:
        """A dataset path: repository-relative and inside it, or ``s3://bucket/key`` in a bucket
        the environment uses; never a place that holds credentials or mlctl's own records."""
        if value.startswith("s3://"):
            bucket, _, key = value[5:].partition("/")
            if not bucket or not key.strip("/"):
                self.error(path, f"'{self.show(path, value)}' needs a bucket and a key")
                return
            if any(part in ("", ".", "..") for part in key.split("/")):  # S3 keys are not normalised
                self.error(
                    path,
                    f"'{self.show(path, value)}': an s3:// key may not hold '.', '..' or empty segments",
                    "write the key as S3 stores it: s3://bucket/dir/file.csv",
                )
                return
            self.s3_data_path(path, value, bucket, key)
            return
        if self.local_path(path, value):
            self.refused(path, value)

    def s3_data_path(self, path: str, value: str, bucket: str, key: str) -> None:
        """Only buckets of the providers the environment uses (and of its s3 backend)."""
        shown = self.show(path, value)
        backend = self.config.backend
        allowed: dict[str, list[tuple[str, str]]] = {}  # bucket -> [(key prefix, what it holds)]
        for name, provider in self.spec.providers.items():
            if isinstance(provider, S3Provider):
                prefix = provider.prefix.strip("/")
                places = allowed.setdefault(provider.bucket, [])
                if prefix:
                    places.append((prefix + "/", f"the artifact prefix of provider '{name}'"))
        if backend.type == "s3" and backend.bucket and backend.key:
            places = allowed.setdefault(backend.bucket, [])
            places.append((backend.key, "the state backend's key"))
        if bucket not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            self.error(
                path,
                f"dataset '{shown}' is in bucket '{bucket}', which this environment does not use",
                f"buckets it may read: {names} (the buckets of the s3 providers its roles name "
                "and of its s3 backend)",
            )
            return
        for prefix, what in allowed[bucket]:
            if key == prefix or key.startswith(prefix.rstrip("/") + "/") or key.startswith(prefix + "."):
                self.error(path, f"dataset '{shown}' is inside {what}, which is not data")
                return

    def local_path(self, path: str, value: str) -> bool:
        """A path that must stay inside the repository once resolved (symlinks included);
        True when it does."""
        shown = self.show(path, value)
        if not value.strip():
            self.error(path, "path must not be empty")
            return False
        if _URL.match(value):
            self.error(
                path,
                f"unsupported location '{shown}'",
                "use a path relative to the repository or s3://bucket/key",
            )
            return False
        if "\\" in value or "\0" in value:
            self.error(path, f"path '{shown}' contains a backslash or NUL", "use forward slashes")
            return False
        if len(value) > 1024 or any(len(part) > 255 for part in value.split("/")):
            self.error(path, f"path '{shown[:60]}...' is too long", "at most 1024 characters, 255 per name")
            return False
        if PurePosixPath(value).is_absolute():
            self.error(
                path,
                f"absolute path '{shown}' is not allowed",
                "use a path relative to the repository root",
            )
            return False
        if not self.inside(value):
            self.error(
                path,
                f"path '{shown}' escapes the repository",
                "keep data inside the repository or use s3://",
            )
            return False
        return True

    def resolved(self, value: str) -> Path:
        """Where repository-relative ``value`` points (symlinks followed); parents are cached."""
        parent, _, name = value.rpartition("/")
        real = self._dirs.get(parent)
        if real is None:
            real = self._dirs[parent] = (self.spec.repo / parent).resolve()
        target = real / name
        if name in ("", ".", "..") or target.is_symlink():
            target = target.resolve()
        return target

    def _relative(self, value: str) -> tuple[str, ...] | None:
        """The resolved repository-relative parts of ``value`` (None: it resolves outside the
        repository, or cannot be resolved); each value is resolved once per validation."""
        if value not in self._parts:
            try:
                target = self.resolved(value)
            except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long
                self._parts[value] = None
            else:
                text, root = str(target), str(self.repo_real)
                under = root if root.endswith(os.sep) else root + os.sep
                self._parts[value] = (
                    ()
                    if text == root
                    else tuple(text[len(under) :].split(os.sep))
                    if text.startswith(under)
                    else None
                )
        return self._parts[value]

    def inside(self, value: str) -> bool:
        """Whether ``value`` resolves inside the repository."""
        return self._relative(value) is not None

    def parts(self, value: str) -> tuple[str, ...]:
        """The resolved repository-relative parts of ``value``, case-folded (for comparisons)."""
        return tuple(part.casefold() for part in self._relative(value) or ())

    def is_git(self, value: str) -> bool:
        return ".git" in self.parts(value)

    def places(self) -> list[tuple[tuple[str, ...], str, bool]]:
        """(resolved parts, what it is, whole folder) of every place a dataset may not read."""
        if self._places is None:
            found: list[tuple[tuple[str, ...], str, bool]] = [
                ((STATE_DIRECTORY,), f"the state directory {STATE_DIRECTORY}/", True)
            ]
            roots = {DEFAULT_ROOT: "the local artifact root"}
            for name, provider in sorted(self.all_providers.items()):
                if isinstance(provider, LocalProvider) and provider.root.strip():
                    roots[provider.root] = f"the root of provider '{name}'"
            for root, what in roots.items():
                parts = self.parts(root)
                if parts:
                    found.append((parts, f"{what} ({root})", True))
            backend = self.config.backend
            if backend.type == "local" and backend.path:
                parts = self.parts(backend.path)
                if parts:
                    found.append((parts, f"the state file {backend.path}", False))
            self._places = found
        return self._places

    def refused(self, path: str, value: str) -> None:
        """A dataset path inside ``.git/``, the state directory or file, or a provider root."""
        shown = self.show(path, value)
        parts = self.parts(value)
        if ".git" in parts:
            self.error(
                path,
                f"dataset path '{shown}' is inside .git/, which holds the repository's credentials",
                "datasets live outside .git/ (data/, or s3://)",
            )
            return
        for place, what, folder in self.places():
            n = len(place)
            within = parts[:n] == place and (folder or len(parts) == n)
            sibling = not folder and len(parts) == n and parts[-1].startswith(place[-1] + ".")
            if within or (sibling and parts[: n - 1] == place[:-1]):
                self.error(path, f"dataset path '{shown}' is inside {what}, which is not data")
                return

    def value(self, path: str, value: object) -> str:
        """Any YAML value as a message shows it: repr-quoted on one line (its placeholder when it
        came from ``${VAR}``), a list or mapping by its kind, at most 60 characters."""
        if isinstance(value, (list, dict)):
            return "a list" if isinstance(value, list) else "a mapping"
        text = one_line(repr(self.spec.display(path, value) if isinstance(value, str) else value))
        return text if len(text) <= 60 else text[:57] + "..."

    def show(self, path: str, value: str) -> str:
        """``value`` as a message may show it: its placeholder when it came from ``${VAR}``, on
        one line (a newline or other control character as its repr escape)."""
        return one_line(self.spec.display(path, value))


# ---------------------------------------------------------------------- cron

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_CRON_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    (0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_CRON_ITEM = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


@lru_cache(maxsize=1024)
def is_valid_cron(expression: str) -> bool:
    """Whether ``expression`` is a cron schedule the scheduler (croniter) accepts.

    Standard five-field expressions are checked here without importing croniter (its import
    costs ~0.1 s); anything this strict check rejects is given to ``croniter.is_valid`` so
    croniter's extensions (``L``, ``#``, seconds field) are not refused.
    """
    text = expression.strip().lower()
    if text in _CRON_MACROS or _simple_cron(text):
        return True
    from croniter import croniter  # lazy: only for unusual expressions

    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # croniter raises odd types on odd input; invalid either way
        return False


def _simple_cron(text: str) -> bool:
    fields = text.split()
    if len(fields) != 5:
        return False
    for value, (low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in value.split(","):
            match = _CRON_ITEM.match(item)
            if not match:
                return False
            span, step = match.groups()
            if step is not None and int(step) < 1:
                return False
            if span == "*":
                continue
            if step is not None and "-" not in span:
                return False  # 'a/n' is croniter-specific: let croniter decide
            bounds = []
            for part in span.split("-"):
                number = names.get(part) if not part.isdigit() else int(part)
                if number is None or not low <= number <= high:
                    return False
                bounds.append(number)
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                return False
    return True


def check_path_inside(repo: Path, value: str) -> bool:
    """True when repository-relative ``value`` resolves (symlinks too) inside ``repo``."""
    if not value or _URL.match(value) or PurePosixPath(value).is_absolute():
        return False
    return (repo / value).resolve().is_relative_to(repo.resolve())
