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


def imports_of(source: str, module: str, *, package: bool = False) -> list[tuple[int, str]]:
    """Every mlctl module the source text of ``module`` imports, with its line (in line order),
    wherever the import statement is. ``package`` says ``module`` is a package's ``__init__`` (relative
    imports then start from ``module`` itself rather than from its parent)."""
    base_package = module if package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mlctl"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = base_package.split(".")[: len(base_package.split(".")) - node.level + 1]
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
    return sorted(found)


def upward_imports(source: str, module: str, *, package: bool = False, where: str = "") -> list[str]:
    """The imports in the source text of ``module`` that go to its own floor or a higher one,
    one line each (``where:line: ...``, ``where`` defaulting to the module's name)."""
    here = top(module)
    if here == ROOT:
        return []
    assert here in FLOOR_OF, f"{where or module}: mlctl.{here} has no floor in FLOORS"
    bad: list[str] = []
    for line, target in imports_of(source, module, package=package):
        there = top(target)
        if there in (here, ROOT):
            continue
        assert there in FLOOR_OF, f"{where or module}:{line}: mlctl.{there} has no floor in FLOORS"
        if FLOOR_OF[there] >= FLOOR_OF[here]:
            floors = f"floor {FLOOR_OF[here]} -> floor {FLOOR_OF[there]}"
            bad.append(f"{where or module}:{line}: {here} imports {target} ({floors})")
    return bad


def violations() -> list[str]:
    """Every upward import of every module under ``src/mlctl`` (files are only read)."""
    bad: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(SRC.parents[1]))
        package = path.name == "__init__.py"
        bad += upward_imports(path.read_text(), module_name(path), package=package, where=where)
    return bad


def test_every_import_goes_down_a_floor() -> None:
    bad = violations()
    assert not bad, "imports against the direction:\n" + "\n".join(bad)


def test_the_walk_sees_lazy_type_checking_and_relative_imports() -> None:
    """The checker itself bites on every import form, at any depth of the module. The probe is
    source text given a module name (``mlctl.plan.__probe__``, floor 5): nothing is written
    under ``src/``, so a read-only checkout and parallel workers scanning the tree are safe."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlctl.serving import app\n"
        "def f():\n    from mlctl.cli import main\n    import mlctl.operations.apply\n"
        "class C:\n    def g(self):\n        from ..engine import registry\n"
        "from mlctl import errors\n"
        "from . import model\n"
    )
    module = "mlctl.plan.__probe__"
    found = {target for _, target in imports_of(source, module)}
    assert found == {
        "mlctl.serving",
        "mlctl.cli",
        "mlctl.operations.apply",
        "mlctl.engine",
        "mlctl.errors",
        "mlctl.plan",
    }
    assert upward_imports(source, module) == [
        f"{module}:3: plan imports mlctl.serving (floor 5 -> floor 10)",
        f"{module}:5: plan imports mlctl.cli (floor 5 -> floor 11)",
        f"{module}:6: plan imports mlctl.operations.apply (floor 5 -> floor 9)",
        f"{module}:9: plan imports mlctl.engine (floor 5 -> floor 7)",
    ]
    # in a package's __init__ one dot is the package itself: two dots climb one level less
    up = "from ..engine import registry\n"
    assert imports_of(up, "mlctl.plan.sub") == [(1, "mlctl.engine")]
    assert imports_of(up, "mlctl.plan.sub", package=True) == [(1, "mlctl.plan.engine")]


@pytest.mark.parametrize("package", sorted(FLOOR_OF))
def test_every_floor_package_exists(package: str) -> None:
    assert (SRC / package).is_dir() or (SRC / f"{package}.py").is_file(), f"mlctl.{package} is gone"
