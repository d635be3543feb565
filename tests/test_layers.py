"""The house has floors: a package imports only from floors below it, lazy imports included.

The table below is the one place the floors are kept (README "Layout" shows it). The test
walks the AST of every module under ``src/mlctl`` -- module-level, function-level and
``TYPE_CHECKING`` imports alike -- and fails on any import of a package on the same floor or a
higher one. Two packages on one floor never import each other, so no cycle can form.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mlctl"

# floor -> the top-level names under mlctl that live on it (a module or a package)
FLOORS: dict[int, tuple[str, ...]] = {
    0: ("errors",),
    1: ("files", "s3client", "redaction", "extras"),  # ground helpers
    2: ("spec", "state"),
    3: ("ml", "gitops", "example"),
    4: ("providers",),
    5: ("plan", "workspace"),
    6: ("features",),
    7: ("engine",),
    8: ("monitor",),
    9: ("operations",),  # the library API: each operation takes a Workspace and the lock
    10: ("serving",),
    11: ("cli",),
    12: ("__main__",),
}
ROOT = "__init__"  # mlctl/__init__.py: the version; importable from every floor
FLOOR_OF = {name: floor for floor, names in FLOORS.items() for name in names}


def top(module: str) -> str:
    """``mlctl.plan.model`` -> ``plan``; ``mlctl`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every mlctl module ``path`` imports, with its line, wherever the import statement is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mlctl"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "mlctl":
                if target == "mlctl":  # from mlctl import x: x is a module, or a name of the root
                    found += [
                        (node.lineno, f"mlctl.{a.name}" if is_module(a.name) else "mlctl") for a in node.names
                    ]
                else:
                    found.append((node.lineno, target))
    return found


def violations() -> list[str]:
    bad: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        here = top(module_name(path))
        if here == ROOT:
            continue
        assert here in FLOOR_OF, f"{path}: mlctl.{here} has no floor in FLOORS"
        for line, target in imports_of(path):
            there = top(target)
            if there in (here, ROOT):
                continue
            assert there in FLOOR_OF, f"{path}:{line}: mlctl.{there} has no floor in FLOORS"
            if FLOOR_OF[there] >= FLOOR_OF[here]:
                rel = path.relative_to(SRC.parents[1])
                floors = f"floor {FLOOR_OF[here]} -> floor {FLOOR_OF[there]}"
                bad.append(f"{rel}:{line}: {here} imports {target} ({floors})")
    return bad


def test_every_import_goes_down_a_floor() -> None:
    bad = violations()
    assert not bad, "imports against the direction:\n" + "\n".join(bad)


def test_the_walk_sees_lazy_type_checking_and_relative_imports() -> None:
    """The checker itself bites on every import form, at any depth of the module."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlctl.serving import app\n"
        "def f():\n    from mlctl.cli import main\n    import mlctl.operations.apply\n"
        "class C:\n    def g(self):\n        from ..engine import registry\n"
        "from mlctl import errors\n"
    )
    path = SRC / "plan" / "__probe__.py"
    path.write_text(source)
    try:
        found = {target for _, target in imports_of(path)}
    finally:
        path.unlink()
    assert found == {"mlctl.serving", "mlctl.cli", "mlctl.operations.apply", "mlctl.engine", "mlctl.errors"}


@pytest.mark.parametrize("package", sorted(FLOOR_OF))
def test_every_floor_package_exists(package: str) -> None:
    assert (SRC / package).is_dir() or (SRC / f"{package}.py").is_file(), f"mlctl.{package} is gone"
