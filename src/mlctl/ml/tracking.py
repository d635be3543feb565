"""A local run store in the spirit of MLflow tracking: one directory per training run.

Layout: ``<root>/<run_id>/run.json`` (the :class:`RunRecord`: params, latest metrics, tags,
data, artifacts), ``<root>/<run_id>/metrics.jsonl`` (the history of metrics logged with a
``step``, one JSON point a line, appended) and ``<root>/<run_id>/artifacts/<name>``. Run ids
are ``YYYYMMDDTHHMMSSffffffZ-<6 hex>`` (UTC start time plus randomness), so sorting ids sorts
runs by start time.

Durability contract. A :class:`Run` keeps its record in memory and writes it at a *flush*:
``finish()`` (also reached by leaving the ``with`` block), an explicit ``flush()``, every
``flush_every`` log calls (default 1,000) and at the first log call ``flush_seconds``
(default 5 s) after the previous flush; a run still open at interpreter exit is flushed
too (unless its folder was deleted meanwhile). ``start_run`` writes nothing: a run appears
on disk at its first flush (call ``flush()`` right after it to show a long job as
``running``; the training engine does). A flush appends the new
metric points to ``metrics.jsonl`` and fsyncs it, then replaces ``run.json`` atomically
(temporary file in the same directory, fsync, ``os.replace``, fsync of the directory).
When ``flush()``/``finish()`` return, everything logged is on disk. A crash (kill -9,
power loss) loses what was logged since the last flush, nothing before it: ``run.json`` is
always a whole, valid record of some flush (never torn), and ``metrics.jsonl`` holds whole
lines up to the last flush, plus at most a torn last line that readers skip; the history
may run one flush ahead of ``run.json``. A run that never finished reads back with status
``running``. Artifacts are written durably (atomically) when logged; ``run.json`` lists
them from the next flush. After ``finish`` every further log call is written at once.

A ``Run`` is used by one thread; different runs may be written concurrently. Nothing heavy
is imported here.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import platform
import re
import secrets
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlctl.errors import MlctlError, NotFoundError
from mlctl.files import atomic_write, fsync_dir

__all__ = ["MetricPoint", "Run", "RunRecord", "RunStore", "check_run_id", "is_run_id"]

RunStatus = Literal["running", "finished", "failed"]
PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "mlctl")
HISTORY = "metrics.jsonl"
#: A run flushes after this many log calls since its last flush ...
FLUSH_EVERY = 1000
#: ... or at the first log call this many seconds after it.
FLUSH_SECONDS = 5.0
_RUN_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{6}")


class MetricPoint(NamedTuple):
    """One point of a metric's history: ``step``, ``value``, ``timestamp`` (ms since epoch)."""

    step: int
    value: float
    timestamp: int


def is_run_id(value: object) -> bool:
    """Whether ``value`` is a run id this store makes (``YYYYMMDDTHHMMSSffffffZ-<6 hex>``):
    the only form safe to join onto a folder (no separators, no ``..``)."""
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def check_run_id(value: object) -> str:
    """``value`` when it is a run id (:func:`is_run_id`); MlctlError otherwise. Every run id
    read from somewhere mlctl did not just write (a manifest, a run.json from a store, state)
    passes here before a path is built from it."""
    if not is_run_id(value):
        shown = repr(value)[:80]
        raise MlctlError(f"{shown} is not a run id (YYYYMMDDTHHMMSSffffffZ-xxxxxx)")
    assert isinstance(value, str)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunRecord(BaseModel):
    """Everything recorded about one run (the content of ``run.json``)."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    model: str
    environment: str
    status: RunStatus = "running"
    error: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    data: dict[str, str] = Field(default_factory=dict, description="dataset -> fingerprint")
    artifacts: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name -> {sha256, size}")
    git_commit: str | None = None
    python: str = ""
    platform: str = ""
    packages: dict[str, str | None] = Field(default_factory=dict)
    started_at: str
    ended_at: str | None = None
    duration_s: float | None = None

    @field_validator("run_id")
    @classmethod
    def _run_id_is_safe(cls, value: str) -> str:
        if not is_run_id(value):
            raise ValueError(f"{value[:80]!r} is not a run id")
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the record."""
        return self.model_dump(mode="json")


class Run:
    """A run being recorded, buffered in memory (see the module's durability contract).
    Also a context manager: leaving the block finishes the run (as failed on an exception)."""

    def __init__(
        self,
        store: RunStore,
        record: RunRecord,
        started: datetime,
        *,
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
    ):
        self.store = store
        self.record = record
        self._started = started
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._pending = 0  # log calls since the last flush
        self._points: list[str] = []  # metrics.jsonl lines not yet appended
        self._flushed_at = time.monotonic()
        self._written = False  # run.json exists
        _OPEN.add(self)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def directory(self) -> Path:
        return self.store.root / self.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Record parameters (JSON values kept as they are, anything else as text)."""
        self.record.params.update({str(k): _jsonable(v) for k, v in params.items()})
        self._logged()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record metrics as floats (the latest value of a name wins). With ``step`` each value
        is also a point of the metric's history (:meth:`RunStore.metric_history`), stamped
        with the current time, as MLflow's ``log_metric(key, value, step)`` records it."""
        values = {str(k): float(v) for k, v in metrics.items()}
        self.record.metrics.update(values)
        if step is not None:
            stamp = int(time.time() * 1000)
            self._points.extend(
                json.dumps({"name": k, "step": int(step), "value": v, "timestamp": stamp}) + "\n"
                for k, v in values.items()
            )
        self._logged()

    def set_tags(self, tags: dict[str, str]) -> None:
        """Add or replace tags."""
        self.record.tags.update({str(k): str(v) for k, v in tags.items()})
        self._logged()

    def log_data(self, fingerprints: dict[str, str]) -> None:
        """Record the datasets used: name -> ``sha256:...`` fingerprint."""
        self.record.data.update({str(k): str(v) for k, v in fingerprints.items()})
        self._logged()

    def log_artifact(self, source: Path | str | bytes, name: str | None = None) -> Path:
        """Copy a file (or write bytes) to ``artifacts/<name>`` durably; return the stored path.
        ``run.json`` lists it (sha256, size) from the next flush.

        ``name`` defaults to the file's name (required for bytes); it may contain ``/`` for
        sub-folders but must stay inside the artifacts folder.
        """
        if isinstance(source, bytes):
            if not name:
                raise MlctlError("log_artifact needs a name for bytes")
            payload = source
        else:
            src = Path(source)
            if not src.is_file():
                raise MlctlError(f"artifact not found: {src}")
            name = name or src.name
            payload = src.read_bytes()
        target = _inside(self.directory / "artifacts", name)
        atomic_write(target, payload)
        self.record.artifacts[name] = {
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload),
        }
        self._logged()
        return target

    def flush(self) -> None:
        """Write what was logged since the last flush (history points, then ``run.json``);
        when it returns, the run as recorded so far is on disk. A no-op when nothing changed."""
        if self._pending == 0 and self._written and not self._points:
            return
        if self._points:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / HISTORY).open("ab") as handle:
                handle.write("".join(self._points).encode())
                handle.flush()
                os.fsync(handle.fileno())
            self._points.clear()
        self.store._write(self.record)  # its directory fsync also covers a new metrics.jsonl
        if not self._written:  # the run folder's own entry in the store's folder
            fsync_dir(self.store.root)
        self._written = True
        self._pending = 0
        self._flushed_at = time.monotonic()

    def finish(
        self, status: Literal["finished", "failed"] = "finished", error: str | None = None
    ) -> RunRecord:
        """Close the run with ``status`` (and ``error`` text when it failed) and flush it."""
        ended = _now()
        self.record.status = status
        self.record.error = error
        self.record.ended_at = _iso(ended)
        self.record.duration_s = (ended - self._started).total_seconds()
        self._pending += 1
        self.flush()
        _OPEN.discard(self)
        return self.record

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.record.status != "running":
            return
        if error is None:
            self.finish("finished")
        else:
            self.finish("failed", f"{type(error).__name__}: {error}")

    def _logged(self) -> None:
        self._pending += 1
        if (
            self.record.status != "running"
            or self._pending >= self.flush_every
            or time.monotonic() - self._flushed_at >= self.flush_seconds
        ):
            self.flush()


#: Runs started and not finished in this process, flushed at interpreter exit (a crash still
#: loses what they logged since their last flush).
_OPEN: set[Run] = set()


@atexit.register
def _flush_open_runs() -> None:
    for run in list(_OPEN):
        if run._written and not run.directory.is_dir():
            continue  # deleted since (a temporary store): not brought back
        with contextlib.suppress(OSError):
            run.flush()


class RunStore:
    """Runs kept under ``root`` (created on first write)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def start_run(
        self,
        model: str,
        environment: str,
        tags: dict[str, str] | None = None,
        git_commit: str | None = None,
    ) -> Run:
        """A new run with status ``running`` and its environment facts, in memory: it is
        written at its first flush (see the module's durability contract)."""
        started = _now()
        run_id = f"{started:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(3)}"
        record = RunRecord(
            run_id=run_id,
            model=model,
            environment=environment,
            tags={str(k): str(v) for k, v in (tags or {}).items()},
            git_commit=git_commit,
            python=platform.python_version(),
            platform=_platform(),
            packages=dict(_packages()),
            started_at=_iso(started),
        )
        return Run(self, record, started)

    def list_runs(self, model: str | None = None) -> list[RunRecord]:
        """Every readable run (of ``model`` when given), newest first."""
        if not self.root.is_dir():
            return []
        records = []
        for directory in sorted(self.root.iterdir(), key=lambda p: p.name, reverse=True):
            if not is_run_id(directory.name):
                continue
            record = self._read(directory.name, missing_ok=True)
            if record is not None and (model is None or record.model == model):
                records.append(record)
        return records

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix; :class:`NotFoundError` otherwise."""
        if not run_id:
            raise NotFoundError("no run id given")
        ids = [p.name for p in self.root.iterdir()] if self.root.is_dir() else []
        ids = [i for i in ids if is_run_id(i)]
        matches = [run_id] if run_id in ids else sorted(i for i in ids if i.startswith(run_id))
        if not matches:
            raise NotFoundError(f"no run '{run_id}' in {self.root}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise NotFoundError(f"run prefix '{run_id}' is ambiguous: {shown}")
        record = self._read(matches[0], missing_ok=False)
        assert record is not None
        return record

    def compare(self, run_ids: list[str]) -> dict[str, Any]:
        """Params and metrics of several runs side by side.

        Returns ``{"runs": [ids], "params": {name: {"values": {id: v}, "differs": bool}},
        "metrics": {name: {"values": {id: v}, "differs": bool}}}``; a run lacking a name has
        ``None`` there. Ids may be unique prefixes.
        """
        records = [self.get_run(run_id) for run_id in run_ids]
        ids = [r.run_id for r in records]

        def side_by_side(field: str) -> dict[str, Any]:
            names = sorted({k for r in records for k in getattr(r, field)})
            table = {}
            for name in names:
                values = {r.run_id: getattr(r, field).get(name) for r in records}
                distinct = {json.dumps(v, sort_keys=True) for v in values.values()}
                table[name] = {"values": values, "differs": len(distinct) > 1}
            return table

        return {"runs": ids, "params": side_by_side("params"), "metrics": side_by_side("metrics")}

    def add_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Add (or overwrite) tags of a finished run, e.g. what it was trained for."""
        record = self.get_run(run_id)
        record.tags.update({str(k): str(v) for k, v in tags.items()})
        self._write(record)

    def metric_history(self, run_id: str, name: str | None = None) -> dict[str, list[MetricPoint]]:
        """The history of the metrics logged with a ``step`` (``name`` only, when given):
        metric name -> points in the order they were logged; ``{}`` when there is none.
        Lines that do not parse (a torn last line after a crash) are skipped."""
        path = self.root / self.get_run(run_id).run_id / HISTORY
        history: dict[str, list[MetricPoint]] = {}
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return history
        for line in lines:
            try:
                point = json.loads(line)
                key = str(point["name"])
                item = MetricPoint(int(point["step"]), float(point["value"]), int(point["timestamp"]))
            except (ValueError, KeyError, TypeError):
                continue
            if name is None or key == name:
                history.setdefault(key, []).append(item)
        return history

    def artifact_path(self, run_id: str, name: str) -> Path:
        """Where artifact ``name`` of run ``run_id`` is stored."""
        return _inside(self.root / self.get_run(run_id).run_id / "artifacts", name)

    def _write(self, record: RunRecord) -> None:
        check_run_id(record.run_id)
        text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write(self.root / record.run_id / "run.json", text.encode())

    def _read(self, run_id: str, missing_ok: bool) -> RunRecord | None:
        path = self.root / check_run_id(run_id) / "run.json"
        try:
            record = RunRecord.model_validate_json(path.read_bytes())
            if record.run_id != run_id:
                raise ValueError(f"it names run {record.run_id}")
            return record
        except FileNotFoundError:
            if missing_ok:
                return None
            raise NotFoundError(f"run {run_id} has no run.json") from None
        except ValueError as error:
            if missing_ok:
                return None
            raise MlctlError(f"run {run_id}: unreadable run.json ({error})") from None


def _inside(folder: Path, name: str) -> Path:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise MlctlError(f"artifact name '{name}' must be a relative path inside the run")
    return folder / relative


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


@functools.cache
def _packages() -> dict[str, str | None]:
    """Versions of :data:`PACKAGES` (looked up once a process: reading package metadata
    costs milliseconds a package)."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@functools.cache
def _platform() -> str:
    return platform.platform()
