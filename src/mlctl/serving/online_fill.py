"""Fill the features a request left out from the online feature store, by entity key.

Contract: :class:`OnlineFeatures` opens the environment's feature store lazily, once; when it
cannot (no online store configured, a store that fails to open) it says so in the log and
:meth:`OnlineFeatures.covers` is False from then on, so requests must carry every feature.
:meth:`OnlineFeatures.fill` fills only the missing values, in place; a store that fails
raises :class:`~mlctl.serving.responses.Unavailable` (503) and an entity with no online
value raises :class:`~mlctl.serving.responses.Unprocessable` (422).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlctl.serving.follower import LoadedModel
from mlctl.serving.responses import Unavailable, Unprocessable

log = logging.getLogger("mlctl.serving")


class OnlineFeatures:
    """Entity-key lookups in the online feature store, when that store is available."""

    def __init__(self, repo: Path, env: str) -> None:
        self.repo = repo
        self.env = env
        self._store: Any = None
        self._available: bool | None = None

    def store(self) -> Any:
        if self._available is None:
            try:
                from mlctl.features.store import FeatureStore  # type: ignore[import-not-found,unused-ignore]

                self._store = FeatureStore(self.repo, self.env)
                self._available = hasattr(self._store, "get_online_features")
            except Exception as error:
                log.info("online feature store unavailable: %s", error)
                self._available = False
        return self._store if self._available else None

    def covers(self, loaded: LoadedModel) -> bool:
        return bool(loaded.entity_keys) and self.store() is not None

    def fill(
        self, loaded: LoadedModel, rows: list[list[Any]], entities: list[dict[str, Any]], which: list[int]
    ) -> None:
        store = self.store()
        refs = [i.get("feature") or i["name"] for i in loaded.signature["inputs"]]
        entity_rows = [entities[i] for i in which]
        try:
            result = store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()
        except Exception as error:
            raise Unavailable(f"online feature store failed: {type(error).__name__}: {error}") from None
        for position, i in enumerate(which):
            for j, (name, ref) in enumerate(zip(loaded.features, refs, strict=True)):
                if rows[i][j] is not None:
                    continue
                column = result.get(ref, result.get(name, result.get(ref.partition(":")[2])))
                value = column[position] if isinstance(column, list) and position < len(column) else None
                if value is None:
                    raise Unprocessable(
                        f"no online value of {ref} for {entities[i]}; give the features in the request"
                    )
                rows[i][j] = value
