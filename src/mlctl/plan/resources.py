"""The desired resources of an environment, as addresses with normalized specs.

Addresses: ``dataset.N``, ``entity.N``, ``feature_view.N``, ``model.N``,
``model_version.N``, ``stage.N.staging``, ``stage.N.production``, ``endpoint.N``,
``monitor.N``. :func:`desired_resources` returns them in an order where every resource comes
after what it depends on (types are layered, so ordering by type then name is topological and
costs O(n log n)). Normalized specs include defaults, so writing a default explicitly is not a
change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlctl.spec.models import Environment, Model

TYPE_ORDER = (
    "dataset",
    "entity",
    "feature_view",
    "model",
    "model_version",
    "stage",
    "endpoint",
    "monitor",
)
STAGES = ("staging", "production")


@dataclass
class Desired:
    """One resource the desired state asks for."""

    address: str
    type: str
    name: str
    spec: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)


def dump(model: Any) -> dict[str, Any]:
    """The normalized JSON form of a spec node (aliases, defaults included, None dropped)."""
    return dict(model.model_dump(mode="json", by_alias=True, exclude_none=True))


def address_type(address: str) -> str:
    """The resource type of an address (``stage.m.production`` -> ``stage``)."""
    return address.split(".", 1)[0]


def sort_key(address: str) -> tuple[int, str, int]:
    """Dependency order: by type layer, then by name (staging before production)."""
    kind, _, rest = address.partition(".")
    rank = TYPE_ORDER.index(kind) if kind in TYPE_ORDER else len(TYPE_ORDER)
    if kind == "stage":
        name, _, stage = rest.rpartition(".")
        return rank, name, STAGES.index(stage) if stage in STAGES else len(STAGES)
    return rank, rest, 0


def model_config_spec(model: Model) -> dict[str, Any]:
    """What ``model.N`` holds: everything but the training spec (gates, pins, serving...)."""
    spec = dump(model)
    spec.pop("training", None)
    return spec


#: Installed distributions whose version changes the trained bytes (read with
#: importlib.metadata, so a plan imports none of them).
TOOLCHAIN = ("mlctl", "scikit-learn")


def toolchain() -> dict[str, str | None]:
    """The installed version of each of :data:`TOOLCHAIN` (None when not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in TOOLCHAIN:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions.get("mlctl") is None:  # run from a source tree without installing
        from mlctl import __version__

        versions["mlctl"] = __version__
    return versions


def training_inputs(
    env: Environment,
    model: Model,
    tools: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Everything besides data contents that determines the bytes of a trained version: the
    one list of what a version identity covers. Returns ``(inputs, datasets)``; ``datasets``
    are the datasets whose contents (fingerprints) the identity covers as well.

    ``inputs`` holds:

    - ``training``: the model's normalized training spec (estimator, params, features,
      labels, target, task, test_size, random_state);
    - ``views``: per feature view read: its ``source``, ``ttl``, the features used and their
      types, and its entities' join keys with their ``value_type`` (``keys``);
    - ``datasets``: per dataset read (labels and view sources): its ``timestamp`` (the
      point-in-time join column), file ``format`` and the ``schema`` types of the columns
      training reads from it (join keys, target, features used: each column is coerced on
      its own, so the type of a column nobody reads changes no byte);
    - ``toolchain``: the versions of mlctl and scikit-learn (``tools``, default the installed
      ones: :func:`toolchain`).

    Every value here is the one training uses: the loader refuses ``${VAR}`` in each field read
    here (:func:`mlctl.spec.loader.training_input_paths`), since a placeholder in the identity
    would let a changed variable change the trained bytes under an unchanged identity.
    """
    training = model.training
    views: dict[str, Any] = {}
    datasets = [training.labels]
    columns: dict[str, set[str]] = {training.labels: {training.target}}
    for ref in training.features:
        view_name, _, feature = ref.partition(":")
        view = env.feature_views[view_name]
        entry = views.setdefault(
            view_name,
            {
                "source": view.source,
                "ttl": view.ttl,
                "keys": [
                    {
                        "column": env.entities[e].join_key,
                        "value_type": env.entities[e].value_type,
                    }
                    for e in view.entities
                ],
                "features": {},
            },
        )
        entry["features"][feature] = view.features[feature]
        if view.source not in datasets:
            datasets.append(view.source)
        keys = {env.entities[e].join_key for e in view.entities}
        columns[training.labels] |= keys
        columns.setdefault(view.source, set()).update(keys | {feature})
    read: dict[str, Any] = {}
    for name in datasets:
        dataset = env.datasets[name]
        read[name] = {
            "timestamp": dataset.timestamp,
            "schema": {col: kind for col, kind in dataset.schema_.items() if col in columns[name]},
            "format": dataset.file_format,
        }
    inputs = {
        "training": dump(training),
        "views": views,
        "datasets": read,
        "toolchain": dict(toolchain() if tools is None else tools),
    }
    return inputs, datasets


_SECTION = {
    "dataset": "datasets",
    "entity": "entities",
    "feature_view": "feature_views",
    "model": "models",
    "endpoint": "endpoints",
    "monitor": "monitors",
}


def _mask(d: Desired, secrets: Mapping[str, str]) -> None:
    """Replace values that came from ``${VAR}`` by their placeholder text, in place.

    Specs go into state and plans; secrets never do (DESIGN.md, safety rules).
    """
    if d.type == "model_version":
        prefix, root = f"models.{d.name}.training.", d.spec["training"]
    elif d.type in _SECTION:
        prefix, root = f"{_SECTION[d.type]}.{d.name}.", d.spec
    else:
        return
    for path, placeholder in secrets.items():
        if not path.startswith(prefix):
            continue
        node: Any = root
        parts = path[len(prefix) :].split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                break
        else:
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = placeholder
            elif isinstance(node, dict) and last in node:
                node[last] = placeholder


def desired_resources(env: Environment, secrets: Mapping[str, str] | None = None) -> dict[str, Desired]:
    """Every desired resource keyed by address, in dependency order.

    ``secrets`` maps key paths whose values came from ``${VAR}`` to their placeholder text
    (``EnvSpec.placeholders``); those values are masked in every spec.
    """
    out: list[Desired] = []
    tools = toolchain()  # once per plan, not once per model
    for name, dataset in env.datasets.items():
        out.append(Desired(f"dataset.{name}", "dataset", name, dump(dataset)))
    for name, entity in env.entities.items():
        out.append(Desired(f"entity.{name}", "entity", name, dump(entity)))
    for name, view in env.feature_views.items():
        deps = [f"dataset.{view.source}"] + [f"entity.{e}" for e in view.entities]
        out.append(Desired(f"feature_view.{name}", "feature_view", name, dump(view), deps))
    for name, model in env.models.items():
        out.append(Desired(f"model.{name}", "model", name, model_config_spec(model)))
        inputs, datasets = training_inputs(env, model, tools)
        views = sorted(inputs["views"])
        deps = [f"model.{name}"] + [f"dataset.{d}" for d in datasets]
        deps += [f"feature_view.{v}" for v in views]
        out.append(Desired(f"model_version.{name}", "model_version", name, inputs, deps))
        for stage in STAGES:
            pin = getattr(model.stages, stage)
            deps = [f"model_version.{name}"]
            if stage == "production" and pin == "staging":
                deps.append(f"stage.{name}.staging")
            out.append(Desired(f"stage.{name}.{stage}", "stage", name, {"stage": stage, "pin": pin}, deps))
    for name, endpoint in env.endpoints.items():
        deps = [f"stage.{endpoint.model}.{endpoint.stage}"]
        out.append(Desired(f"endpoint.{name}", "endpoint", name, dump(endpoint), deps))
    for name, monitor in env.monitors.items():
        out.append(Desired(f"monitor.{name}", "monitor", name, dump(monitor), [f"model.{monitor.model}"]))
    rank = {kind: i for i, kind in enumerate(TYPE_ORDER)}
    out.sort(key=lambda d: (rank[d.type], d.name, 1 if d.address.endswith(".production") else 0))
    if secrets:
        for d in out:
            _mask(d, secrets)
    return {d.address: d for d in out}
