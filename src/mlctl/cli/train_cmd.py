"""``mlctl train-job MODEL -e ENV --identity ID --result s3://...`` (hidden): the command a
Kubernetes training Job runs in its pod.

It trains MODEL's current training spec of ENV on the data as it is now, stores the model and
its run's files in the environment's S3 artifact store, and writes the candidate record to
``--result``, where the ``mlctl apply`` that submitted the Job picks it up (see
:mod:`mlctl.engine.remote_training`). It never reads or writes the state: the applying
process holds the lock and does the registration.
"""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, repo_of


@click.command("train-job", hidden=True)
@click.argument("model")
@ENV
@click.option("--identity", required=True, help="The version identity apply planned.")
@click.option(
    "--result", "result", required=True, metavar="S3_URI", help="Where to write the candidate record."
)
@click.pass_context
def command(ctx: click.Context, model: str, env: str, identity: str, result: str) -> None:
    """Train one model version for a Kubernetes training Job (used by the Job, not by hand)."""

    from mlctl.engine.remote_training import run_job
    from mlctl.providers import artifact_store
    from mlctl.spec.loader import load_environment

    spec = load_environment(repo_of(ctx), env)
    record = run_job(
        spec,
        model,
        identity,
        result,
        store=artifact_store(spec),
        progress=lambda message: click.echo(f"{model}: {message}"),
    )
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record["metrics"].items()))
    click.echo(f"{model}: run {record['run_id']} stored {record['artifact']['uri']} ({metrics})")
    click.echo(f"{model}: candidate record written to {result}")
