"""Drift detection: mlctl against Evidently's DataDriftPreset on the same frames.

20 numeric columns, 100,000 reference and 100,000 current rows; 5 columns are shifted (mean
moved by 0.4 to 1.0 standard deviations), 15 are not. Evidently runs in its own virtualenv
(created under /tmp on first use: ``evidently`` and ``pandas<3``), in a subprocess reading
the same Parquet files. Prints a table: time (import excluded, and whole process) and which
columns each flags.

    python benchmarks/drift.py [--rows 100000] [--venv /tmp/mlctl-bench-evidently]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = 20
SHIFTS = {"f03": 0.4, "f07": 0.5, "f11": 0.6, "f15": 0.8, "f19": 1.0}  # in standard deviations

EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
started = time.perf_counter()
from evidently import Report
from evidently.presets import DataDriftPreset
imported = time.perf_counter()
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
loaded = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(cur, ref)
result = snapshot.dict()
done = time.perf_counter()
flagged, methods = [], set()
for metric in result["metrics"]:
    config = metric.get("config", {})
    if config.get("type", "").endswith("ValueDrift"):
        methods.add(config["method"])
        value, threshold = metric["value"], config["threshold"]
        pvalue = "p_value" in config["method"] or "test" in config["method"].lower()
        drifted = value < threshold if pvalue else value >= threshold
        if drifted:
            flagged.append(config["column"])
print(json.dumps({"seconds": done - loaded, "import": imported - started, "flagged": sorted(flagged),
                  "method": ", ".join(sorted(methods))}))
"""


def make_frames(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(COLUMNS)]
    scales = rng.uniform(0.5, 20.0, COLUMNS)
    means = rng.uniform(-50, 50, COLUMNS)
    ref = pd.DataFrame({n: rng.normal(m, s, rows) for n, m, s in zip(names, means, scales, strict=True)})
    cur = pd.DataFrame(
        {
            n: rng.normal(m + SHIFTS.get(n, 0.0) * s, s, rows)
            for n, m, s in zip(names, means, scales, strict=True)
        }
    )
    return ref, cur


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with evidently (one time)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow"], check=True
        )
    return python


def run_mlctl(ref: pd.DataFrame, cur: pd.DataFrame, test: str, threshold: float) -> tuple[float, list[str]]:
    from mlctl.monitor import stats

    started = time.perf_counter()
    results = {c: stats.numeric_test(test, ref[c].to_numpy(), cur[c].to_numpy()) for c in ref.columns}
    adjusted = stats.adjust_pvalues([r.p_value for r in results.values()], "holm")
    flagged = [
        c for (c, r), p in zip(results.items(), adjusted, strict=True) if r.statistic > threshold and p < 0.05
    ]
    return time.perf_counter() - started, sorted(flagged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/mlctl-bench-evidently"))
    args = parser.parse_args()
    python = ensure_venv(args.venv)
    ref, cur = make_frames(args.rows)
    truth = sorted(SHIFTS)

    import scipy.stats  # noqa: F401 - import once, outside the timings (as Evidently's import is)

    rows = []
    for test, threshold in (("ks", 0.15), ("wasserstein", 0.1), ("psi", 0.1)):
        run_mlctl(ref.head(1000), cur.head(1000), test, threshold)  # warm
        seconds, flagged = min((run_mlctl(ref, cur, test, threshold) for _ in range(3)), key=lambda r: r[0])
        rows.append((f"mlctl ({test} > {threshold:g}, Holm p < 0.05)", seconds, None, flagged))

    with tempfile.TemporaryDirectory(prefix="mlctl-drift-bench-") as tmp:
        ref_path, cur_path = Path(tmp) / "ref.parquet", Path(tmp) / "cur.parquet"
        ref.to_parquet(ref_path)
        cur.to_parquet(cur_path)
        wall = time.perf_counter()
        out = subprocess.run(
            [str(python), "-c", EVIDENTLY_SCRIPT, str(ref_path), str(cur_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - wall
        evidently = json.loads(out.stdout.strip().splitlines()[-1])
        version = subprocess.run(
            [str(python), "-c", "import evidently; print(evidently.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    rows.append(
        (
            f"Evidently {version} DataDriftPreset ({evidently['method']})",
            evidently["seconds"],
            wall,
            evidently["flagged"],
        )
    )

    baseline = evidently["seconds"]
    print(
        f"{COLUMNS} numeric columns, {args.rows:,} reference and {args.rows:,} current rows; "
        f"shifted: {', '.join(truth)}\n"
    )
    print(f"{'tool':<62} {'time (s)':>9} {'speed-up':>9}  {'same columns':<12} flagged")
    for name, seconds, _wall, flagged in rows:
        speed = baseline / seconds if seconds else float("inf")
        same = "yes" if flagged == truth else "NO"
        print(f"{name:<62} {seconds:>9.3f} {speed:>8.1f}x  {same:<12} {', '.join(flagged) or '-'}")
    print(
        f"\nEvidently's whole subprocess (import + read + report): {wall:.2f} s; "
        f"its import alone: {evidently['import']:.2f} s. Times exclude reading the Parquet files."
    )


if __name__ == "__main__":
    main()
