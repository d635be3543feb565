"""Feature store benchmark: mlctl vs Feast on the same data, side by side.

Data: one feature view with 5 features (3 float, 2 int), 100,000 entities with several
events each (timestamps over the last 20 days, ttl 30 days, so every online value is live).
Both stores read the same Parquet file.

Measured, for each store:
* materialize: first full materialization of the view into the embedded SQLite online store
  (mlctl: ``materialize_view``; Feast: ``FeatureStore.materialize`` with the local provider,
  SQLite online store and file offline store), including reading the source;
* online get p50/p99 for 1 and 100 entities: 200 in-process calls of
  ``get_online_features(...).to_dict()`` each, after 20 warm-up calls;
* historical: ``get_historical_features(entity_df, features).to_df()`` for 100,000 entity
  rows (random entities, random times), from a fresh store object; median of 3 runs.

Feast is installed in its own virtual environment (default /tmp/feast-venv) and runs in a
subprocess of it. Usage::

    python benchmarks/feature_store.py [--entities 100000] [--events 5] [--calls 200]
        [--feast-venv /tmp/feast-venv] [--skip-feast] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

FEATURES = ["f_float_1", "f_float_2", "f_float_3", "f_int_1", "f_int_2"]

FEAST_SCRIPT = r"""
import json, sys, time, statistics
from datetime import datetime, timedelta, timezone
import pandas as pd

repo, calls = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, repo)
from feast import FeatureStore
import definitions

store = FeatureStore(repo_path=repo)
store.apply([definitions.customer, definitions.customer_features])
refs = [f"customer_features:{f}" for f in definitions.FEATURES]
src = pd.read_parquet(repo + "/activity.parquet")
start = src["event_timestamp"].min().to_pydatetime() - timedelta(seconds=1)
end = datetime.now(timezone.utc)
out = {}
t = time.perf_counter()
store.materialize(start_date=start, end_date=end)
out["materialize_s"] = time.perf_counter() - t

ids = src["customer_id"].drop_duplicates().sample(frac=1.0, random_state=1).tolist()
def timed(n):
    samples = []
    for i in range(20 + calls):
        rows = [{"customer_id": int(ids[(i * n + j) % len(ids)])} for j in range(n)]
        t = time.perf_counter()
        store.get_online_features(features=refs, entity_rows=rows).to_dict()
        if i >= 20:
            samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99) - 1] * 1e3
check = store.get_online_features(features=refs, entity_rows=[{"customer_id": int(ids[0])}]).to_dict()
out["online_check_nonnull"] = all(v[0] is not None for k, v in check.items() if k != "customer_id")
out["online_1"] = timed(1)
out["online_100"] = timed(100)

entity_df = pd.read_parquet(repo + "/entity_df.parquet")
runs = []
for _ in range(3):
    fresh = FeatureStore(repo_path=repo)
    t = time.perf_counter()
    hist = fresh.get_historical_features(entity_df=entity_df, features=refs).to_df()
    runs.append(time.perf_counter() - t)
out["historical_s"] = statistics.median(runs)
out["historical_rows"] = len(hist)
out["historical_nonnull"] = int(hist["f_float_1"].notna().sum())
print("RESULT " + json.dumps(out))
"""


def make_data(workdir: Path, entities: int, events: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = entities * events
    now = pd.Timestamp.now(tz="UTC").floor("s")
    offsets = rng.integers(3_600, 20 * 86_400, n)
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(1, entities + 1, dtype="int64"), events),
            "event_timestamp": (now - pd.to_timedelta(offsets, unit="s")).astype("datetime64[us, UTC]"),
            "f_float_1": rng.normal(50, 10, n),
            "f_float_2": rng.random(n),
            "f_float_3": rng.exponential(3.0, n),
            "f_int_1": rng.integers(0, 100, n),
            "f_int_2": rng.integers(0, 10, n),
        }
    )
    frame["created"] = frame["event_timestamp"]
    source = workdir / "activity.parquet"
    frame.to_parquet(source, index=False)
    rows = entities
    entity_df = pd.DataFrame(
        {
            "customer_id": rng.integers(1, entities + 1, rows).astype("int64"),
            "event_timestamp": (now - pd.to_timedelta(rng.integers(0, 25 * 86_400, rows), unit="s")).astype(
                "datetime64[us, UTC]"
            ),
        }
    )
    entity_path = workdir / "entity_df.parquet"
    entity_df.to_parquet(entity_path, index=False)
    return source, entity_path


def percentile_ms(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99) - 1] * 1e3


def run_mlctl(workdir: Path, source: Path, entity_path: Path, calls: int) -> dict[str, Any]:
    import pandas as pd

    from mlctl.features.materialize import materialize_view
    from mlctl.features.store import FeatureStore

    repo = workdir / "mlctl-repo"
    env = repo / "environments" / "bench"
    env.mkdir(parents=True)
    (repo / "data").mkdir()
    shutil.copy(source, repo / "data" / "activity.parquet")
    (env / "environment.yaml").write_text("backend: {type: local, path: state/bench.json}\n")
    (env / "features.yaml").write_text(
        textwrap.dedent(
            """\
            datasets:
              activity:
                path: data/activity.parquet
                timestamp: event_timestamp
                schema: {customer_id: int, event_timestamp: datetime, f_float_1: float, f_float_2: float,
                         f_float_3: float, f_int_1: int, f_int_2: int}
            entities:
              customer: {join_key: customer_id, value_type: int}
            feature_views:
              customer_features:
                entities: [customer]
                source: activity
                ttl: 30d
                online: true
                features: {f_float_1: float, f_float_2: float, f_float_3: float, f_int_1: int, f_int_2: int}
            """
        )
    )
    out: dict[str, Any] = {}
    store = FeatureStore(repo, "bench")
    t = time.perf_counter()
    result = materialize_view(store.spec, "customer_features", None)
    out["materialize_s"] = time.perf_counter() - t
    out["materialized_entities"] = result.status["entities"]

    refs = [f"customer_features:{f}" for f in FEATURES]
    ids = pd.read_parquet(source, columns=["customer_id"])["customer_id"].drop_duplicates()
    ids = ids.sample(frac=1.0, random_state=1).tolist()

    def timed(n: int) -> tuple[float, float]:
        samples = []
        for i in range(20 + calls):
            rows = [{"customer_id": int(ids[(i * n + j) % len(ids)])} for j in range(n)]
            t = time.perf_counter()
            store.get_online_features(features=refs, entity_rows=rows).to_dict()
            if i >= 20:
                samples.append(time.perf_counter() - t)
        return percentile_ms(samples)

    check = store.get_online_features(features=refs, entity_rows=[{"customer_id": int(ids[0])}])
    out["online_check_nonnull"] = all(s == "PRESENT" for v in check.statuses.values() for s in v)
    out["online_1"] = timed(1)
    out["online_100"] = timed(100)

    entity_df = pd.read_parquet(entity_path)
    runs = []
    for _ in range(3):
        fresh = FeatureStore(repo, "bench")  # a fresh store reads the source again
        t = time.perf_counter()
        hist = fresh.get_historical_features(entity_df, refs).to_df()
        runs.append(time.perf_counter() - t)
    out["historical_s"] = statistics.median(runs)
    out["historical_rows"] = len(hist)
    out["historical_nonnull"] = int(hist["f_float_1"].notna().sum())
    return out


def run_feast(workdir: Path, source: Path, entity_path: Path, calls: int, venv: Path) -> dict[str, Any] | str:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing feast into {venv} ...", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "feast"], check=True)
        except subprocess.CalledProcessError as error:
            return f"could not install feast: {error}"
    repo = workdir / "feast-repo"
    repo.mkdir()
    shutil.copy(source, repo / "activity.parquet")
    shutil.copy(entity_path, repo / "entity_df.parquet")
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: bench
            registry: {repo}/registry.db
            provider: local
            online_store:
              type: sqlite
              path: {repo}/online.db
            offline_store:
              type: file
            entity_key_serialization_version: 3
            """
        )
    )
    (repo / "definitions.py").write_text(
        textwrap.dedent(
            f"""\
            from datetime import timedelta
            from feast import Entity, FeatureView, Field, FileSource
            from feast.types import Float64, Int64
            from feast.value_type import ValueType

            FEATURES = {FEATURES!r}
            customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
            source = FileSource(path="{repo}/activity.parquet", timestamp_field="event_timestamp",
                                created_timestamp_column="created")
            customer_features = FeatureView(
                name="customer_features",
                entities=[customer],
                ttl=timedelta(days=30),
                schema=[Field(name="f_float_1", dtype=Float64), Field(name="f_float_2", dtype=Float64),
                        Field(name="f_float_3", dtype=Float64), Field(name="f_int_1", dtype=Int64),
                        Field(name="f_int_2", dtype=Int64)],
                online=True,
                source=source,
            )
            """
        )
    )
    script = repo / "bench_feast.py"
    script.write_text(FEAST_SCRIPT)
    proc = subprocess.run(
        [str(python), str(script), str(repo), str(calls)], capture_output=True, text=True, cwd=repo
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return "feast run failed: " + " | ".join(tail)


def table(mlctl: dict[str, Any], feast: dict[str, Any] | str) -> str:
    rows = [
        ("materialize (s)", mlctl["materialize_s"], "materialize_s", "lower"),
        ("online get p50, 1 entity (ms)", mlctl["online_1"][0], ("online_1", 0), "lower"),
        ("online get p99, 1 entity (ms)", mlctl["online_1"][1], ("online_1", 1), "lower"),
        ("online get p50, 100 entities (ms)", mlctl["online_100"][0], ("online_100", 0), "lower"),
        ("online get p99, 100 entities (ms)", mlctl["online_100"][1], ("online_100", 1), "lower"),
        ("historical, 100k entity rows (s)", mlctl["historical_s"], "historical_s", "lower"),
    ]
    out = [
        f"| {'metric':<36} | {'mlctl':>10} | {'Feast':>10} | {'speed-up':>8} |",
        f"|{'-' * 38}|{'-' * 12}|{'-' * 12}|{'-' * 10}|",
    ]
    for label, mine, key, _ in rows:
        theirs: float | None = None
        if isinstance(feast, dict):
            value = feast[key[0]][key[1]] if isinstance(key, tuple) else feast[key]
            theirs = float(value)
        ratio = f"{theirs / mine:.1f}x" if theirs else "-"
        feast_text = f"{theirs:.3f}" if theirs is not None else "n/a"
        out.append(f"| {label:<36} | {mine:>10.3f} | {feast_text:>10} | {ratio:>8} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--feast-venv", type=Path, default=Path("/tmp/feast-venv"))
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlctl-fs-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    source, entity_path = make_data(workdir, args.entities, args.events)
    print(
        f"data: {args.entities:,} entities x {args.events} events = {args.entities * args.events:,} rows, "
        f"5 features; workdir {workdir}",
        file=sys.stderr,
    )
    mlctl = run_mlctl(workdir, source, entity_path, args.calls)
    feast: dict[str, Any] | str = "skipped (--skip-feast)"
    if not args.skip_feast:
        feast = run_feast(workdir, source, entity_path, args.calls, args.feast_venv)
    print(table(mlctl, feast))
    print()
    print(
        f"sanity: mlctl online values live: {mlctl['online_check_nonnull']}, historical non-null "
        f"{mlctl['historical_nonnull']:,}/{mlctl['historical_rows']:,}, entities online "
        f"{mlctl['materialized_entities']:,}"
    )
    if isinstance(feast, dict):
        print(
            f"sanity: Feast online values live: {feast['online_check_nonnull']}, historical non-null "
            f"{feast['historical_nonnull']:,}/{feast['historical_rows']:,}"
        )
    else:
        print(f"Feast: {feast}")


if __name__ == "__main__":
    main()
