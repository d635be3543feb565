"""``feature_views``: an environment's feature views next to what was materialized online.

Contract: read-only (no lock); one dict per view as
:meth:`~mlctl.features.store.FeatureStore.list_feature_views` gives it, plus ``materialized``:
the state's record of the last materialization (watermark, time, entities, windows, store),
or None while the view has never been materialized online.
"""

from __future__ import annotations

from typing import Any

from mlctl.workspace import Workspace

__all__ = ["feature_views"]


def feature_views(ws: Workspace) -> list[dict[str, Any]]:
    """The views of ``ws`` with their materialization (see the module contract)."""
    from mlctl.features.store import FeatureStore

    state = ws.backend.read()
    views = FeatureStore(spec=ws.spec).list_feature_views()
    for view in views:
        resource = state.resources.get(f"feature_view.{view['name']}") if state else None
        status = resource.status if resource else {}
        view["materialized"] = (
            {
                "watermark": status.get("watermark"),
                "materialized_at": status.get("materialized_at"),
                "entities": status.get("entities"),
                "windows": len(status.get("windows", [])),
                "store": status.get("store"),
            }
            if status.get("online")
            else None
        )
    return views
