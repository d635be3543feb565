"""Content hashes of spec values, and the schema a feature view's online records depend on.

Both the planner (to plan a rebuild) and the feature store (to detect one) read these, so
they live with the spec rather than with either of them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlctl.spec.models import Environment


def canonical_hash(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def view_schema(env: Environment, name: str) -> dict[str, Any]:
    """What the online records of a feature view depend on besides data (source, timestamp,
    join keys, feature types): a change means the online view is rebuilt."""
    view = env.feature_views[name]
    source = env.datasets.get(view.source)
    return {
        "source": view.source,
        "timestamp": source.timestamp if source else None,
        "join_keys": [env.entities[e].join_key for e in view.entities if e in env.entities],
        "features": dict(view.features),
    }


def schema_hash(schema: dict[str, Any]) -> str:
    """The identity of a :func:`view_schema`, as recorded in state and the online store."""
    return canonical_hash(schema)
