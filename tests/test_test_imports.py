"""Test modules share helpers, never each other.

A ``test_*`` module is what pytest collects. Importing one from another ties two test files
together: the importer re-collects the imported fixtures (a session-scoped one then runs once per
importing module) and breaks when a test is renamed. Shared pieces live in helper modules not
named ``test_*`` (``k8s_emulator``, ``feature_repo``, ``local_redis``, ``rollout_support``,
``container_image``, ``pushgateway``, ``s3_support``, ...) or in ``conftest.py``.

The test walks the AST of every ``tests/**/*.py`` -- function-level imports too -- and fails on
any import of a module named ``test_*``: ``import test_x``, ``from test_x import y``,
``from tests.test_x import y``, ``from tests import test_x``, ``from . import test_x`` and
``importlib.import_module("test_x")``.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# first components of a dotted name that point into tests/: ``tests`` itself and its packages
LOCAL = {"tests"} | {p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}


def is_test_module(dotted: str) -> bool:
    """``test_x``, ``tests.test_x``, ``plan.test_x`` -> True; ``conftest``, ``k8s_emulator`` -> False."""
    return dotted.rpartition(".")[2].startswith("test_")


def imports_of_test_modules(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """Every import in ``source`` that names a ``test_*`` module, with its line, wherever the
    statement is (module level, inside functions or classes, under ``if``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.module and is_test_module(node.module):
                found.append((node.lineno, f"from {module} import {', '.join(a.name for a in node.names)}"))
            elif node.level or (node.module or "").split(".")[0] in LOCAL:
                # from tests import test_x / from . import test_x: the names are modules
                found += [
                    (node.lineno, f"from {module} import {a.name}")
                    for a in node.names
                    if is_test_module(a.name)
                ]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            target = node.args[0].value
            if (
                called in ("import_module", "__import__")
                and isinstance(target, str)
                and is_test_module(target)
            ):
                found.append((node.lineno, f"{called}({target!r})"))
    return sorted(found)


def test_no_test_module_imports_another() -> None:
    bad = [
        f"{path.relative_to(TESTS.parent)}:{line}: {what}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, what in imports_of_test_modules(path.read_text(), str(path))
    ]
    assert not bad, "test modules importing test modules (move the shared piece to a helper):\n" + "\n".join(
        bad
    )


def test_the_check_sees_every_import_form() -> None:
    """The check bites on each form, at any depth, and leaves helpers and conftest alone."""
    source = (
        "import test_a\n"
        "import tests.test_b as b\n"
        "from test_c import x, y\n"
        "from tests.test_d import z\n"
        "from tests import test_e, helper\n"
        "from . import test_f\n"
        "from .test_g import w\n"
        "from plan.test_h import v\n"
        "def f():\n    from test_i import u\n"
        "class C:\n    def g(self):\n        import importlib\n        importlib.import_module('test_j')\n"
        "if True:\n    __import__('tests.test_k')\n"
        # not test modules: helpers, conftest, a test-looking name from a library
        "import conftest\nfrom conftest import edit\nfrom k8s_emulator import kube\n"
        "from mlctl.plan import test_mode\nimport testing\nimportlib.import_module(name)\n"
    )
    assert imports_of_test_modules(source) == [
        (1, "import test_a"),
        (2, "import tests.test_b"),
        (3, "from test_c import x, y"),
        (4, "from tests.test_d import z"),
        (5, "from tests import test_e"),
        (6, "from . import test_f"),
        (7, "from .test_g import w"),
        (8, "from plan.test_h import v"),
        (10, "from test_i import u"),
        (14, "import_module('test_j')"),
        (16, "__import__('tests.test_k')"),
    ]
