"""Fuzzing the desired state: no YAML a pull request can write crashes mlctl, changes the state
or prints a secret.

Hypothesis mutates the example repository's ``environments/dev`` (and its provider file):
wrong types, deep nesting, huge and non-finite numbers, unicode, missing keys, extra keys,
lists for mappings, ``${VAR}`` in odd places, whole files replaced, a section repeated as a
list in another file. Each case runs ``mlctl validate`` and ``mlctl plan`` through the real root
group (so the error boundary applies) and asserts: exit code 0 or 1 (never 3), no traceback,
every error is printed as ``Error: ...`` lines, the state file is byte-identical, and the value
of the ``${MLCTL_FUZZ_SECRET}`` the mutations interpolate never appears in the output.

CI runs a few hundred derandomized cases (about a minute); ``MLCTL_FUZZ_EXAMPLES=5000`` (or any
count) runs more, locally, with a fresh seed per run when ``MLCTL_FUZZ_SEED`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conftest import invoke

EXAMPLES = int(os.environ.get("MLCTL_FUZZ_EXAMPLES", "250"))
SECRET = "fuzz-s3cr3t-Value_42"
ENV_DIR = "environments/dev"
PROVIDER = "providers/local.yaml"

# --------------------------------------------------------------------------- values

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_odd_text = st.sampled_from(
    [
        "",
        " ",
        "${MLCTL_FUZZ_SECRET}",
        "x-${MLCTL_FUZZ_SECRET}-y",
        "${MLCTL_FUZZ_UNSET}",
        "${",
        "$${MLCTL_FUZZ_SECRET}",
        "s3://bucket/${MLCTL_FUZZ_SECRET}",
        "s3://${MLCTL_FUZZ_SECRET}/key.csv",
        "s3://other-bucket/data.csv",
        "../../etc/passwd",
        "/etc/passwd",
        ".git/config",
        "state/dev.json",
        ".mlctl/runs/x.csv",
        "data/../data/churn_labels.csv",
        "99999999999999999999d",
        "0d",
        "1d",
        "36501d",
        "* * * * * * *",
        "0 6 * * 1",
        "@daily",
        "os.system",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.linear_model.Ridge",
        "customer_features:avg_order_value",
        "ünïcødé-名前-🚀",
        "a" * 500,
        "\t\n",
        "yes",
        "null",
        "~",
        "{a: 1}",
        "[1, 2]",
        "*anchor",
        "!!python/object:os.system",
        "local",
        "s3",
        "k8s",
        "redis",
        "production",
        "staging",
        "latest",
        "none",
    ]
)
_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 2**63, -(2**63), 10**100, 0.0, -0.0, 1e308, -1e308, 0.5, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _text, _odd_text)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_text, _odd_text), inner, max_size=4),
    ),
    max_leaves=12,
)

DEEP = "__MLCTL_FUZZ_DEEP_{}__"
OUTCOMES: Counter[str] = Counter()
"""``validate:0``, ``plan:1``...: how the cases ended (printed at the end; see the last test)."""


def _deep_text(depth: int, kind: str) -> str:
    """A flow-style value nested ``depth`` levels (written as text: dumping it would recurse)."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return "{a: " * depth + "1" + "}" * depth


# --------------------------------------------------------------------------- mutations


MUTATIONS = [
    *["tweak"] * 6,  # a value of the same type: keeps many cases valid, so plan runs deep
    "replace",
    "rename",
    "delete",
    "extra",
    "as_list",
    "wrap",
    "deep",
    "secret",
    "number",
    "unicode",
]


def _strings(node: Any) -> list[str]:
    """Every string in a document (keys and values): the names a tweak may swap in."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(set(found)) or ["x"]


def _similar(node: Any, root: Any) -> st.SearchStrategy[Any]:
    """Values of ``node``'s type, mostly in the ranges the schema accepts."""
    if isinstance(node, bool):
        return st.booleans()
    if isinstance(node, int):
        return st.one_of(st.integers(0, 300), st.integers(-5, 5), _numbers)
    if isinstance(node, float):
        return st.one_of(st.floats(0, 1), st.floats(-10, 1000, allow_nan=False), _numbers)
    if isinstance(node, str):
        return st.one_of(st.sampled_from(_strings(root)), _odd_text)
    if isinstance(node, list):
        return st.lists(st.sampled_from(node), max_size=len(node) + 1) if node else st.just([])
    if isinstance(node, dict):
        keys = sorted(node)
        return (
            st.lists(st.sampled_from(keys), unique=True).map(lambda ks: {k: node[k] for k in ks})
            if keys
            else st.just({})
        )
    return _scalars


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


def _pick_path(data: st.DataObject, root: Any) -> list[Any]:
    """A path from ``root`` to one of its nodes, drawn one step at a time."""
    path: list[Any] = []
    node = root
    while True:
        children = _children(node)
        if not children or data.draw(st.integers(0, 3), label="stop") == 0:
            return path
        key = data.draw(st.sampled_from(children), label="child")
        path.append(key)
        node = node[key]


def _get(root: Any, path: list[Any]) -> Any:
    for key in path:
        root = root[key]
    return root


def _set(root: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _mutate(data: st.DataObject, root: Any, deep: dict[str, str]) -> Any:
    """One mutation of the document ``root`` (returns the new root)."""
    path = _pick_path(data, root)
    node = _get(root, path)
    kind = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    if kind == "tweak":
        return _set(root, path, data.draw(_similar(node, root), label="similar"))
    if kind == "replace":
        return _set(root, path, data.draw(_values, label="value"))
    if kind == "rename" and path and isinstance(_get(root, path[:-1]), dict):
        parent = _get(root, path[:-1])
        new = data.draw(st.one_of(st.sampled_from(_strings(root)), _odd_text, _text), label="name")
        parent[new] = parent.pop(path[-1])
        return root
    if kind == "delete" and path:
        parent = _get(root, path[:-1])
        del parent[path[-1]]
        return root
    if kind == "extra" and isinstance(node, dict):
        node[data.draw(st.one_of(_text, _odd_text), label="key")] = data.draw(_values, label="value")
        return root
    if kind == "as_list" and isinstance(node, dict):
        items = data.draw(st.booleans(), label="items")
        return _set(root, path, [[k, v] for k, v in node.items()] if items else list(node.values()))
    if kind == "wrap":
        return _set(root, path, data.draw(st.sampled_from([[node], {"x": node}, [[node]]]), label="wrap"))
    if kind == "deep":
        token = DEEP.format(len(deep))
        depth = data.draw(st.sampled_from([20, 40, 300, 900]), label="depth")
        deep[token] = _deep_text(depth, data.draw(st.sampled_from(["list", "map"]), label="shape"))
        return _set(root, path, token)
    if kind == "secret":
        text = data.draw(
            st.sampled_from(
                [
                    "${MLCTL_FUZZ_SECRET}",
                    "pre-${MLCTL_FUZZ_SECRET}",
                    "s3://bucket/${MLCTL_FUZZ_SECRET}/x.csv",
                    "${MLCTL_FUZZ_SECRET} ${MLCTL_FUZZ_SECRET}",
                ]
            ),
            label="secret",
        )
        return _set(root, path, text)
    if kind == "number":
        return _set(root, path, data.draw(_numbers, label="number"))
    if kind == "unicode":
        return _set(root, path, data.draw(_text, label="text"))
    return _set(root, path, None)


def _dump(document: Any, deep: dict[str, str]) -> str:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=False)
    for token, value in deep.items():
        text = text.replace(token, value)
    return text


# --------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def fuzz_repo(applied_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One applied example repository the cases rewrite (and restore) in turn."""
    root = tmp_path_factory.mktemp("fuzz") / "repo"
    shutil.copytree(applied_template, root)
    yield root


@pytest.fixture(scope="module")
def fuzz_env() -> Iterator[None]:
    saved = os.environ.get("MLCTL_FUZZ_SECRET")
    os.environ["MLCTL_FUZZ_SECRET"] = SECRET
    os.environ.pop("MLCTL_FUZZ_UNSET", None)
    yield
    if saved is None:
        os.environ.pop("MLCTL_FUZZ_SECRET", None)
    else:
        os.environ["MLCTL_FUZZ_SECRET"] = saved


def _snapshot(repo: Path) -> dict[str, bytes]:
    state = repo / "state"
    return {p.name: p.read_bytes() for p in sorted(state.iterdir()) if p.is_file()}


def _check(repo: Path, args: list[str], state_before: dict[str, bytes], case: str) -> None:
    result = invoke(repo, *args)
    output = result.stdout + result.stderr
    where = f"mlctl {' '.join(args)} on\n{case}\n--- output ---\n{output[-3000:]}"
    assert result.exit_code in (0, 1), where
    assert "Traceback" not in output and "mlctl crashed" not in output, where
    assert SECRET not in output, where
    if result.exit_code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert errors, where
    assert _snapshot(repo) == state_before, f"state changed: {where}"
    OUTCOMES[f"{args[0]}:{result.exit_code}"] += 1


def _settings() -> Any:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize="MLCTL_FUZZ_SEED" not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )


def _maybe_seed(test: Any) -> Any:
    value = os.environ.get("MLCTL_FUZZ_SEED")
    return seed(int(value))(test) if value else test


@_maybe_seed
@_settings()
@given(data=st.data())
def test_mutated_environment_never_crashes(fuzz_repo: Path, fuzz_env: None, data: st.DataObject) -> None:
    repo = fuzz_repo
    env_dir = repo / ENV_DIR
    originals = {p: p.read_bytes() for p in sorted(env_dir.iterdir())}
    originals[repo / PROVIDER] = (repo / PROVIDER).read_bytes()
    targets = [p for p in originals if p.suffix == ".yaml"]
    extra_files: list[Path] = []
    state_before = _snapshot(repo)
    written: dict[str, str] = {}
    documents: dict[Path, Any] = {}
    deeps: dict[Path, dict[str, str]] = {}
    try:
        for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3]), label="mutations")):
            how = data.draw(
                st.sampled_from(["tree"] * 6 + ["file", "section_twice", "new_provider"]), label="how"
            )
            if how == "tree":
                target = data.draw(st.sampled_from(targets), label="file")
                if target not in documents:
                    documents[target] = yaml.safe_load(originals[target])
                deep = deeps.setdefault(target, {})
                documents[target] = _mutate(data, documents[target], deep)
                text = _dump(documents[target], deep)
            elif how == "file":
                target = data.draw(st.sampled_from(targets), label="file")
                documents[target] = data.draw(_values, label="document")
                deeps[target] = {}
                text = _dump(documents[target], {})
            elif how == "section_twice":
                section = data.draw(
                    st.sampled_from(
                        ["models", "datasets", "feature_views", "backend", "providers", "monitors"]
                    ),
                    label="section",
                )
                target = env_dir / "zz-extra.yaml"
                value = data.draw(st.one_of(st.lists(_scalars, max_size=3), _scalars, _values), label="value")
                text = _dump({section: value}, {})
            else:
                target = repo / "providers" / "zz-extra.yaml"
                text = _dump(
                    data.draw(
                        st.one_of(
                            st.just(
                                {"type": "s3", "bucket": "other-bucket", "endpoint_url": "http://attacker"}
                            ),
                            st.just({"type": "s3", "bucket": "b", "prefix": "${MLCTL_FUZZ_SECRET}"}),
                            st.just({"type": "local", "root": "../outside"}),
                            _values,
                        ),
                        label="provider",
                    ),
                    {},
                )
            if target not in originals:
                extra_files.append(target)
            target.write_text(text, encoding="utf-8")
            written[str(target)] = text
        case = "\n".join(f"# {name}\n{text[:1500]}" for name, text in written.items())
        _check(repo, ["validate", "-e", "dev"], state_before, case)
        fmt = data.draw(st.sampled_from(["text", "markdown", "json"]), label="format")
        _check(repo, ["plan", "-e", "dev", "--format", fmt], state_before, case)
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
        for path in extra_files:
            path.unlink(missing_ok=True)


def test_fuzz_repository_is_restored(fuzz_repo: Path) -> None:
    """After the fuzzing the example validates and plans as before (the cases restore it), and
    the cases were not degenerate: some passed validation, some failed it."""
    print(f"\nfuzz outcomes ({EXAMPLES} examples): {dict(sorted(OUTCOMES.items()))}")
    if OUTCOMES and EXAMPLES >= 50:
        assert OUTCOMES["validate:0"] and OUTCOMES["validate:1"], OUTCOMES
    assert invoke(fuzz_repo, "validate", "-e", "dev").exit_code == 0
    plan = invoke(fuzz_repo, "plan", "-e", "dev", "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)
