"""JSON Schema (draft 2020-12) of one merged environment document and of a provider file.

Generated from the pydantic models by alias (YAML names: ``schema``, not ``schema_``), then
tightened where a Python validator has a JSON Schema equivalent (durations, ``view:feature``
references, the estimator allow-list) so editors can complete and flag them. Cross references
and filesystem rules are not expressible here; ``mlctl validate`` checks those.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mlctl.spec.estimators import ALLOWED_ESTIMATORS
from mlctl.spec.models import Environment, ProviderConfig

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DURATION_PATTERN = r"^\s*0*[1-9][0-9]*(s|m|h|d|w)\s*$"
FEATURE_REF_PATTERN = r"^[^:]+:.+$"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a merged environment (every ``environments/<env>/*.yaml``)."""
    schema = Environment.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    _string_pattern(defs.get("FeatureView", {}), "ttl", DURATION_PATTERN)
    for monitor in ("DriftMonitor", "PerformanceMonitor", "ServingMonitor"):
        _string_pattern(defs.get(monitor, {}), "window", DURATION_PATTERN)
    training = defs.get("Training", {}).get("properties", {})
    if "features" in training:
        training["features"].setdefault("items", {})["pattern"] = FEATURE_REF_PATTERN
    if "estimator" in training:
        training["estimator"]["enum"] = sorted(ALLOWED_ESTIMATORS)
    return {"$schema": DRAFT, "title": "mlctl environment (schema v1)", **_without(schema)}


def provider_json_schema() -> dict[str, Any]:
    """The JSON Schema of one ``providers/<name>.yaml`` (local, s3 or k8s by ``type``)."""
    schema = TypeAdapter(ProviderConfig).json_schema(by_alias=True, mode="validation")
    return {"$schema": DRAFT, "title": "mlctl provider (schema v1)", **_without(schema)}


def _without(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "title")}


def _string_pattern(model: dict[str, Any], name: str, pattern: str) -> None:
    """Add ``pattern`` to the string branch of property ``name`` (``str | None``)."""
    prop = model.get("properties", {}).get(name)
    if prop is None:
        return
    branches = prop.get("anyOf", [prop])
    for branch in branches:
        if branch.get("type") == "string":
            branch["pattern"] = pattern
