"""The pull-request comment: exact markdown snapshots, the 65,000-character limit (truncate
and numbered parts), and values from ${VAR} shown as (sensitive)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import edit, invoke
from mlctl.plan.comment import LIMIT, MARKER, Report, build_comment
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange

SNAPSHOTS = Path(__file__).parent / "snapshots"


def snapshot(name: str, text: str) -> None:
    """Compare with tests/snapshots/NAME exactly (MLCTL_UPDATE_SNAPSHOTS=1 rewrites them)."""
    path = SNAPSHOTS / name
    if os.environ.get("MLCTL_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.is_file(), f"missing snapshot {path} (run with MLCTL_UPDATE_SNAPSHOTS=1)"
    assert text == path.read_text()


def plan(env: str, changes: list[ResourceChange], **kw: object) -> Plan:
    return Plan(
        environment=env, created_at="2026-01-01T00:00:00Z", spec_digest="d", resource_changes=changes, **kw
    )


EVALUATION = {
    "identity": "sha256:0123456789abcdef",
    "run_id": "20260101T000000000000Z-abcdef",
    "metrics": {"auc": 0.912, "accuracy": 0.871, "latency_p95_ms": 4.2},
    "gates": [
        {
            "gate": "min_accuracy",
            "metric": "accuracy",
            "op": ">=",
            "threshold": 0.85,
            "value": 0.871,
            "passed": True,
        },
        {"gate": "min_auc", "metric": "auc", "op": ">=", "threshold": 0.9, "value": 0.912, "passed": True},
        {
            "gate": "max_regression",
            "metric": "auc",
            "op": ">=",
            "threshold": 0.915,
            "value": 0.912,
            "passed": False,
        },
    ],
    "passed": False,
    "artifact": {"uri": "a/model.joblib", "sha256": "f" * 64, "size": 1},
    "production": {"version": 5, "metrics": {"auc": 0.925, "accuracy": 0.86, "latency_p95_ms": 3.9}},
    "cached": False,
}


def prod_plan() -> Plan:
    return plan(
        "prod",
        [
            ResourceChange(
                address="model_version.churn-predictor",
                type="model_version",
                name="churn-predictor",
                actions=["train"],
                before={"version": 5},
                after={
                    "identity": EVALUATION["identity"],
                    "version": UNKNOWN,
                    "metrics": {},
                    "evaluation": EVALUATION,
                },
                reason="training spec changed",
                details=[
                    "~ training.params.max_depth: 15 -> 12",
                    '~ tags.owner: "alice@example.com" -> "${OWNER_EMAIL}"',
                    "auc 0.912 (prod v5 0.925, -0.013) >= 0.915 (max_regression) FAIL",
                ],
                blocking=["churn-predictor candidate fails gate max_regression: auc 0.912 >= 0.915 FAIL"],
            ),
            ResourceChange(
                address="stage.churn-predictor.production",
                type="stage",
                name="churn-predictor",
                actions=["promote"],
                before={"version": 5},
                after={"version": UNKNOWN},
                reason="production moves to the new version if it passes its gates",
            ),
            ResourceChange(
                address="endpoint.churn-api",
                type="endpoint",
                name="churn-api",
                actions=["update", "deploy"],
                before={"url": "https://${API_HOST}/v1", "version": 5},
                after={"url": "https://${API_HOST}/v2", "version": UNKNOWN},
                reason="serve churn-predictor production (known after apply)",
                details=["~ url: https://${API_HOST}/v1 -> https://${API_HOST}/v2"],
            ),
        ],
        warnings=["token ${API_TOKEN} expires soon"],
    )


def dev_plan() -> Plan:
    return plan(
        "dev",
        [
            ResourceChange(
                address="dataset.customer_activity",
                type="dataset",
                name="customer_activity",
                actions=["check"],
                reason="data changed",
            )
        ],
        drift=[
            ResourceChange(
                address="dataset.customer_activity",
                type="dataset",
                name="customer_activity",
                actions=["update"],
                reason="the data at data/customer_activity.csv changed since the last apply",
            )
        ],
    )


def test_snapshot_single_environment() -> None:
    [body] = build_comment(Report([prod_plan()]))
    snapshot("comment_single.md", body)
    assert body.startswith(MARKER + "\n")


def test_snapshot_several_environments() -> None:
    quiet = plan("staging", [])
    [body] = build_comment(Report([dev_plan(), prod_plan(), quiet], base="origin/main", head="a" * 40))
    snapshot("comment_multi.md", body)


def test_snapshot_nothing_changed() -> None:
    [body] = build_comment(Report([], base="origin/main", head="b" * 40))
    snapshot("comment_empty.md", body)


def test_summary_comes_first_with_counts_and_blocking_gates() -> None:
    [body] = build_comment(Report([dev_plan(), prod_plan()]))
    summary_at = body.index("| action | `dev` | `prod` |")
    assert summary_at < body.index("### `dev`") < body.index("### `prod`")
    assert body.index("**Would block apply:**") < body.index("### `dev`")
    assert "| * train | 0 | 1 |" in body and "| ? check | 1 | 0 |" in body
    assert ":x: apply would fail" in body


def test_sensitive_values_are_masked() -> None:
    [body] = build_comment(Report([prod_plan()]))
    assert "${" not in body and "API_HOST" not in body and "OWNER_EMAIL" not in body
    assert '~ tags.owner: "alice@example.com" -> (sensitive)' in body
    assert "~ url: (sensitive) -> (sensitive)" in body
    assert "token (sensitive) expires soon" in body


def big_plan(env: str, n: int) -> Plan:
    return plan(
        env,
        [
            ResourceChange(
                address=f"feature_view.view_{i:05d}",
                type="feature_view",
                name=f"view_{i:05d}",
                actions=["update"],
                details=[f"~ features.f{j}: int -> float" for j in range(5)],
            )
            for i in range(n)
        ],
    )


def balanced(body: str) -> bool:
    return body.count("```") % 2 == 0 and body.count("<details>") == body.count("</details>")


def test_truncate_keeps_summary_and_points_to_the_artifact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/ml")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    report = Report([big_plan("dev", 1500), prod_plan()])
    [body] = build_comment(report)
    assert len(body) <= LIMIT and balanced(body)
    assert "Plan: 0 to add, 1500 to change" in body and "### `prod`" in body
    assert "**Would block apply:**" in body  # the verdict of the second environment survives
    shown = len(re.findall(r"^  # \S+ will be", body, flags=re.M))
    missing = re.search(r":scissors: (\d+) changes not shown", body)
    assert missing and shown + int(missing.group(1)) == 1500 + 3
    assert "https://github.com/acme/ml/actions/runs/42" in body


def test_split_into_numbered_parts() -> None:
    report = Report([big_plan("dev", 3000), prod_plan()])
    bodies = build_comment(report, mode="split")
    assert len(bodies) >= 3
    for number, body in enumerate(bodies, start=1):
        assert len(body) <= LIMIT and balanced(body), number
        assert f"(part {number} of {len(bodies)})" in body
    assert bodies[0].startswith(MARKER) and bodies[1].startswith("<!-- mlctl-plan part 2 -->")
    addresses = [a for body in bodies for a in re.findall(r"~ update (feature_view\.view_\d+)", body)]
    assert addresses == [f"feature_view.view_{i:05d}" for i in range(3000)]  # each once, in order
    assert "endpoint.churn-api" in bodies[-1]


def test_a_single_huge_change_is_cut_not_lost() -> None:
    huge = plan(
        "dev",
        [
            ResourceChange(
                address="model.m", type="model", name="m", actions=["update"], details=["x" * 80] * 2000
            )
        ],
    )
    for mode in ("truncate", "split"):
        bodies = build_comment(Report([huge]), limit=20_000, mode=mode)  # type: ignore[arg-type]
        assert all(len(b) <= 20_000 and balanced(b) for b in bodies)
        assert "too long for a comment" in bodies[0]


def test_small_report_is_one_comment_under_any_mode() -> None:
    assert len(build_comment(Report([prod_plan()]), mode="split")) == 1


def test_cli_masks_secrets_from_the_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_NAME", "super-secret-team")
    edit(repo / "environments" / "dev" / "models.yaml", "team: growth", "team: ${TEAM_NAME}")
    result = invoke(repo, "plan", "-e", "dev", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "super-secret-team" not in result.stdout and "TEAM_NAME" not in result.stdout
    assert "(sensitive)" in result.stdout
    assert result.stdout.startswith(MARKER)
