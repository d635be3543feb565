"""Honest dependencies: what src/mlctl imports is what pyproject.toml declares, no more, no less.

The test walks the AST of every module under ``src/mlctl`` (module-level, function-level and
``TYPE_CHECKING`` imports alike), maps each third-party top-level name to its distribution with
``importlib.metadata.packages_distributions()``, and compares with ``[project].dependencies``
plus the runtime extras. The extras (``k8s``, ``redis``, ``report``) are optional: no module of
mlctl needs them at import time, and code that needs one says which extra to install, in one
line with exit code 1 (checked in subprocesses whose import system refuses the module).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mlctl"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = {name: reqs for name, reqs in PROJECT["optional-dependencies"].items() if name != "dev"}


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0])


def declared(requirements: list[str]) -> set[str]:
    """Distribution names of ``requirements``, without self-references (``mlctl[k8s]``)."""
    return {requirement_name(r) for r in requirements} - {"mlctl"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def third_party_imports() -> dict[str, set[str]]:
    """Top-level name -> the files under src/mlctl that import it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and _call_name(node) in ("require", "import_module"):
                # mlctl.extras.require("redis", "redis"), importlib.import_module("x"): lazy imports
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names = [first.value]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("mlctl", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _packages() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    return {normalize(d) for d in _packages().get(module, [])}


def test_every_runtime_import_is_declared() -> None:
    runtime = declared(PROJECT["dependencies"]) | {d for r in EXTRAS.values() for d in declared(r)}
    undeclared = {}
    for module, files in sorted(third_party_imports().items()):
        dists = distributions_of(module)
        assert dists, f"{module} (imported by {sorted(files)}) is not installed: which distribution is it?"
        if not dists & runtime:
            undeclared[module] = sorted(files)
    assert not undeclared, f"imported but not declared in [project] dependencies or an extra: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    imported = {d for module in third_party_imports() for d in distributions_of(module)}
    unused = sorted(declared(PROJECT["dependencies"]) - imported)
    assert not unused, f"declared in [project].dependencies but never imported by src/mlctl: {unused}"
    for extra, requirements in EXTRAS.items():
        unused = sorted(declared(requirements) - imported)
        assert not unused, f"extra {extra!r} declares {unused}, which src/mlctl never imports"


def test_optional_packages_are_extras_not_core_dependencies() -> None:
    core = declared(PROJECT["dependencies"])
    assert not {"kubernetes", "redis", "matplotlib", "boto3", "jsonschema"} & core
    assert declared(EXTRAS["k8s"]) == {"kubernetes", "urllib3"}
    assert declared(EXTRAS["redis"]) == {"redis"}
    assert declared(EXTRAS["report"]) == {"matplotlib"}
    assert declared(EXTRAS["dashboards"]) == {"grafana-foundation-sdk"}
    assert set(EXTRAS["all"]) == {"mlctl[dashboards,k8s,redis,report]"}
    assert "mlctl[all]" in PROJECT["optional-dependencies"]["dev"]  # make test has every extra


def test_boto3_is_never_imported_and_botocore_has_conditional_writes() -> None:
    assert "boto3" not in third_party_imports()
    [botocore] = [r for r in PROJECT["dependencies"] if requirement_name(r) == "botocore"]
    floor = tuple(int(p) for p in re.search(r">=\s*([\d.]+)", botocore)[1].split("."))  # type: ignore[index]
    # put_object(IfNoneMatch) came in 1.35.36, delete_object(IfMatch) in 1.35.67, put_object(IfMatch)
    # in 1.35.69 (read from the S3 service model of each release): state writes use all three.
    assert floor >= (1, 35, 69)
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    assert {"IfMatch", "IfNoneMatch"} <= set(model.operation_model("PutObject").input_shape.members)
    assert "IfMatch" in model.operation_model("DeleteObject").input_shape.members


def test_min_constraints_pin_every_runtime_floor() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import min_constraints
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pins = min_constraints.constraints()
    names = {requirement_name(p) for p in pins}
    runtime = declared(PROJECT["dependencies"]) | {d for r in EXTRAS.values() for d in declared(r)}
    assert names == runtime
    assert "botocore==1.35.69" in pins and all("==" in p for p in pins)
    assert min_constraints.floor_pin("uvloop>=0.19; sys_platform != 'win32'") == (
        "uvloop==0.19; sys_platform != 'win32'"
    )
    assert min_constraints.floor_pin("uvicorn[standard]>=0.29") == "uvicorn==0.29"
    with pytest.raises(ValueError, match="no '>=' floor"):
        min_constraints.floor_pin("requests")


# -- absent extras -----------------------------------------------------------------------------

BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    '''Behave as if these top-level packages were not installed.'''
    def __init__(self, names):
        self.names = set(names)
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, Absent(sys.argv[1].split(",")))
"""


def run_without(modules: str, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter in which ``modules`` (comma-separated) are absent."""
    code = BLOCKER + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code, modules, *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_no_module_of_mlctl_needs_an_extra_at_import_time() -> None:
    result = run_without(
        "kubernetes,redis,matplotlib,urllib3,grafana_foundation_sdk",
        """
        import importlib, pkgutil
        import mlctl
        skip = {"mlctl.ml.plots"}  # the chart module itself: imported only when matplotlib is there
        for info in pkgutil.walk_packages(mlctl.__path__, "mlctl."):
            if info.name not in skip and not info.name.endswith("__main__"):
                importlib.import_module(info.name)
        print("ok")
        """,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


CALLERS = {
    "redis": (
        "redis",
        """
        from mlctl.features.online import RedisOnlineStore
        RedisOnlineStore.connect(url="redis://127.0.0.1:9")
        """,
    ),
    "k8s": (
        "kubernetes",
        """
        from mlctl.providers.k8s import KubeClient
        KubeClient().api
        """,
    ),
    "dashboards": (
        "grafana_foundation_sdk",
        """
        from pathlib import Path
        from mlctl.monitor.dashboards import build
        from mlctl.spec.loader import load_environment
        build("dev", load_environment(Path("src/mlctl/example/files"), "dev").config)
        """,
    ),
    "report": (
        "matplotlib",
        """
        from mlctl.monitor.report import _histogram
        _histogram([1.0, 2.0], [1.0, 3.0], False, "x")
        """,
    ),
}


@pytest.mark.parametrize("extra", sorted(CALLERS))
def test_a_missing_extra_is_one_line_naming_it(extra: str) -> None:
    module, call = CALLERS[extra]
    body = "from mlctl.cli.boundary import error_boundary\nwith error_boundary():\n" + textwrap.indent(
        textwrap.dedent(call), "    "
    )
    result = run_without(module, body)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'mlctl[{extra}]'" in lines[0] and module in lines[0]
    assert "Traceback" not in result.stderr


def test_monitor_report_without_matplotlib_fails_before_running(tmp_path: Path) -> None:
    from plan.world import write_repo

    root = write_repo(tmp_path / "repo")
    result = run_without(
        "matplotlib",
        """
        from mlctl.cli.main import main
        main(sys.argv[2:])
        """,
        "-C",
        str(root),
        "monitor",
        "run",
        "-e",
        "dev",
        "--report",
        str(tmp_path / "out"),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: plotting (monitor report histograms, training charts) needs the Python package 'matplotlib', "
        "which is not installed: pip install 'mlctl[report]'"
    ]
    assert not (tmp_path / "out").exists() and not (root / "state" / "dev.json").exists()
