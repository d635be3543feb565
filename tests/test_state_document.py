"""The state document's canonical JSON: same state, same bytes; every float survives."""

from __future__ import annotations

import json
import math

from mlctl.state.document import Artifact, ModelVersion, ResourceState, State


def _state(names: list[str]) -> State:
    state = State(environment="dev", lineage="fixed")
    for name in names:
        state.resources[f"model.{name}"] = ResourceState(
            type="model", name=name, spec={"b": 1, "a": "é"}, updated_at="t"
        )
        registry = state.registry(name)
        registry.versions.append(
            ModelVersion(
                version=1,
                identity="id",
                status="passed",
                metrics={
                    "roc_auc": math.nan,
                    "loss": math.inf,
                    "neg": -math.inf,
                    "tiny": 1e-05,
                    "auc": 0.8125,
                },
                artifact=Artifact(uri="/m", sha256="0" * 64, size=1),
                created_at="t",
            )
        )
    return state


def test_bytes_do_not_depend_on_insertion_order() -> None:
    assert _state(["b", "a"]).to_bytes() == _state(["a", "b"]).to_bytes()


def test_text_is_sorted_indented_strict_json() -> None:
    text = _state(["a"]).to_json()
    assert text.endswith("}\n")
    data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # no bare NaN
    assert list(data) == sorted(data)
    assert '\n  "environment": "dev",\n' in text
    assert '"a": "é"' in text  # UTF-8 as is


def test_non_finite_metrics_read_back_as_the_same_floats() -> None:
    metrics = State.from_json(_state(["a"]).to_json()).models["a"].versions[0].metrics
    assert math.isnan(metrics["roc_auc"])
    assert metrics["loss"] == math.inf and metrics["neg"] == -math.inf
    assert metrics["tiny"] == 1e-05 and metrics["auc"] == 0.8125


def test_a_state_written_by_the_older_writer_still_reads() -> None:
    old = json.dumps(_state(["a"]).model_dump(mode="json"), indent=2, sort_keys=True)  # bare NaN
    assert "NaN" in old
    again = State.from_json(old)
    assert again.to_bytes() == _state(["a"]).to_bytes()
