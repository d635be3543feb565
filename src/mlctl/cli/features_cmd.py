"""``mlctl features list|materialize|get``: the feature store from the command line.

Light at import (click only): the store, pandas and the state machinery load inside commands.
"""

from __future__ import annotations

from typing import Any

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, repo_of


@click.group("features")
def command() -> None:
    """Feature views: list them, materialize them online, read online values."""


@command.command("list")
@ENV
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, env: str, as_json: bool) -> None:
    """Feature views with their ttl, online status, watermark and online entity count."""
    from mlctl.cli.output import echo_json
    from mlctl.operations.feature_views import feature_views
    from mlctl.workspace import open_workspace

    views = feature_views(open_workspace(repo_of(ctx), env))
    if as_json:
        echo_json(views)
        return
    if not views:
        click.echo(f"No feature views in environment '{env}'.")
        return
    click.echo(
        f"{'VIEW':<24} {'ENTITIES':<16} {'FEATURES':>8} {'TTL':>6} {'ONLINE':>6} {'ROWS':>9}  WATERMARK"
    )
    for view in views:
        done = view["materialized"] or {}
        click.echo(
            f"{view['name']:<24} {','.join(view['entities']):<16} {len(view['features']):>8} "
            f"{view['ttl'] or '-':>6} {'yes' if view['online'] else 'no':>6} "
            f"{done.get('entities') if done.get('entities') is not None else '-':>9}  "
            f"{done.get('watermark') or '-'}"
        )


@command.command("materialize")
@ENV
@click.argument("views", nargs=-1, metavar="[VIEW]...")
@click.option("--end", metavar="TIME", help="Materialize events up to TIME (ISO-8601, default: now).")
@click.option("--rebuild", is_flag=True, help="Drop the views' online records and write them again.")
@LOCK_TIMEOUT
@click.pass_context
def materialize_cmd(
    ctx: click.Context, env: str, views: tuple[str, ...], end: str | None, rebuild: bool, lock_timeout: float
) -> None:
    """Bring online views up to date now, incrementally (default: every online view).

    Takes the environment's lock and records the new windows in state, exactly as apply does.
    """
    from mlctl import operations
    from mlctl.errors import MlctlError
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    options = operations.MaterializeOptions(views=views, end=end, rebuild=rebuild, lock_timeout=lock_timeout)
    result = operations.materialize(ws, options)
    for outcome in result.outcomes:
        if outcome.status is operations.Status.OK:
            click.echo(f"{outcome.address}: {outcome.message}")
    if not result.ok:
        raise MlctlError("\n".join(str(d) for d in result.errors))


def _parse_entity(text: str) -> dict[str, Any]:
    from mlctl.errors import MlctlError

    row: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise MlctlError(f"--entity '{text}' must look like key=value (key2=value2,... for several keys)")
        row[key.strip()] = value.strip()
    return row


@command.command("get")
@ENV
@click.argument("features", nargs=-1, metavar="[VIEW[:FEATURE]]...")
@click.option(
    "--entity",
    "entities",
    multiple=True,
    required=True,
    metavar="KEY=VALUE",
    help="An entity row (repeat for several; KEY=VALUE,KEY2=VALUE2 for several join keys).",
)
@click.option("--at", metavar="TIME", help="Request time the ttl is measured against (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with status and event time per value.")
@click.pass_context
def get_cmd(
    ctx: click.Context,
    env: str,
    features: tuple[str, ...],
    entities: tuple[str, ...],
    at: str | None,
    as_json: bool,
) -> None:
    """Online feature values of entities (default: every online view keyed by the given keys)."""
    from mlctl.cli.output import echo_json
    from mlctl.errors import MlctlError
    from mlctl.features.store import PRESENT, FeatureStore

    rows = [_parse_entity(e) for e in entities]
    with FeatureStore(repo_of(ctx), env) as store:
        refs = list(features)
        if not refs:
            given = set().union(*(r.keys() for r in rows))
            refs = [
                v["name"] for v in store.list_feature_views() if v["online"] and set(v["join_keys"]) <= given
            ]
            if not refs:
                raise MlctlError(
                    f"no online feature view is keyed by {', '.join(sorted(given))}: name the features to get"
                )
        response = store.get_online_features(refs, rows, at=at)
    records = response.to_records()
    if as_json:
        echo_json(records)
        return
    notes = {
        "OUTSIDE_MAX_AGE": "older than the ttl: withheld",
        "AFTER_REQUEST_TIME": "newer than --at: withheld",
        "NULL_VALUE": "stored as null",
        "NOT_FOUND": "no record for this entity",
    }
    for record in records:
        click.echo(", ".join(f"{k}={v}" for k, v in record["entity"].items()))
        width = max(len(n) for n in record["features"])
        for name, item in record["features"].items():
            status = item["status"]
            value = item["value"] if status == PRESENT else status
            stamp = item["event_timestamp"] or "-"
            note = f"  ({notes[status]})" if status in notes else ""
            click.echo(f"  {name:<{width}}  {value!s:<18} {stamp}{note}")
