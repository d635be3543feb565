"""``mlctl render -e ENV --out DIR``: the Kubernetes manifests of ENV, for Argo CD or Flux;
``--dashboards DIR``: its Grafana dashboards (:mod:`mlctl.monitor.dashboards`).

Writes, for every endpoint served by a ``k8s`` provider, the Deployment, Service,
PodDisruptionBudget (more than one replica) and HPA (``autoscale``) that ``mlctl apply`` would
apply for the version its stage holds in state (:mod:`mlctl.providers.k8s_manifests`: the
image's ``mlctl`` ENTRYPOINT, Pod Security "restricted", Prometheus scrape annotations), one file per
object (``DIR/<kind>-<name>.yaml``) plus a ``kustomization.yaml`` listing them. Output is
deterministic: rendering twice gives identical bytes, so a GitOps repository only changes
when a version or a setting does. Files of objects no longer rendered are removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlctl.cli.options import ENV, repo_of
from mlctl.errors import MlctlError


def render(repo: Path, env: str) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Manifests per endpoint, and notes about endpoints that cannot be rendered yet."""
    from mlctl.providers.k8s import endpoint_manifests
    from mlctl.spec.models import K8sProvider
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)
    config = ws.spec.config
    state = ws.backend.read()
    out: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for name, endpoint in sorted(config.endpoints.items()):
        provider = ws.spec.providers.get(endpoint.provider)
        if not isinstance(provider, K8sProvider):
            continue
        registry = state.models.get(endpoint.model) if state else None
        number = registry.stages.get(endpoint.stage) if registry else None
        version = registry.get(number) if registry and number is not None else None
        if version is None or version.artifact is None:
            notes.append(
                f"endpoint {name}: no {endpoint.stage} version of {endpoint.model} yet (run mlctl apply)"
            )
            continue
        out[name] = endpoint_manifests(
            env, name, endpoint, provider, version=version.version, artifact=version.artifact
        )
    return out, notes


def write(out_dir: Path, manifests: dict[str, list[dict[str, Any]]]) -> list[Path]:
    import yaml

    from mlctl.providers.k8s import to_yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for objects in manifests.values():
        for manifest in objects:
            path = out_dir / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
            path.write_text(to_yaml([manifest]))
            written.append(path)
    names = sorted(p.name for p in written)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": names,
    }
    (out_dir / "kustomization.yaml").write_text(
        "# Rendered by `mlctl render`; do not edit by hand.\n"
        + yaml.safe_dump(kustomization, sort_keys=False)
    )
    for stale in out_dir.glob("*.yaml"):
        if stale.name != "kustomization.yaml" and stale.name not in names and _rendered_by_mlctl(stale):
            stale.unlink()
    return written


def _rendered_by_mlctl(path: Path) -> bool:
    try:
        return "app.kubernetes.io/managed-by: mlctl" in path.read_text()
    except OSError:
        return False


@click.command("render")
@ENV
@click.option("--out", "out", type=click.Path(file_okay=False), help="Directory to write the manifests into.")
@click.option(
    "--dashboards",
    "dashboards_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write ENV's Grafana dashboards (JSON, one per endpoint) into DIR.",
)
@click.pass_context
def command(ctx: click.Context, env: str, out: str | None, dashboards_dir: Path | None) -> None:
    """Write ENV's Kubernetes manifests (for Argo CD / Flux) into DIR (--out), and/or its
    Grafana dashboards (--dashboards DIR)."""
    if out is None and dashboards_dir is None:
        raise MlctlError("say what to render: --out DIR (Kubernetes manifests) and/or --dashboards DIR")
    if dashboards_dir is not None:
        from mlctl.monitor import dashboards
        from mlctl.workspace import open_workspace

        ws = open_workspace(repo_of(ctx), env)
        boards = dashboards.build(env, ws.spec.config)
        if not boards:
            raise MlctlError(f"'{env}' has no endpoint or monitor: no dashboard to render")
        paths = dashboards.write(dashboards_dir, boards)
        click.echo(f"Wrote {len(paths)} Grafana dashboard(s) to {dashboards_dir}.")
    if out is None:
        return
    manifests, notes = render(repo_of(ctx), env)
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    if not manifests:
        if notes:
            raise MlctlError(f"nothing to render for '{env}': no endpoint has a version to serve yet")
        raise MlctlError(f"no endpoint of '{env}' uses a k8s provider; nothing to render")
    written = write(Path(out), manifests)
    click.echo(f"Wrote {len(written)} manifests for {len(manifests)} endpoint(s) to {out}.")
