"""Make a Plan: the desired state diffed against state, after an optional refresh.

Contract: :func:`make_plan` never trains, never writes state, never imports or runs code named
by the YAML, and imports no pandas or scikit-learn. Its cost grows linearly with the number of
resources (unchanged resources cost one dict comparison). Configuration that cannot be planned
(missing data, a pin naming an unknown version) raises :class:`~mlctl.errors.ConfigError`
carrying one :class:`~mlctl.errors.Diagnostic` (file:line) per problem, all of them at once.
What plans but deserves a word (a retrain held for new rows, a rolled-back pin, a damaged
artifact, a stage left behind) becomes a warning diagnostic in ``Plan.warnings``, carrying the
resource's address; its text is the line the plan prints after ``Warning:``.
Rows of datasets, like fingerprints and artifact health, come through the :class:`Reality`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from mlctl import __version__
from mlctl.errors import ConfigError, Diagnostic, MlctlError
from mlctl.ml.gates import describe_gates
from mlctl.plan.diff import describe, short
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.plan.refresh import MirrorReality, Reality
from mlctl.plan.resources import Desired, desired_resources, sort_key
from mlctl.plan.stage_targets import StageTarget, resolve
from mlctl.plan.triggers import (
    Due,
    candidate_identity,
    counts_new_rows,
    due_triggers,
    new_data_hold,
)
from mlctl.plan.triggers import train_reason as trigger_reason
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.views import canonical_hash, schema_hash, view_schema
from mlctl.state.document import ModelRegistry, ResourceState, State, utcnow


def version_identity(inputs: dict[str, Any], data: dict[str, str | None]) -> str | None:
    """Identity of a model version: hash of its training inputs and data fingerprints.

    None when a fingerprint is unknown (data never seen and refresh disabled).
    """
    if any(v is None for v in data.values()):
        return None
    return canonical_hash({"inputs": inputs, "data": data})


def _located(spec: EnvSpec, key: str, summary: str, *, address: str = "") -> Diagnostic:
    """A problem with the node at ``key`` (or its nearest ancestor) of the YAML, about the
    resource at ``address`` when given."""
    file, line = spec.locate(key)
    return Diagnostic(summary=summary, path=address, file=file, line=line, address=address or None)


def _warning(summary: str, address: str | None = None, *, path: str = "") -> Diagnostic:
    """A warning about the resource at ``address`` (``path`` defaults to none, so the text is
    ``summary`` alone; pass ``path=address`` to prefix it with ``address: ``)."""
    return Diagnostic(summary=summary, path=path, severity="warning", address=address or path or None)


class _Planner:
    def __init__(
        self,
        spec: EnvSpec,
        state: State,
        reality: Reality | None,
        replace: set[str],
    ) -> None:
        self.spec = spec
        self.env = spec.config
        self.state = state
        self.reality = reality
        # checked once: isinstance against a runtime-checkable Protocol costs ~25 us a call
        self.mirror = reality if isinstance(reality, MirrorReality) else None
        self.replace = replace
        self.changes: list[ResourceChange] = []
        self.drift: list[ResourceChange] = []
        self.warnings: list[Diagnostic] = []
        self.errors: list[Diagnostic] = []
        self.fingerprints: dict[str, str | None] = {}
        self.stage_targets: dict[str, dict[str, StageTarget]] = {}

    # -- helpers -------------------------------------------------------------------------
    def change(self, d: Desired | ResourceState, address: str, actions: list[str], **kw: Any) -> None:
        self.changes.append(ResourceChange(address=address, type=d.type, name=d.name, actions=actions, **kw))

    def registry(self, model: str) -> ModelRegistry:
        return self.state.models.get(model) or ModelRegistry()

    # -- refresh -------------------------------------------------------------------------
    def refresh_datasets(self) -> None:
        for name, dataset in self.env.datasets.items():
            prev = self.state.resources.get(f"dataset.{name}")
            recorded = prev.status.get("fingerprint") if prev else None
            if self.reality is None:
                self.fingerprints[name] = recorded
                continue
            found = self.reality.dataset_fingerprint(name, dataset)
            if found is None:
                shown = self.spec.display(f"datasets.{name}.path", dataset.path)
                self.errors.append(
                    _located(
                        self.spec, f"datasets.{name}.path", f"{shown} not found", address=f"dataset.{name}"
                    )
                )
            elif recorded and found != recorded:
                shown_path = self.spec.display(f"datasets.{name}.path", dataset.path)
                self.drift.append(
                    ResourceChange(
                        address=f"dataset.{name}",
                        type="dataset",
                        name=name,
                        actions=["update"],
                        before={"fingerprint": recorded},
                        after={"fingerprint": found},
                        reason=f"the data at {shown_path} changed since the last apply",
                    )
                )
            self.fingerprints[name] = found

    # -- per type ------------------------------------------------------------------------
    def plan_config(self, d: Desired) -> None:
        """Resources whose whole truth is their spec (entity, feature_view, model, monitor)."""
        prev = self.state.resources.get(d.address)
        if prev is None:
            self.change(d, d.address, ["create"], after=d.spec, reason=f"new {d.type}")
        elif prev.spec != d.spec or d.address in self.replace:
            actions = ["delete", "create"] if d.address in self.replace else ["update"]
            self.change(
                d,
                d.address,
                actions,
                before=prev.spec,
                after=d.spec,
                details=describe(prev.spec, d.spec),
                reason="replacement requested" if d.address in self.replace else "",
            )

    def plan_dataset(self, d: Desired) -> None:
        prev = self.state.resources.get(d.address)
        fingerprint = self.fingerprints.get(d.name)
        after = {**d.spec, "fingerprint": fingerprint or UNKNOWN}
        if prev is None:
            self.change(
                d,
                d.address,
                ["create", "check"],
                after=after,
                reason="new dataset",
                details=[f"path: {d.spec['path']}"],
            )
            return
        actions: list[str] = []
        reasons: list[str] = []
        details: list[str] = []
        if prev.spec != d.spec:
            actions.append("update")
            details = describe(prev.spec, d.spec)
            reasons.append("spec changed")
        checked = prev.status.get("fingerprint")
        if d.address in self.replace:
            reasons.append("re-check requested")
        elif fingerprint is not None and checked != fingerprint:
            reasons.append("data changed")
        elif not prev.status.get("passed", False):
            failed = prev.status.get("failed", [])
            reasons.append(f"last check failed ({', '.join(failed)})" if failed else "not checked")
        if reasons:
            actions.append("check")
            self.change(
                d,
                d.address,
                actions,
                before={**prev.spec, "fingerprint": checked},
                after=after,
                reason="; ".join(reasons),
                details=details,
            )

    def plan_model_version(self, d: Desired) -> None:
        name = d.name
        model = self.env.models[name]
        registry = self.registry(name)
        datasets = [a.split(".", 1)[1] for a in d.depends_on if a.startswith("dataset.")]
        data = {ds: self.fingerprints.get(ds) for ds in datasets}
        due = due_triggers(model, registry)
        identity = candidate_identity(version_identity(d.spec, data), d.spec, data, registry, due)
        candidate = registry.by_identity(identity) if identity else None
        prev = self.state.resources.get(d.address)
        prev_identity = prev.status.get("identity") if prev else None
        previous = registry.by_identity(prev_identity) if prev_identity else None

        train_reason = ""
        if d.address in self.replace:
            train_reason = "replacement requested (--replace)"
        elif candidate is None:
            hold = None if due else new_data_hold(model, previous, d.spec, data, self._rows(model, data))
            if hold and previous is not None:
                self.warnings.append(_warning(hold, path=d.address))
                candidate = previous
            else:
                train_reason = self._train_reason(name, d.spec, data, previous, due)
        elif candidate.artifact is not None and self.reality is not None:
            health = self.reality.artifact_health(candidate.artifact)
            if health != "ok":
                train_reason = f"artifact of v{candidate.version} is {health} ({candidate.artifact.uri})"
                self.drift.append(
                    ResourceChange(
                        address=d.address,
                        type="model_version",
                        name=name,
                        actions=["update"],
                        before={"version": candidate.version, "sha256": candidate.artifact.sha256},
                        after={"version": candidate.version, "artifact": health},
                        reason=f"artifact {candidate.artifact.uri} is {health}: "
                        + ("sha256 no longer matches state" if health == "tampered" else "not found"),
                    )
                )
        pending = bool(train_reason)
        self.stage_targets[name] = resolve(name, model, registry, None if pending else candidate, pending)
        for version in registry.versions:
            if version.stage in ("staging", "production") and version is not candidate:
                self._check_artifact(d, version.version, version.artifact)

        if pending:
            details = [f"estimator: {model.training.estimator}"]
            if previous is not None and d.address not in self.replace:
                details += describe(previous.training, d.spec)
            gates = describe_gates(model.gates, model.training.task)
            if gates:
                details.append("gates: " + ", ".join(gates))
            self.change(
                d,
                d.address,
                ["train"],
                before={"version": previous.version, "identity": previous.identity} if previous else None,
                after={"identity": identity or UNKNOWN, "version": UNKNOWN, "metrics": UNKNOWN},
                after_unknown=["version", "metrics"],
                reason=train_reason,
                details=details,
            )
        elif candidate is not None and candidate.identity != prev_identity:
            self.change(
                d,
                d.address,
                ["update"],
                before={"version": previous.version} if previous else None,
                after={"version": candidate.version, "identity": candidate.identity},
                reason=f"the spec and data match v{candidate.version} (trained {candidate.created_at}); "
                "reused, no training",
            )

    def _rows(self, model: Any, datasets: Iterable[str]) -> dict[str, int | None]:
        """Rows now of ``datasets`` when ``retrain.on: [new_data]`` counts them (None: unknown)."""
        if not counts_new_rows(model) or self.reality is None:
            return {}
        return {name: self.reality.dataset_rows(name, self.env.datasets[name]) for name in datasets}

    def _check_artifact(self, d: Desired, number: int, artifact: Any) -> None:
        if artifact is None or self.reality is None:
            return
        health = self.reality.artifact_health(artifact)
        if health != "ok":
            self.drift.append(
                ResourceChange(
                    address=d.address,
                    type="model_version",
                    name=d.name,
                    actions=["update"],
                    before={"version": number, "sha256": artifact.sha256},
                    after={"version": number, "artifact": health},
                    reason=f"artifact of v{number} ({artifact.uri}) is {health}",
                )
            )
            self.warnings.append(
                _warning(
                    f"{d.name} v{number} artifact is {health}: apply will refuse to deploy it", d.address
                )
            )

    def _train_reason(
        self,
        name: str,
        inputs: dict[str, Any],
        data: dict[str, str | None],
        previous: Any,
        due: list[Due] = [],  # noqa: B006 - read only
    ) -> str:
        if previous is None:
            return f"no version of {name} matches the training spec and data yet"
        parts = []
        if previous.training != inputs:
            parts.append("training spec changed")
        changed = sorted(k for k, v in data.items() if previous.data.get(k) != v)
        if changed:
            parts.append("data changed: " + ", ".join(changed))
        if due:
            parts.append(trigger_reason(due))
        return "; ".join(parts) or "new training inputs"

    def plan_stage(self, d: Desired) -> None:
        stage = d.spec["stage"]
        target = self.stage_targets[d.name][stage]
        registry = self.registry(d.name)
        current = registry.stages.get(stage)
        if target.error:
            located = _located(self.spec, f"models.{d.name}.stages.{stage}", target.error)
            self.errors.append(dataclasses.replace(located, address=d.address))
            return
        if target.warning:
            self.warnings.append(_warning(target.warning, d.address))
        if target.blocked:
            self.warnings.append(_warning(f"{d.address} stays at {_v(current)}: {target.blocked}", d.address))
        model = self.env.models[d.name]
        moved = self._alias_drift(d, stage, current)
        if target.pending:
            gates = describe_gates(model.gates, model.training.task)
            self.change(
                d,
                d.address,
                ["promote"],
                before={"version": current},
                after={"version": UNKNOWN},
                after_unknown=["version"],
                reason=f"{stage} moves to the new version if it passes its gates",
                details=(["gated by: " + ", ".join(gates)] if gates else [])
                + ([f"v{current} leaves {stage}"] if current else []),
            )
        elif target.version != current:
            actions = ["promote"] if target.version is not None else ["archive"]
            pin = d.spec["pin"]
            self.change(
                d,
                d.address,
                actions,
                before={"version": current},
                after={"version": target.version},
                reason=f"{stage}: {pin}"
                + (f" resolves to v{target.version}" if isinstance(pin, str) else ""),
                details=[f"v{current} leaves {stage}"] if current else [],
            )
        elif moved:
            self.change(
                d,
                d.address,
                ["update"],
                before={"mirror_alias": moved},
                after={"version": current},
                reason=f"apply moves the MLflow alias {stage} back to v{current}"
                if current is not None
                else f"apply removes the MLflow alias {stage}",
            )

    def _alias_drift(self, d: Desired, stage: str, current: int | None) -> str | None:
        """What the mirror's ``stage`` alias shows when it disagrees with state (recorded as
        drift), else None."""
        if self.mirror is None:
            return None
        aliases = self.mirror.registry_aliases(d.name)
        if aliases is None:
            return None
        found = aliases.get(stage)
        if found == current:
            return None
        shown = "none" if found is None else (f"v{found}" if isinstance(found, int) else str(found))
        self.drift.append(
            ResourceChange(
                address=d.address,
                type="stage",
                name=d.name,
                actions=["update"],
                before={"version": current},
                after={"mirror_alias": shown},
                reason=f"the MLflow alias {d.name}@{stage} points at {shown}, not v{current} as state records"
                if current is not None
                else f"the MLflow alias {d.name}@{stage} points at {shown}; state has no {stage} version",
            )
        )
        return shown

    def plan_endpoint(self, d: Desired) -> None:
        prev = self.state.resources.get(d.address)
        target = self.stage_targets.get(d.spec["model"], {}).get(d.spec["stage"])
        want: Any = UNKNOWN if target and target.pending else (target.version if target else None)
        had = prev.status.get("version") if prev else None
        actions: list[str] = []
        details: list[str] = []
        reasons: list[str] = []
        if prev is None:
            actions.append("create")
            reasons.append("new endpoint")
        elif prev.spec != d.spec:
            actions.append("update")
            details = describe(prev.spec, d.spec)
        if prev is not None and self.reality is not None:
            live = self.reality.endpoint_live(d.name, self.env.endpoints[d.name])
            if live is not None and live.get("version") != had:
                self.drift.append(
                    ResourceChange(
                        address=d.address,
                        type="endpoint",
                        name=d.name,
                        actions=["update"],
                        before={"version": had},
                        after={"version": live.get("version")},
                        reason="the live endpoint serves another version than state records",
                    )
                )
                had = live.get("version")
        if want != had or d.address in self.replace:
            if want is None:
                reasons.append(f"no {d.spec['stage']} version of {d.spec['model']} to serve yet")
            else:
                actions.append("deploy")
                reasons.append(f"serve {d.spec['model']} {d.spec['stage']} {_v(want)}")
                failed = prev.status.get("failed_deploy") if prev else None
                if isinstance(failed, dict) and failed.get("version") == want:
                    when, why = failed.get("at"), failed.get("reason")
                    reasons.append(f"retry: its last deploy failed at {when}: {why}")
        manifest_diff = self.manifest_diff(d, prev, want)
        if manifest_diff:
            if not actions:
                actions.append("update")
                reasons.append("its rendered Kubernetes manifests changed")
            details = [*details, "manifests (last applied -> planned):", *manifest_diff]
        if actions:
            self.change(
                d,
                d.address,
                actions,
                before={**prev.spec, "version": had} if prev else None,
                after={**d.spec, "version": want},
                after_unknown=["version"] if want == UNKNOWN else [],
                reason="; ".join(reasons),
                details=details,
            )

    def manifest_diff(self, d: Desired, prev: ResourceState | None, want: Any) -> list[str]:
        """Unified diff of the Kubernetes manifests last applied for endpoint ``d`` (kept in
        its state status) against those the desired state renders now; [] when the endpoint
        is not on a k8s provider, has nothing to serve, or renders the same bytes."""
        import difflib

        from mlctl.state.document import Artifact

        if self.reality is None or want is None:
            return []
        artifact: Artifact | None = None
        if want != UNKNOWN:
            version = self.registry(d.spec["model"]).get(want)
            artifact = version.artifact if version is not None else None
        if artifact is None:
            artifact = Artifact(uri=UNKNOWN, sha256=UNKNOWN, size=0)
        planned = self.reality.endpoint_manifests(d.name, self.env.endpoints[d.name], want, artifact)
        if planned is None:
            return []
        status = prev.status if prev is not None else {}
        applied = status.get("manifests") if status.get("provider") == "k8s" else None
        before = applied if isinstance(applied, str) else ""
        if before == planned:
            return []
        return list(
            difflib.unified_diff(
                before.splitlines(),
                planned.splitlines(),
                fromfile=f"{d.address} (last applied)" if before else "/dev/null",
                tofile=f"{d.address} (planned)",
                lineterm="",
            )
        )

    def plan_feature_view(self, d: Desired) -> None:
        """Config diff plus materialization of online views (see mlctl.features.materialize)."""
        prev = self.state.resources.get(d.address)
        view = self.env.feature_views[d.name]
        status = prev.status if prev else {}
        actions: list[str] = []
        reasons: list[str] = []
        details: list[str] = []
        if prev is None:
            actions.append("create")
            reasons.append("new feature view")
        elif prev.spec != d.spec or d.address in self.replace:
            actions.append("update")
            details = describe(prev.spec, d.spec)
        materialized = bool(status.get("online"))
        watermark = status.get("watermark") if materialized else None
        rebuild = ""
        if view.online:
            schema = schema_hash(view_schema(self.env, d.name))
            fingerprint = self.fingerprints.get(view.source)
            due = status.get("next_event_ns")
            why = ""
            if d.address in self.replace:
                rebuild = "rebuild requested (--replace)"
            elif not materialized:
                rebuild = "first materialization"
            elif status.get("schema") != schema:
                rebuild = "schema changed: the online view is rebuilt"
            if rebuild:
                why = rebuild
            elif fingerprint is not None and fingerprint != status.get("fingerprint"):
                why = f"source {view.source} changed"
            elif due is not None and due <= time.time_ns():
                why = f"events from {status.get('next_event')} are now due"
            if why:
                reasons.append(why)
                actions.append("materialize")
                start = "beginning" if rebuild or watermark is None else watermark
                details.append(f"window: ({start}, latest event at apply time] of {view.source}")
                if not rebuild:
                    details.append("incremental: rows at or before the watermark are not written again")
        elif materialized:
            reasons.append("online: false drops its online records")
            if "update" not in actions:
                actions.append("update")
        if not actions:
            return
        after: dict[str, Any] = {**d.spec}
        unknown: list[str] = []
        if "materialize" in actions:
            after["window"] = {"start": None if rebuild else watermark, "end": UNKNOWN}
            unknown = ["window"]
        self.change(
            d,
            d.address,
            actions,
            before={**prev.spec, "watermark": watermark} if prev else None,
            after=after,
            after_unknown=unknown,
            reason="; ".join(reasons),
            details=details,
        )

    def plan_feature_view_delete(self, address: str, prev: ResourceState) -> None:
        """Refuse to delete a view that a model of the environment still uses."""
        users: list[str] = []
        for name, model in self.env.models.items():
            if any(ref.split(":", 1)[0] == prev.name for ref in model.training.features):
                users.append(f"model {name} (training.features)")
        for name, registry in self.state.models.items():
            for version in registry.versions:
                views = (version.training or {}).get("views", {})
                if prev.name in views and version.stage in ("staging", "production"):
                    users.append(f"{name} v{version.version} ({version.stage})")
        if users:
            self.errors.append(
                Diagnostic(
                    f"cannot delete {address}: still used by {', '.join(users)}; "
                    "move those stages to versions that do not read it first",
                    address=address,
                )
            )
            return
        reason = "removed from the configuration"
        if prev.status.get("online"):
            reason += f"; its {prev.status.get('entities', 0):,} online records are dropped"
        self.change(prev, address, ["delete"], before=prev.spec, reason=reason)

    def plan_delete(self, address: str, prev: ResourceState) -> None:
        reason = "removed from the configuration"
        if prev.type == "model_version":
            reason += f"; versions of {prev.name} stay in the registry"
        self.change(prev, address, ["delete"], before=prev.spec, reason=reason)

    # -- driver --------------------------------------------------------------------------
    def run(self, desired: dict[str, Desired]) -> None:
        self.refresh_datasets()
        for address in sorted(set(self.state.resources) - set(desired), key=sort_key, reverse=True):
            if self.state.resources[address].type == "feature_view":
                self.plan_feature_view_delete(address, self.state.resources[address])
                continue
            self.plan_delete(address, self.state.resources[address])
        for d in desired.values():
            if d.type == "feature_view":
                self.plan_feature_view(d)
            elif d.type == "dataset":
                self.plan_dataset(d)
            elif d.type == "model_version":
                self.plan_model_version(d)
            elif d.type == "stage":
                self.plan_stage(d)
            elif d.type == "endpoint":
                self.plan_endpoint(d)
            else:
                self.plan_config(d)


def _v(version: Any) -> str:
    if version is None:
        return "none"
    return f"v{version}" if isinstance(version, int) else str(version)


def _closure(targets: Iterable[str], desired: dict[str, Desired]) -> set[str]:
    """Targets plus everything they depend on (Terraform's -target semantics)."""
    out: set[str] = set()
    stack = list(targets)
    while stack:
        address = stack.pop()
        if address in out:
            continue
        out.add(address)
        if address in desired:
            stack.extend(desired[address].depends_on)
    return out


def make_plan(
    spec: EnvSpec,
    state: State | None,
    reality: Reality | None,
    *,
    targets: Iterable[str] = (),
    replace: Iterable[str] = (),
) -> Plan:
    """Diff ``spec`` against ``state`` (refreshed through ``reality`` unless it is None)."""
    targets = list(targets)
    replace = list(replace)
    desired = desired_resources(spec.config, spec.placeholders)
    known = set(desired) | set(state.resources if state else ())
    for address in targets + replace:
        if address not in known:
            raise MlctlError(f"no resource at address {address!r} (try: mlctl state list)")
    stored = state is not None
    planner = _Planner(spec, state or State(environment=spec.name), reality, set(replace))
    planner.run(desired)
    if planner.errors:
        raise ConfigError(planner.errors)
    changes = planner.changes
    if targets:
        keep = _closure(targets, desired)
        changes = [c for c in changes if c.address in keep]
    return Plan(
        mlctl_version=__version__,
        environment=spec.name,
        created_at=utcnow(),
        lineage=state.lineage if stored and state else None,
        serial=state.serial if stored and state else 0,
        spec_digest=spec.digest,
        data=planner.fingerprints,
        refresh=reality is not None,
        targets=targets,
        replace=replace,
        resource_changes=changes,
        drift=planner.drift,
        warnings=planner.warnings,
    )


__all__ = ["make_plan", "short", "version_identity"]
