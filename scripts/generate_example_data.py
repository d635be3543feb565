"""Generate the example data into ./data of this repository unless it is already there.

Used by ``make demo``; prints what it wrote. The data's timeline ends today (UTC), or at
``--as-of YYYY-MM-DD``: the same day gives byte-identical files, and the online feature
values stay live (within the views' 90-day ttl) for weeks. ``--force`` regenerates (run it
when the data has grown old: ``mlctl serve`` then finds no fresh online values).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.example.init import DATA_FILES, as_of_day, ensure_example_data

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate even if the data exists")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day the data ends at (default: today)")
    parser.add_argument("--customers", type=int, default=20000, help="customers (default: 20000)")
    args = parser.parse_args(argv)
    try:
        day = as_of_day(args.as_of)
    except MlctlError as error:
        parser.error(str(error))
    data = ROOT / "data"
    if args.force:
        for name in DATA_FILES:
            (data / name).unlink(missing_ok=True)
    if not ensure_example_data(ROOT, customers=args.customers, as_of=day):
        print(f"example data already present in {data} (--force regenerates it as of today)")
        ends = _last_day(data / DATA_FILES[0])
        if ends is not None and (day - ends).days > 30:
            print(
                f"note: it ends on {ends}: customers' online feature values are expiring (ttl 90 days); "
                "regenerate with --force (the next apply then trains on the new data)"
            )
        return 0
    for name in DATA_FILES:
        path = data / name
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB, as of {day})")
    return 0


def _last_day(path: Path) -> dt.date | None:
    """The day of the latest event in an example CSV (its second column), or None."""
    latest = ""
    with path.open() as handle:
        next(handle, None)
        for line in handle:
            parts = line.split(",", 2)
            if len(parts) > 1 and parts[1] > latest:
                latest = parts[1]
    try:
        return dt.date.fromisoformat(latest[:10]) if latest else None
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
