"""``mlctl demo``: helpers for the example's tour (``demo traffic``).

Light at import: numpy and pandas load when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click


def _repo(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return Path(obj.get("repo", ".")).resolve()


@click.group("demo")
def command() -> None:
    """Drive the churn example: traffic for the monitors to judge."""


@command.command("traffic")
@click.option("-e", "--env", "env", required=True, metavar="ENV", help="Environment name.")
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The running `mlctl serve` (MLCTL_SERVE_TOKEN is sent when set).",
)
@click.option("--model", default="churn-predictor", show_default=True, help="The example's model.")
@click.option("--requests", "requests", default=3000, show_default=True, help="Requests to send.")
@click.option(
    "--shift",
    default=0.4,
    show_default=True,
    help="Share of requests from the shifted population (new customers, changed behaviour).",
)
@click.option("--seed", default=0, show_default=True, help="Random seed of the requests and outcomes.")
@click.option(
    "--labels/--no-labels",
    default=True,
    help="Append the requests' true outcomes to the performance monitor's labels dataset, and "
    "the shifted customers' snapshots and outcomes to the model's training data.",
)
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the server to be ready.")
@click.pass_context
def traffic(
    ctx: click.Context,
    env: str,
    url: str,
    model: str,
    requests: int,
    shift: float,
    seed: int,
    labels: bool,
    wait: float,
) -> None:
    """Send predictions to a running server, part from a shifted population, and write
    their delayed labels where the performance monitor reads them; the shifted customers
    join the training data (their snapshots and outcomes), so a retrained version learns them."""
    from mlctl.example.traffic import send_traffic

    result = send_traffic(
        _repo(ctx),
        env,
        url=url,
        model=model,
        requests=requests,
        shift=shift,
        seed=seed,
        write_labels=labels,
        wait=wait,
    )
    click.echo(
        f"Sent {result.sent:,} requests to {result.url} in {result.seconds:.1f} s: "
        f"{result.by_key:,} by customer id (online features), "
        f"{result.shifted:,} from a shifted population (full features)."
    )
    versions = ", ".join(f"v{v}: {n:,}" for v, n in sorted(result.versions.items()))
    failed = {status: n for status, n in result.statuses.items() if status != 200}
    errors = ", ".join(f"HTTP {status}: {n:,}" for status, n in sorted(failed.items()))
    click.echo(
        f"Answered {result.answered:,}"
        + (f" ({versions})" if versions else "")
        + f"; {errors or 'no errors'}."
    )
    if result.labels:
        churn = f" ({result.churn_rate:.0%} churned)" if result.churn_rate is not None else ""
        click.echo(
            f"Wrote {result.labels:,} delayed labels{churn} to {result.labels_path} "
            f"(dataset {result.labels_dataset}, read by monitor {result.monitor})."
        )
    elif labels:
        click.echo(f"No labels written: no performance monitor watches {model} in {env}.")
    if result.training_rows and result.training_paths is not None:
        features, training_labels = result.training_paths
        click.echo(
            f"Added {result.training_rows:,} shifted customers to the training data of {model}: "
            f"snapshots to {features}, outcomes to {training_labels}."
        )
