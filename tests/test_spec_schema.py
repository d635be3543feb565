"""JSON Schema export validates merged environment documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlctl.spec import json_schema, load_environment, provider_json_schema

VALID = Path(__file__).parent / "spec_cases" / "valid"


def merged_document() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted((VALID / "environments" / "dev").glob("*.yaml")):
        for key, value in (yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}).items():
            merged.setdefault(key, {}).update(value)
    # BaseLoader keeps every scalar a string (and `on` a key); load typed values instead
    typed: dict[str, Any] = {}
    for path in sorted((VALID / "environments" / "dev").glob("*.yaml")):
        text = path.read_text().replace(" on:", " 'on':")
        for key, value in (yaml.safe_load(text) or {}).items():
            typed.setdefault(key, {}).update(value)
    assert set(typed) == set(merged)
    return typed


def test_schema_metadata() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    dataset = schema["$defs"]["Dataset"]["properties"]
    assert "schema" in dataset and "schema_" not in dataset
    json.dumps(schema)  # serializable
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_validates_the_merged_example(tmp_path: Path) -> None:
    document = merged_document()
    jsonschema.Draft202012Validator(json_schema()).validate(document)
    # and the loader agrees it is valid
    shutil.copytree(VALID, tmp_path / "repo")
    load_environment(tmp_path / "repo", "dev", environ={})


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["models"]["churn-predictor"]["training"].update(test_size=1.5), "1.5"),
        (lambda d: d["models"]["churn-predictor"]["training"].update(n_estimator=3), "n_estimator"),
        (lambda d: d["monitors"]["churn-drift"].update(kind="drfit"), "drfit"),
        (lambda d: d["feature_views"]["customer_features"].update(ttl="1 day"), "1 day"),
        (
            lambda d: d["models"]["churn-predictor"]["training"].update(estimator="os.system"),
            "os.system",
        ),
        (lambda d: d["endpoints"]["churn-api"].update(replicas=0), "0"),
    ],
)
def test_schema_rejects_bad_documents(mutate: Any, fragment: str) -> None:
    document = merged_document()
    mutate(document)
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = list(validator.iter_errors(document))
    assert errors
    assert any(fragment in e.message for e in errors), [e.message for e in errors]


def test_provider_schema() -> None:
    schema = provider_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"type": "s3", "bucket": "b"})
    validator.validate({"type": "local"})
    assert list(validator.iter_errors({"type": "s3"}))
    assert list(validator.iter_errors({"type": "ftp"}))
