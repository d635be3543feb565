"""The vectorized point-in-time join against a brute-force reference, on generated data:
several entities and join keys, duplicate timestamps, null keys and times, ttl boundaries."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlctl.features.offline import ViewRequest, training_frame

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def reference(labels: pd.DataFrame, source: pd.DataFrame, keys: list[str], ttl: int | None) -> list[Any]:
    """For each label: the latest source row at or before its time (last in source order on
    ties); missing if none, if a key or time is null, or if that row is ttl old or older."""
    out: list[Any] = []
    for _, label in labels.iterrows():
        if pd.isna(label["ts"]) or any(pd.isna(label[k]) for k in keys):
            out.append(None)
            continue
        best = None
        for _, row in source.iterrows():
            if pd.isna(row["event_ts"]) or any(pd.isna(row[k]) or row[k] != label[k] for k in keys):
                continue
            if row["event_ts"] <= label["ts"] and (best is None or row["event_ts"] >= best["event_ts"]):
                best = row
        if best is None or (ttl is not None and best["event_ts"] <= label["ts"] - pd.Timedelta(seconds=ttl)):
            out.append(None)
        else:
            out.append(int(best["value"]))
    return out


# (hour, extra nanosecond): whole-second times take the packed path; a nanosecond, with the
# huge integer key below, forces the rank-based fallback
hours = st.one_of(st.none(), st.tuples(st.integers(0, 12), st.sampled_from([0, 0, 1])))
entity = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
shop = st.sampled_from([1, 2, 5, 2**39])


@settings(max_examples=300, deadline=None)
@given(
    source_rows=st.lists(st.tuples(entity, shop, hours), max_size=14),
    label_rows=st.lists(st.tuples(entity, shop, hours), min_size=1, max_size=8),
    ttl_hours=st.one_of(st.none(), st.integers(1, 6)),
    key_choice=st.sampled_from(["customer", "shop", "both"]),
)
def test_join_matches_brute_force(
    source_rows: list[tuple[Any, int, Any]],
    label_rows: list[tuple[Any, int, Any]],
    ttl_hours: int | None,
    key_choice: str,
) -> None:
    def when(h: tuple[int, int] | None) -> Any:
        return pd.NaT if h is None else BASE + pd.Timedelta(hours=h[0]) + pd.Timedelta(nanoseconds=h[1])

    source = pd.DataFrame(
        {
            "customer": [r[0] for r in source_rows],
            "shop": [r[1] for r in source_rows],
            "event_ts": pd.Series([when(r[2]) for r in source_rows], dtype="datetime64[ns, UTC]"),
            "value": list(range(len(source_rows))),
        }
    )
    labels = pd.DataFrame(
        {
            "customer": [r[0] for r in label_rows],
            "shop": [r[1] for r in label_rows],
            "ts": pd.Series([when(r[2]) for r in label_rows], dtype="datetime64[ns, UTC]"),
        }
    )
    keys = ["customer", "shop"] if key_choice == "both" else [key_choice]  # shop: integer fast path
    ttl = None if ttl_hours is None else ttl_hours * 3600
    frame = training_frame(labels, "ts", [ViewRequest("v", keys, source, "event_ts", ["value"], ttl)]).frame
    got = [None if pd.isna(v) else int(v) for v in frame["value"]]
    assert got == reference(labels, source, keys, ttl)
