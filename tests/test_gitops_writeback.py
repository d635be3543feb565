"""set_stage_pin: rewrite one stage pin, keep everything else of the YAML file."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mlctl.errors import MlctlError, NotFoundError
from mlctl.gitops.writeback import set_stage_pin

LONG = "a very long description that goes on and on and on, well beyond eighty characters"
BLOCK = f"""\
# Production models. Owned by the growth team.
models:
    churn-predictor:   # the flagship
        training:
            labels: churn_labels
            estimator: sklearn.ensemble.RandomForestClassifier
            params: {{n_estimators: 200, max_depth: 15, class_weight: balanced}}
            features:
              - customer_features:total_orders_30d
              - "customer_features:avg_order_value"
        gates: {{min_auc: 0.90, max_regression: 0.01}}
        stages:
            staging: latest     # follows the training spec
            production: 5       # pinned after INC-42
        tags: {{team: 'growth', description: "{LONG}"}}
    upsell:
        stages:
            production: staging
# end of file
"""

FLOW = """\
models:
  churn-predictor:
    training: {labels: churn_labels, target: churned}
    stages: {staging: latest, production: 5}  # keep me
    retrain: {schedule: "0 6 * * 1", on: [drift, new_data]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_bytes(text.encode())
    return path


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """(removed, added) line pairs of the unified diff."""
    diff = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    removed = [line[1:] for line in diff if line.startswith("-")]
    added = [line[1:] for line in diff if line.startswith("+")]
    assert len(removed) == len(added)
    return list(zip(removed, added, strict=True))


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_block_style_only_the_pin_line_changes(tmp_path: Path) -> None:
    path = write(tmp_path, BLOCK)
    assert set_stage_pin(path, "churn-predictor", "production", 4) is True
    after = path.read_text()
    assert changed_lines(BLOCK, after) == [
        (
            "            production: 5       # pinned after INC-42",
            "            production: 4       # pinned after INC-42",
        ),
    ]
    assert load(path)["models"]["churn-predictor"]["stages"] == {
        "staging": "latest",
        "production": 4,
    }


def test_flow_style_stays_flow_and_comment_kept(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)
    assert set_stage_pin(path, "churn-predictor", "production", "staging") is True
    assert changed_lines(FLOW, path.read_text()) == [
        (
            "    stages: {staging: latest, production: 5}  # keep me",
            "    stages: {staging: latest, production: staging}  # keep me",
        ),
    ]


def test_unchanged_value_returns_false_and_does_not_touch_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BLOCK)
    mtime = path.stat().st_mtime_ns
    assert set_stage_pin(path, "churn-predictor", "production", 5) is False
    assert set_stage_pin(path, "upsell", "production", "staging") is False
    assert path.read_text() == BLOCK
    assert path.stat().st_mtime_ns == mtime


def test_type_change_counts_as_a_change(tmp_path: Path) -> None:
    path = write(tmp_path, 'models:\n  m:\n    stages:\n      production: "5"\n')
    assert set_stage_pin(path, "m", "production", 5) is True
    assert path.read_text() == "models:\n  m:\n    stages:\n      production: 5\n"


def test_quote_style_is_kept_for_strings(tmp_path: Path) -> None:
    text = "models:\n  m:\n    stages: {staging: 'latest', production: \"3\"}\n"
    path = write(tmp_path, text)
    assert set_stage_pin(path, "m", "staging", "none") is True
    assert set_stage_pin(path, "m", "production", "staging") is True
    assert path.read_text() == ("models:\n  m:\n    stages: {staging: 'none', production: \"staging\"}\n")


def test_strings_that_yaml_would_misread_are_quoted(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  m:\n    stages:\n      staging: latest\n")
    set_stage_pin(path, "m", "staging", "no")
    assert load(path)["models"]["m"]["stages"]["staging"] == "no"
    set_stage_pin(path, "m", "staging", "7")
    assert load(path)["models"]["m"]["stages"]["staging"] == "7"
    set_stage_pin(path, "m", "staging", "a: b, c")
    assert load(path)["models"]["m"]["stages"]["staging"] == "a: b, c"


def test_creates_stages_block_with_the_files_indentation(tmp_path: Path) -> None:
    text = BLOCK.replace(
        "        stages:\n            staging: latest     # follows the training spec\n"
        "            production: 5       # pinned after INC-42\n",
        "",
    )
    path = write(tmp_path, text)
    assert set_stage_pin(path, "churn-predictor", "production", 2) is True
    after = path.read_text()
    assert "        stages:\n            production: 2\n" in after
    diff = list(difflib.unified_diff(text.splitlines(), after.splitlines(), lineterm=""))
    assert [line for line in diff if line.startswith("-") and not line.startswith("---")] == []
    for kept in (
        "# Production models. Owned by the growth team.",
        "    churn-predictor:   # the flagship",
        "              - customer_features:total_orders_30d",
        '              - "customer_features:avg_order_value"',
        "# end of file",
    ):
        assert kept in after
    long_line = next(line for line in text.splitlines() if LONG in line)
    assert long_line in after, "long lines are not re-wrapped"


def test_adds_a_stage_to_an_existing_flow_map(tmp_path: Path) -> None:
    path = write(tmp_path, FLOW)
    assert set_stage_pin(path, "churn-predictor", "canary", 3) is True
    after = path.read_text()
    assert "stages: {staging: latest, production: 5, canary: 3}" in after
    assert "# keep me" in after
    assert 'retrain: {schedule: "0 6 * * 1", on: [drift, new_data]}' in after


ALIGNED = """\
models:
  m:
    stages:
      staging: latest           # the version the current spec and data define
      production: staging       # "staging" follows staging; a number pins that version
      canary: 5 # tight
"""


def test_a_trailing_comment_keeps_its_column(tmp_path: Path) -> None:
    """The example's comments sit in one column: a shorter pin pads, a longer one eats the
    padding, and setting the old value back gives the original bytes."""
    path = write(tmp_path, ALIGNED)
    assert set_stage_pin(path, "m", "production", 1) is True
    assert changed_lines(ALIGNED, path.read_text()) == [
        (
            '      production: staging       # "staging" follows staging; a number pins that version',
            '      production: 1             # "staging" follows staging; a number pins that version',
        ),
    ]
    assert set_stage_pin(path, "m", "production", "staging") is True
    assert path.read_text() == ALIGNED


def test_a_pin_that_reaches_the_comment_leaves_one_space(tmp_path: Path) -> None:
    path = write(tmp_path, ALIGNED)
    assert set_stage_pin(path, "m", "staging", "a-much-longer-name-than-the-gap") is True
    assert set_stage_pin(path, "m", "canary", 12) is True
    assert changed_lines(ALIGNED, path.read_text()) == [
        (
            "      staging: latest           # the version the current spec and data define",
            "      staging: a-much-longer-name-than-the-gap # the version the current spec and data define",
        ),
        ("      canary: 5 # tight", "      canary: 12 # tight"),
    ]
    assert load(path)["models"]["m"]["stages"]["canary"] == 12


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    text = "models:\r\n  m:\r\n    stages:\r\n      production: 1\r\n"
    path = write(tmp_path, text)
    set_stage_pin(path, "m", "production", 2)
    assert path.read_bytes() == text.replace("1", "2").encode()


def test_unknown_model_and_bad_files(tmp_path: Path) -> None:
    path = write(tmp_path, BLOCK)
    with pytest.raises(NotFoundError, match=r"model nope is not defined .*churn-predictor"):
        set_stage_pin(path, "nope", "production", 1)
    assert path.read_text() == BLOCK
    with pytest.raises(NotFoundError, match="no such file"):
        set_stage_pin(tmp_path / "missing.yaml", "m", "production", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {m: [\n")
    with pytest.raises(MlctlError, match="invalid YAML"):
        set_stage_pin(bad, "m", "production", 1)
    odd = tmp_path / "odd.yaml"
    odd.write_text("models:\n  m:\n    stages: [1, 2]\n")
    with pytest.raises(MlctlError, match="stages is not a mapping"):
        set_stage_pin(odd, "m", "production", 1)
    nomodels = tmp_path / "data.yaml"
    nomodels.write_text("datasets: {}\n")
    with pytest.raises(NotFoundError, match="no models in this file"):
        set_stage_pin(nomodels, "m", "production", 1)
