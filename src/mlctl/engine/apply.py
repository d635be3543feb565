"""The executor: walk a Plan in order, make each change true, checkpoint after each.

Contract: the caller holds the environment's lock and passes the state it read under that lock
(and, for a saved plan, has checked the plan is fresh). Every completed action is persisted
before the next starts, so a crash loses at most the action in flight and a rerun converges:
a version is registered in one write after its artifact is stored, so it is never duplicated
or half-registered. Failures a user can fix (a data check, a gate, a tampered artifact) do not
stop independent work; they skip what depends on them. Every action ends in one
:class:`ActionOutcome` (ok, failed or skipped) of :attr:`ExecutionResult.outcomes`, and every
failure in one error :class:`~mlctl.errors.Diagnostic` naming its address (the CLI exits 1).
Production never moves to a version that failed.

A stage moves away from the version it holds only once every endpoint this plan deploys for it
serves the new one. Serving processes follow the stage in state (``serving/follower.py``), so a
stage recorded before its endpoints' rollout would make the old, healthy replicas load a
version whose own pods never came up. Those endpoints are therefore deployed just before the
stage's change (the one departure from plan order; see :meth:`Executor.in_order`), with the
version the stage resolves to. A failed deploy leaves the stage where it was (the action is
skipped, saying so in one line, and its history records no move), is recorded in the
endpoint's status as ``failed_deploy`` (version, reason, time, actor, commit) next to the
version still served, and puts the stage's other endpoints back on that version; the
candidate stays registered, so the next plan proposes the promotion and the deploy again. A
stage that holds no version yet moves first: nothing serves that could be displaced, and new
replicas have nothing to load (``/ready`` answers 503) until the stage names a version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlctl.engine.events import Event, Listener, quiet
from mlctl.engine.outcomes import ActionFailed, ActionOutcome, OutcomeAddresses, Skipped, Status
from mlctl.engine.registry import move_stage
from mlctl.errors import Diagnostic, MlctlError
from mlctl.plan.model import Plan, ResourceChange
from mlctl.plan.planner import version_identity
from mlctl.plan.resources import Desired, desired_resources
from mlctl.plan.stage_targets import gate_results, resolve
from mlctl.plan.triggers import (
    candidate_identity,
    due_triggers,
    mark_trained,
    sweep_cleared,
)
from mlctl.providers import artifact_store, serving
from mlctl.providers.base import ArtifactStore
from mlctl.providers.datasets import count_rows, dataset_path
from mlctl.state.backend import persist
from mlctl.state.document import GitInfo, ModelVersion, ResourceState, State, utcnow
from mlctl.workspace import Workspace


@dataclass
class AwaitedPromotion:
    """A stage change this plan makes, whose endpoints are deployed first (module contract):
    the version they roll out (``target``, once resolved), the endpoints now serving it, and
    those whose deploy failed."""

    target: int | None = None
    served: list[Desired] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class ExecutionResult(OutcomeAddresses):
    """What the executor did: one outcome per action, in the order carried out (plan order but
    for endpoints deployed ahead of their stage's promotion), and a diagnostic per
    failure (any error means the apply failed; the state holds what succeeded)."""

    outcomes: list[ActionOutcome] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    trained: list[tuple[str, int]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """The error diagnostics, one line each (``address: reason``)."""
        return [str(d) for d in self.diagnostics if d.severity == "error"]


def data_check_failure(
    state: State | None, datasets: Iterable[str], failed_now: Mapping[str, str] | None = None
) -> str | None:
    """Why work on ``datasets`` must wait, or None: the first of them whose data check failed
    in this run (``failed_now``: name -> what failed) or at its last check recorded in
    ``state``. The one gate between a failed data check and what reads the data (training,
    materialization)."""
    failed_now = failed_now or {}
    for name in datasets:
        if name in failed_now:
            return f"dataset.{name} failed ({failed_now[name]})"
        prev = state.resources.get(f"dataset.{name}") if state else None
        if prev is not None and prev.status and not prev.status.get("passed", True):
            failed = ", ".join(prev.status.get("failed", []))
            return f"dataset.{name} failed its last check ({failed})"
    return None


class Executor:
    """Applies one plan to one workspace's state. Create one per apply."""

    def __init__(
        self,
        workspace: Workspace,
        state: State,
        *,
        git: GitInfo,
        actor: str,
        listener: Listener = quiet,
    ) -> None:
        self.ws = workspace
        self.spec = workspace.spec
        self.env = workspace.spec.config
        self.state = state
        self.git = git
        self.actor = actor
        self.emit = listener
        self.desired: dict[str, Desired] = desired_resources(self.env, self.spec.placeholders)
        self.result = ExecutionResult()
        self.failed_datasets: dict[str, str] = {}
        self.failed_models: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self._store: ArtifactStore | None = None
        self.replace: set[str] = set()
        #: (model, stage) -> its promotion awaiting the endpoints that serve it
        self.awaiting: dict[tuple[str, str], AwaitedPromotion] = {}

    # -- plumbing ------------------------------------------------------------------------
    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = artifact_store(self.spec)
        return self._store

    def checkpoint(self) -> None:
        persist(self.ws.backend, self.state, git=self.git)

    def record(self, d: Desired, status: dict[str, Any] | None = None) -> ResourceState:
        prev = self.state.resources.get(d.address)
        resource = ResourceState(
            type=d.type,
            name=d.name,
            spec=d.spec,
            status=status if status is not None else (prev.status if prev else {}),
            depends_on=d.depends_on,
            updated_at=utcnow(),
        )
        self.state.resources[d.address] = resource
        return resource

    def fingerprint(self, dataset: str) -> str:
        if dataset not in self.fingerprints:
            from mlctl.providers.datasets import dataset_fingerprint

            found = dataset_fingerprint(self.spec, self.env.datasets[dataset])
            if found is None:
                shown = self.spec.display(f"datasets.{dataset}.path", self.env.datasets[dataset].path)
                raise MlctlError(f"dataset.{dataset}: {shown} not found")
            self.fingerprints[dataset] = found
        return self.fingerprints[dataset]

    # -- driver --------------------------------------------------------------------------
    def apply(self, plan: Plan) -> ExecutionResult:
        """Carry out ``plan``'s changes in order; see the module contract."""
        self.replace = set(plan.replace)
        for change in self.in_order(plan.resource_changes):
            started = time.perf_counter()
            address = change.address
            action = change.actions[-1] if change.actions else "update"
            self.emit(Event("start", address, action))
            try:
                message = self._apply_one(change)
            except MlctlError as exc:
                shown = exc.shown if isinstance(exc, ActionFailed) else str(exc)
                took = time.perf_counter() - started
                self.result.outcomes.append(ActionOutcome(address, action, Status.FAILED, shown, took))
                self.result.diagnostics.append(Diagnostic(str(exc), path=address))
                self.emit(Event("failed", address, action, shown, took))
                continue
            if isinstance(message, Skipped):
                self.result.outcomes.append(ActionOutcome(address, action, Status.SKIPPED, message.reason))
                self.emit(Event("skipped", address, action, message.reason))
                continue
            took = time.perf_counter() - started
            self.result.outcomes.append(ActionOutcome(address, action, Status.OK, message, took))
            self.emit(Event("done", address, action, message, took))
        self._mirror()
        return self.result

    def in_order(self, changes: list[ResourceChange]) -> list[ResourceChange]:
        """``changes`` in plan order, except that an endpoint serving a stage this plan
        promotes away from a version it holds now comes just before that stage's change (and
        the promotion is recorded in :attr:`awaiting`); see the module contract."""
        held: dict[tuple[str, str], str] = {}
        for change in changes:
            d = self.desired.get(change.address)
            if d is None or d.type != "stage" or "promote" not in change.actions:
                continue
            registry = self.state.models.get(d.name)
            if registry is not None and registry.stages.get(d.spec["stage"]) is not None:
                held[(d.name, d.spec["stage"])] = change.address
        ahead: dict[str, list[ResourceChange]] = {}
        for change in changes:
            d = self.desired.get(change.address)
            if d is None or d.type != "endpoint" or change.actions == ["delete"]:
                continue
            key = (d.spec["model"], d.spec["stage"])
            if key in held:
                ahead.setdefault(held[key], []).append(change)
                self.awaiting.setdefault(key, AwaitedPromotion())
        moved = {c.address for group in ahead.values() for c in group}
        ordered: list[ResourceChange] = []
        for change in changes:
            if change.address in moved:
                continue
            ordered.extend(ahead.get(change.address, []))
            ordered.append(change)
        return ordered

    def _mirror(self) -> None:
        """Bring the MLflow mirror (``providers.tracking``) in line with the state; a failure
        is one error diagnostic (the state stands; the next apply converges the mirror)."""
        if self.env.providers.tracking is None:
            return
        from mlctl.engine.mirror import sync

        started = time.perf_counter()
        self.emit(Event("start", "mirror.mlflow", "sync"))
        try:
            message = sync(self.spec, self.state, self.store).summary()
        except MlctlError as exc:
            took = time.perf_counter() - started
            self.result.outcomes.append(ActionOutcome("mirror.mlflow", "sync", Status.FAILED, str(exc), took))
            self.result.diagnostics.append(Diagnostic(str(exc), path="mirror.mlflow"))
            self.emit(Event("failed", "mirror.mlflow", "sync", str(exc), took))
            return
        took = time.perf_counter() - started
        self.result.outcomes.append(ActionOutcome("mirror.mlflow", "sync", Status.OK, message, took))
        self.emit(Event("done", "mirror.mlflow", "sync", message, took))

    def _apply_one(self, change: ResourceChange) -> str | Skipped:
        """The action's one-line result, or why it was skipped; MlctlError when it failed."""
        if change.type == "feature_view":
            return self.apply_feature_view(change)
        if change.actions == ["delete"]:
            return self.delete(change)
        d = self.desired[change.address]
        if d.type == "dataset":
            return self.apply_dataset(d, change)
        if d.type == "model_version":
            return self.apply_model_version(d, change)
        if d.type == "stage":
            return self.apply_stage(d)
        if d.type == "endpoint":
            return self.apply_endpoint(d)
        self.record(d)
        self.checkpoint()
        return "created" if "create" in change.actions else "updated"

    # -- feature views -------------------------------------------------------------------
    def apply_feature_view(self, change: ResourceChange) -> str:
        """Record the view; materialize it when planned; drop online records when it goes
        offline or away. The materialized windows live in the resource's status, which an
        apply that does not materialize this view carries over unchanged."""
        from mlctl.features import materialize

        prev = self.state.resources.get(change.address)
        status = dict(prev.status) if prev else {}
        if change.actions == ["delete"]:
            dropped = materialize.drop_view(self.spec, change.name) if status.get("online") else 0
            self.state.resources.pop(change.address, None)
            self.checkpoint()
            return f"destroyed ({dropped:,} online records dropped)" if dropped else "destroyed"
        d = self.desired[change.address]
        view = self.env.feature_views[d.name]
        if "materialize" not in change.actions:
            message = "created" if "create" in change.actions else "updated"
            if not view.online and status.get("online"):
                dropped = materialize.drop_view(self.spec, d.name)
                status = {}
                message += f", {dropped:,} online records dropped"
            self.record(d, status)
            self.checkpoint()
            return message
        blocked = self._blocked_by_data(d)
        if blocked:
            raise MlctlError(f"materialization skipped: {blocked}")
        rebuild = "rebuild requested (--replace)" if change.address in self.replace else None
        result = materialize.materialize_view(
            self.spec,
            d.name,
            status,
            rebuild=rebuild,
            fingerprint=self.fingerprint(view.source),
        )
        self.record(d, result.status)
        self.checkpoint()
        return result.summary()

    # -- datasets ------------------------------------------------------------------------
    def apply_dataset(self, d: Desired, change: ResourceChange) -> str:
        if "check" not in change.actions:
            self.record(d)
            self.checkpoint()
            return "updated"
        from mlctl.ml.datachecks import run_checks
        from mlctl.ml.tables import read_table

        dataset = self.env.datasets[d.name]
        fingerprint = self.fingerprint(d.name)
        frame = read_table(
            dataset_path(self.spec, dataset),
            dataset.file_format,
            dataset.schema_ or None,
            dataset.timestamp,
        )
        results = run_checks(frame, dataset)
        failed = [r for r in results if not r.passed]
        status = {
            "fingerprint": fingerprint,
            "rows": len(frame),
            "passed": not failed,
            "failed": [r.name for r in failed],
            "checks": [r.to_dict() for r in results],
            "checked_at": utcnow(),
        }
        self.record(d, status)
        self.checkpoint()
        if failed:
            text = "; ".join(f"check {r.name} failed: {r.detail}" for r in failed)
            self.failed_datasets[d.name] = text
            raise ActionFailed(text)
        return f"{len(frame):,} rows, {len(results)} checks passed"

    # -- model versions ------------------------------------------------------------------
    def _blocked_by_data(self, d: Desired) -> str | None:
        datasets = [dep.split(".", 1)[1] for dep in d.depends_on if dep.startswith("dataset.")]
        return data_check_failure(self.state, datasets, self.failed_datasets)

    def _production_metrics(self, name: str) -> dict[str, float] | None:
        registry = self.state.models.get(name)
        if registry is None or registry.stages.get("production") is None:
            return None
        holder = registry.get(registry.stages["production"] or 0)
        return holder.metrics if holder else None

    def _data_rows(self, datasets: list[str]) -> dict[str, int]:
        """Rows of each dataset a version is trained on (what ``min_new_rows`` counts from)."""
        rows = {}
        for name in datasets:
            dataset = self.env.datasets[name]
            if dataset.path.startswith("s3://"):
                continue
            count = count_rows(dataset_path(self.spec, dataset), dataset.file_format)
            if count is not None:
                rows[name] = count
        return rows

    def apply_model_version(self, d: Desired, change: ResourceChange) -> str:
        name = d.name
        blocked = self._blocked_by_data(d)
        if blocked:
            self.failed_models[name] = blocked
            raise MlctlError(f"training skipped: {blocked}")
        datasets = [a.split(".", 1)[1] for a in d.depends_on if a.startswith("dataset.")]
        data = {ds: self.fingerprint(ds) for ds in datasets}
        registry = self.state.registry(name)
        sweep_cleared(registry)
        due = due_triggers(self.env.models[name], registry)
        identity = candidate_identity(version_identity(d.spec, dict(data)), d.spec, data, registry, due)
        assert identity is not None
        existing = registry.by_identity(identity)
        replacing = change.address in self.replace
        if existing is not None and not replacing and "train" in change.actions:
            health = self.store.health(existing.artifact) if existing.artifact else "missing"
            replacing = health != "ok"
        if existing is not None and not replacing:
            self.record(d, {"identity": identity, "version": existing.version})
            self.checkpoint()
            return f"reuses v{existing.version} (no training)"

        from mlctl.engine.candidates import CandidateRequest, obtain

        def progress(message: str) -> None:
            self.emit(Event("info", d.address, "train", message))

        # reused from the candidate store, else trained by a k8s Job or here
        candidate = obtain(
            CandidateRequest(
                spec=self.spec,
                model=name,
                identity=identity,
                store=self.store,
                training=d.spec,
                data=data,
                production_metrics=self._production_metrics(name),
                git=self.git,
                actor=self.actor,
                replace=change.address in self.replace,
                progress=progress,
            )
        )
        record = ModelVersion(
            version=existing.version if existing else registry.next_version,
            identity=identity,
            status="passed" if candidate.passed else "rejected",
            metrics=candidate.metrics,
            gates=candidate.gates,
            artifact=candidate.artifact,
            mlflow_model=candidate.mlflow_model,
            compiled=candidate.compiled,
            run_id=candidate.run_id,
            training=d.spec,
            data=data,
            data_rows=self._data_rows(datasets),
            git_commit=self.git.commit,
            created_by=self.actor,
        )
        if existing is not None:
            record.stage = existing.stage
            registry.versions[registry.versions.index(existing)] = record
        else:
            registry.versions.append(record)
            registry.next_version += 1
        if due:
            mark_trained(registry, due, record.version, self.actor)
        self.record(d, {"identity": identity, "version": record.version})
        self.checkpoint()
        self.result.trained.append((name, record.version))
        summary = _metric_summary(candidate.metrics)
        if candidate.provenance:  # which path produced the bytes: this apply, or a Job it sealed
            summary = f"{summary}; {candidate.provenance}" if summary else candidate.provenance
        if not candidate.passed:
            failed = "; ".join(
                f"gate {g.gate}: {g.metric} {'n/a' if g.value is None else f'{g.value:.4f}'} "
                f"not {g.op} {g.threshold:g}"
                for g in candidate.gates
                if not g.passed
            )
            reason = f"{name} v{record.version} rejected by its gates ({failed})"
            self.failed_models[name] = reason
            measured = f" ({candidate.provenance})" if candidate.provenance else ""
            raise ActionFailed(reason, shown=f"v{record.version} rejected: {failed}{measured}")
        return f"registered v{record.version} ({summary})"

    # -- stages --------------------------------------------------------------------------
    def stage_target(self, name: str, stage: str) -> int | None:
        """The version ``stage`` of model ``name`` moves to in this apply, checked: it resolves
        from the pins, and its artifact exists and verifies. MlctlError saying why not."""
        model = self.env.models[name]
        registry = self.state.registry(name)
        mv = self.state.resources.get(f"model_version.{name}")
        identity = mv.status.get("identity") if mv else None
        candidate = registry.by_identity(identity) if identity else None
        target = resolve(name, model, registry, candidate, False)[stage]
        if target.error:
            raise MlctlError(target.error)
        if target.version is not None:
            version = registry.get(target.version)
            if version is None or version.artifact is None:
                raise MlctlError(f"v{target.version} of {name} has no artifact")
            health = self.store.health(version.artifact, deep=True)
            if health != "ok":
                raise MlctlError(
                    f"refusing to promote v{target.version}: artifact {version.artifact.uri} is {health}"
                )
        return target.version

    def apply_stage(self, d: Desired) -> str | Skipped:
        name = d.name
        stage = d.spec["stage"]
        if name in self.failed_models:
            return Skipped(f"stays: {self.failed_models[name]}")
        model = self.env.models[name]
        registry = self.state.registry(name)
        awaited = self.awaiting.get((name, stage))
        if awaited is not None and awaited.failed:
            current = registry.stages.get(stage)
            back = self._put_back(awaited.served, current)
            failed = ", ".join(awaited.failed)
            return Skipped(f"{stage} stays at v{current}: {failed} did not roll out v{awaited.target}{back}")
        number = self.stage_target(name, stage)
        if number is not None:
            version = registry.get(number)
            assert version is not None  # stage_target checked
            if version.status != "passed":
                # Rejected under earlier gates, passes the current ones (resolve checked).
                version.gates = gate_results(model, version, registry)
                version.status = "passed"
        event = move_stage(
            registry,
            stage,
            number,
            action="promote" if number is not None else "clear",
            actor=self.actor,
            reason=f"apply: {stage}: {d.spec['pin']}",
            commit=self.git.commit,
        )
        self.record(d, {"version": registry.stages.get(stage)})
        self.checkpoint()
        if event is None:
            return f"{stage} stays at v{number}" if number else f"{stage} empty"
        old = f"v{event.from_version}" if event.from_version else "none"
        new = f"v{event.to_version}" if event.to_version else "none"
        return f"{stage}: {old} -> {new}"

    # -- endpoints -----------------------------------------------------------------------
    def _ahead_target(self, awaited: AwaitedPromotion | None, model: str, stage: str) -> int | None:
        """The version an endpoint deployed ahead of its stage's promotion rolls out, or None
        when the stage will not move (its model failed, or its target does not check out:
        the stage's own action reports why, and the endpoint serves what the stage holds)."""
        if awaited is None or model in self.failed_models:
            return None
        if awaited.target is None:
            try:
                awaited.target = self.stage_target(model, stage)
            except MlctlError:
                return None
        return awaited.target

    def apply_endpoint(self, d: Desired) -> str:
        endpoint = self.env.endpoints[d.name]
        registry = self.state.models.get(endpoint.model)
        current = registry.stages.get(endpoint.stage) if registry else None
        awaited = self.awaiting.get((endpoint.model, endpoint.stage))
        target = self._ahead_target(awaited, endpoint.model, endpoint.stage)
        ahead = awaited is not None and target is not None and target != current
        number = target if ahead else current
        if number is None:
            self.record(d, {"version": None})
            self.checkpoint()
            return f"no {endpoint.stage} version of {endpoint.model} to serve yet"
        try:
            self._deploy(d, number, verify=not ahead)
        except MlctlError as exc:
            self._record_failed_deploy(d, number, str(exc))
            if not ahead:
                raise
            assert awaited is not None
            awaited.failed.append(d.address)
            raise ActionFailed(f"{exc}; {endpoint.stage} stays at v{current}") from None
        if ahead:
            assert awaited is not None
            awaited.served.append(d)
        return f"serves {endpoint.model} v{number}"

    def _deploy(self, d: Desired, number: int, *, verify: bool = True) -> dict[str, Any]:
        """Deploy endpoint ``d`` with version ``number`` and record it; its status. ``verify``:
        check the artifact's bytes first (:meth:`stage_target` already did for a promotion)."""
        endpoint = self.env.endpoints[d.name]
        version = self.state.registry(endpoint.model).get(number)
        if version is None or version.artifact is None:
            raise MlctlError(f"v{number} of {endpoint.model} has no artifact")
        if verify:
            health = self.store.health(version.artifact, deep=True)
            if health != "ok":
                raise MlctlError(f"refusing to deploy v{number}: artifact {version.artifact.uri} is {health}")
        status = serving(self.spec, endpoint.provider).deploy(
            d.name, endpoint.model, number, version.artifact
        )
        status["stage"] = endpoint.stage
        status["deployed_at"] = utcnow()
        self.record(d, status)
        self.checkpoint()
        return status

    def _record_failed_deploy(self, d: Desired, number: int, reason: str) -> None:
        """Keep what the endpoint serves in its state and note the failed deploy beside it (a
        new endpoint has nothing recorded, so the next plan creates it again)."""
        prev = self.state.resources.get(d.address)
        if prev is None:
            return
        failure = {
            "version": number,
            "reason": reason,
            "at": utcnow(),
            "by": self.actor,
            "commit": self.git.commit,
        }
        prev.status = {**prev.status, "failed_deploy": failure}
        self.checkpoint()

    def _put_back(self, served: list[Desired], number: int | None) -> str:
        """Deploy ``number`` again to the endpoints that already rolled out a promotion that
        will not happen; the note for the stage's line (empty when there were none)."""
        if not served or number is None:
            return ""
        notes = []
        for d in served:
            try:
                self._deploy(d, number)
            except MlctlError as exc:
                notes.append(f"{d.address} not put back: {exc}")
                continue
            notes.append(f"{d.address} put back to v{number}")
        return f" ({'; '.join(notes)})"

    # -- deletes -------------------------------------------------------------------------
    def delete(self, change: ResourceChange) -> str:
        prev = self.state.resources.get(change.address)
        if prev is None:
            return "already gone"
        if prev.type == "endpoint":
            serving(self.spec, prev.spec.get("provider", "local")).undeploy(prev.name)
        if prev.type == "stage":
            registry = self.state.models.get(prev.name)
            if registry is not None:
                move_stage(
                    registry,
                    prev.spec.get("stage", ""),
                    None,
                    action="clear",
                    actor=self.actor,
                    reason="model removed from the configuration",
                    commit=self.git.commit,
                )
        del self.state.resources[change.address]
        self.checkpoint()
        return "destroyed"


def _metric_summary(metrics: dict[str, float]) -> str:
    keys = ("auc", "accuracy", "f1", "r2", "rmse", "latency_p95_ms")
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)
