"""Generate the example data into ./data of this repository unless it is already there.

Used by ``make demo``; prints what it wrote. ``--force`` regenerates.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlctl.example.init import DATA_FILES, ensure_example_data

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    data = ROOT / "data"
    if "--force" in argv:
        for name in DATA_FILES:
            (data / name).unlink(missing_ok=True)
    if not ensure_example_data(ROOT):
        print(f"example data already present in {data}")
        return 0
    for name in DATA_FILES:
        path = data / name
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
