"""Materialization through plan/apply and the CLI: incremental windows recorded in state,
rebuilds on schema changes and backfills, nothing wiped by unrelated applies, deletion
protection, and `mlctl features list|materialize|get`."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import local_redis
from conftest import edit, invoke, state_of
from feature_repo import ROWS, write_repo

redis_server = local_redis.redis_server  # a session fixture: the port of a throwaway redis-server


def apply(root: Path, *extra: str) -> Any:
    result = invoke(root, "apply", "-e", "dev", "--auto-approve", *extra)
    assert result.exit_code == 0, result.output
    return result


def plan(root: Path) -> dict[str, Any]:
    result = invoke(root, "plan", "-e", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def view_status(root: Path, view: str = "cf") -> dict[str, Any]:
    status: dict[str, Any] = state_of(root)["resources"][f"feature_view.{view}"]["status"]
    return status


def changes(root: Path) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in plan(root)["resource_changes"]}


def online_rows(root: Path, view: str = "cf") -> dict[str, tuple[int, list[Any]]]:
    db = sqlite3.connect(root / ".mlctl" / "online" / "dev.sqlite")
    found = db.execute("SELECT entity_key, event_ns, payload FROM online_features WHERE view = ?", (view,))
    return {k: (ns, json.loads(p)) for k, ns, p in found}


def append_rows(root: Path, *rows: tuple[str, str, Any, Any]) -> None:
    with (root / "data" / "activity.csv").open("a") as out:
        for row in rows:
            out.write(",".join("" if v is None else str(v) for v in row) + "\n")


def test_apply_materializes_and_a_second_apply_writes_nothing(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    first = changes(root)["feature_view.cf"]
    assert first["mlctl"]["verbs"] == ["create", "materialize"]
    assert "first materialization" in first["mlctl"]["reason"]
    text = invoke(root, "plan", "-e", "dev").stdout
    assert "= materialize feature_view.cf" in text
    assert "window: (beginning, latest event at apply time] of activity" in text
    out = apply(root)
    assert "3 of 3 entity rows written" in out.output
    status = view_status(root)
    assert status["entities"] == 3
    assert len(status["windows"]) == 1 and status["windows"][0]["start"] is None
    assert status["watermark"] == "2024-01-05T00:00:00Z"
    assert set(online_rows(root)) == {"a", "b", "c"}
    # nothing changed: no plan, and a forced run writes nothing and keeps the state's windows
    assert plan(root)["resource_changes"] == []
    rerun = invoke(root, "features", "materialize", "-e", "dev")
    assert rerun.exit_code == 0, rerun.output
    assert "0 of 0 entity rows written" in rerun.stdout
    assert view_status(root)["windows"][0] == status["windows"][0]
    assert len(view_status(root)["windows"]) == 2


def test_new_events_are_materialized_incrementally(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    before = view_status(root)
    untouched = online_rows(root)["c"]
    append_rows(root, ("a", "2024-02-01T00:00:00Z", 4, 4.5), ("d", "2024-02-01T00:00:00Z", 9, 9.5))
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["materialize"]
    assert change["mlctl"]["reason"] == "source activity changed"
    assert change["change"]["after"]["window"]["start"] == before["watermark"]
    assert any("incremental" in line for line in change["mlctl"]["details"])
    out = apply(root)
    assert "2 of 2 entity rows written" in out.output
    status = view_status(root)
    assert [w["written"] for w in status["windows"]] == [3, 2]
    assert status["windows"][1]["start"] == before["watermark"]
    assert status["entities"] == 4
    rows = online_rows(root)
    assert rows["a"][1] == [4, 4.5] and rows["d"][1] == [9, 9.5]
    assert rows["c"] == untouched
    assert plan(root)["resource_changes"] == []


def test_changed_history_rebuilds_and_says_why(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    csv = root / "data" / "activity.csv"
    csv.write_text(csv.read_text().replace("c,2024-01-03T00:00:00Z,7,7.5", "c,2024-01-03T00:00:00Z,8,7.5"))
    out = apply(root)
    assert "rebuilt: source rows at or before" in out.output
    assert online_rows(root)["c"][1] == [8, 7.5]
    assert len(view_status(root)["windows"]) == 1


def test_schema_change_is_planned_as_a_rebuild(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    edit(
        root / "environments" / "dev" / "features.yaml",
        "features: {orders: int, value: float}",
        "features: {value: float}",
    )
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["update", "materialize"]
    assert "schema changed: the online view is rebuilt" in change["mlctl"]["reason"]
    apply(root)
    assert online_rows(root)["a"][1] == [3.5]
    store_schema = (
        sqlite3.connect(root / ".mlctl" / "online" / "dev.sqlite")
        .execute("SELECT schema FROM online_views WHERE view = 'cf'")
        .fetchone()[0]
    )
    assert json.loads(store_schema)["features"] == ["value"]


def test_unrelated_changes_never_wipe_materialized_windows(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    windows = view_status(root)["windows"]
    edit(root / "environments" / "dev" / "features.yaml", "ttl: 2d", "ttl: 3d")  # ttl applies at read time
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["update"]
    edit(
        root / "environments" / "dev" / "features.yaml",
        "entities:\n",
        "entities:\n  shop: {join_key: shop_id}\n",
    )
    apply(root)
    assert view_status(root)["windows"] == windows
    assert set(online_rows(root)) == {"a", "b", "c"}


def test_future_events_wait_until_due(tmp_path: Path) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    stamp = soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    root = write_repo(tmp_path, [*ROWS, ("e", stamp, 5, 5.0)])
    apply(root)
    status = view_status(root)
    assert "e" not in online_rows(root)
    assert status["next_event"] is not None
    assert plan(root)["resource_changes"] == []
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["materialize"] and "now due" in change["mlctl"]["reason"]
    apply(root)
    assert "e" in online_rows(root)
    assert view_status(root)["next_event"] is None


def test_going_offline_drops_online_records(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    edit(root / "environments" / "dev" / "features.yaml", "online: true", "online: false")
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["update"] and "drops its online records" in change["mlctl"]["reason"]
    out = apply(root)
    assert "3 online records dropped" in out.output
    assert online_rows(root) == {}
    assert view_status(root) == {}


def test_deleting_an_unused_view_drops_its_records(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    features = root / "environments" / "dev" / "features.yaml"
    features.write_text("entities:\n  customer: {join_key: customer_id}\n")
    change = changes(root)["feature_view.cf"]
    assert change["mlctl"]["verbs"] == ["delete"]
    assert "3 online records are dropped" in change["mlctl"]["reason"]
    apply(root)
    assert online_rows(root) == {}
    assert "feature_view.cf" not in state_of(root)["resources"]


def test_deleting_a_view_a_served_model_uses_is_refused(applied: Path) -> None:
    before = (applied / "state" / "dev.json").read_text()
    features = applied / "environments" / "dev" / "features.yaml"
    edit(features, "  customer_features:\n", "  customer_features_v2:\n")
    models = applied / "environments" / "dev" / "models.yaml"
    models.write_text(models.read_text().replace("- customer_features:", "- customer_features_v2:"))
    result = invoke(applied, "plan", "-e", "dev")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot delete feature_view.customer_features: still used by" in result.stderr
    assert "churn-predictor v1 (production)" in result.stderr
    assert "Traceback" not in result.output
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 1
    assert (applied / "state" / "dev.json").read_text() == before


def test_failed_source_check_blocks_materialization(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    data = root / "environments" / "dev" / "data.yaml"
    data.write_text(data.read_text() + "    checks: {min_rows: 100}\n")
    result = invoke(root, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1
    assert "feature_view.cf: materialization skipped: dataset.activity failed" in result.output
    assert "feature_view.cf" not in state_of(root)["resources"] or not view_status(root)
    assert not (root / ".mlctl" / "online" / "dev.sqlite").exists() or online_rows(root) == {}


def test_example_repository_is_materialized_by_apply(applied: Path) -> None:
    status = view_status(applied, "customer_features")
    assert status["online"] is True and status["entities"] > 1000
    assert status["store"] == "sqlite:.mlctl/online/dev.sqlite"
    result = invoke(applied, "plan", "-e", "dev", "--detailed-exitcode")
    assert result.exit_code == 0, result.output


def test_redis_online_store_end_to_end(tmp_path: Path, redis_server: int) -> None:
    provider = f"type: redis\nport: {redis_server}\nkey_prefix: 'e2e-{tmp_path.name}:'\n"
    root = write_repo(tmp_path, ROWS, ttl=None, online_provider="team", extra_providers={"team": provider})
    apply(root)
    assert view_status(root)["store"].startswith("redis:127.0.0.1:")
    got = invoke(root, "features", "get", "-e", "dev", "--entity", "customer_id=a", "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)[0]["features"]["orders"] == {
        "value": 3,
        "status": "PRESENT",
        "event_timestamp": "2024-01-05T00:00:00Z",
    }
    again = invoke(root, "features", "materialize", "-e", "dev")
    assert "0 of 0 entity rows written" in again.stdout


def test_online_provider_of_the_wrong_type_is_a_config_error(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path, ROWS, online_provider="bucket", extra_providers={"bucket": "type: s3\nbucket: b\n"}
    )
    result = invoke(root, "plan", "-e", "dev")
    assert result.exit_code == 1
    assert "provider 'bucket' is of type s3, which cannot do online" in result.stderr


# -- CLI -----------------------------------------------------------------------------------
def test_features_list_get_and_errors(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS, ttl=None)
    before = invoke(root, "features", "list", "-e", "dev")
    assert before.exit_code == 0
    assert before.stdout.splitlines()[1].split()[:6] == ["cf", "customer", "2", "-", "yes", "-"]
    not_applied = invoke(root, "features", "materialize", "-e", "dev")
    assert not_applied.exit_code == 1
    assert "feature_view.cf is not applied yet: run mlctl apply -e dev first" in not_applied.stderr
    apply(root)
    listed = json.loads(invoke(root, "features", "list", "-e", "dev", "--json").stdout)
    assert listed[0]["materialized"]["entities"] == 3
    text = invoke(
        root, "features", "get", "-e", "dev", "--entity", "customer_id=a", "--entity", "customer_id=x"
    )
    assert text.exit_code == 0, text.output
    assert "customer_id=a" in text.stdout and "orders" in text.stdout
    assert "NOT_FOUND" in text.stdout
    only = invoke(root, "features", "get", "-e", "dev", "cf:value", "--entity", "customer_id=b", "--json")
    assert json.loads(only.stdout)[0]["features"]["value"]["status"] == "NULL_VALUE"
    for args, message in [
        (["get", "-e", "dev", "--entity", "oops"], "must look like key=value"),
        (["get", "-e", "dev", "cf:nope", "--entity", "customer_id=a"], "has no feature 'nope'"),
        (["get", "-e", "dev", "--entity", "shop=1"], "no online feature view is keyed by shop"),
        (["materialize", "-e", "dev", "cff"], "no feature view 'cff'"),
        (["materialize", "-e", "dev", "--end", "yesterday"], "not an ISO-8601 time"),
        (["materialize", "-e", "dev", "--end", "2024-01-01"], "is before the materialized watermark"),
    ]:
        result = invoke(root, "features", *args)
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.strip().count("\n") == 0


def test_materialize_rebuild_and_end(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    apply(root)
    out = invoke(root, "features", "materialize", "-e", "dev", "cf", "--rebuild")
    assert out.exit_code == 0, out.output
    assert "3 of 3 entity rows written" in out.stdout and "rebuilt: rebuild requested" in out.stdout
    windows = view_status(root)["windows"]
    assert len(windows) == 1


def test_help_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mlctl.cli.main import main; import mlctl.cli.features_cmd;"
        "sys.argv=['mlctl','features','--help'];\n"
        "try:\n main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('pandas','sklearn','redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "materialize" in out.stdout


def test_plan_imports_no_pandas_for_feature_views(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = write_repo(tmp_path, ROWS)
    code = (
        "import sys; from pathlib import Path; from mlctl.workspace import open_workspace;"
        "from mlctl.plan.planner import make_plan;"
        f"ws = open_workspace(Path({str(root)!r}), 'dev'); p = make_plan(ws.spec, None, None);"
        "print([c.address for c in p.resource_changes if 'materialize' in c.actions],"
        " 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['feature_view.cf'] False"
