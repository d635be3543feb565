"""GitOps loop costs: comment assembly at scale, and apply with vs without an evaluated candidate.

Run: .venv/bin/python benchmarks/gitops.py   (about a minute; prints a table)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlctl.plan.comment import Report, build_comment
from mlctl.plan.model import Plan, ResourceChange


def big(n: int) -> Plan:
    changes = [
        ResourceChange(
            address=f"feature_view.v{i}",
            type="feature_view",
            name=f"v{i}",
            actions=["update"],
            details=[f"~ features.f{j}: int -> float" for j in range(5)],
        )
        for i in range(n)
    ]
    return Plan(environment="prod", created_at="x", spec_digest="d", resource_changes=changes)


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def mlctl(repo: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlctl", "-C", str(repo), *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    rows = []
    for n in (100, 1_000, 10_000):
        plan = big(n)
        bodies, seconds = timed(lambda p=plan: build_comment(Report([p])))
        parts, split_s = timed(lambda p=plan: build_comment(Report([p]), mode="split"))
        rows.append(
            (f"comment, {n:,} changes (truncate)", f"{seconds * 1000:.1f} ms", f"{len(bodies[0]):,} chars")
        )
        rows.append((f"comment, {n:,} changes (split)", f"{split_s * 1000:.1f} ms", f"{len(parts)} part(s)"))

    from mlctl.example.init import init_repo

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        init_repo(base)
        mlctl(base, "apply", "-e", "dev", "--auto-approve")
        models = base / "environments" / "dev" / "models.yaml"
        models.write_text(models.read_text().replace("max_depth: 10", "max_depth: 9"))
        cold = Path(tmp) / "cold"
        warm = Path(tmp) / "warm"
        shutil.copytree(base, cold)
        shutil.copytree(base, warm)
        rows.append(
            (
                "apply, candidate trained at apply",
                f"{mlctl(cold, 'apply', '-e', 'dev', '--auto-approve'):.2f} s",
                "",
            )
        )
        rows.append(
            ("plan --evaluate (trains)", f"{mlctl(warm, 'plan', '-e', 'dev', '--evaluate'):.2f} s", "")
        )
        rows.append(
            ("plan --evaluate again (cached)", f"{mlctl(warm, 'plan', '-e', 'dev', '--evaluate'):.2f} s", "")
        )
        rows.append(
            (
                "apply, evaluated candidate reused",
                f"{mlctl(warm, 'apply', '-e', 'dev', '--auto-approve'):.2f} s",
                "",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'time':>10}  note")
    for name, t, note in rows:
        print(f"{name:<{width}}  {t:>10}  {note}")


if __name__ == "__main__":
    main()
