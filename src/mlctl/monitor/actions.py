"""What a fired monitor does: alert, record a retraining trigger, roll back.

Contract: ``alert`` is always printed by the command (stdout) and, when the environment
variable :data:`WEBHOOK_ENV` holds a URL, POSTed there as JSON (one request per fired
monitor, 10 s timeout; a failure is reported, never raised). ``retrain`` records a
:class:`~mlctl.state.document.RetrainTrigger` in the state the caller holds under the lock,
only if the model's ``retrain.on`` lists the monitor's kind (the model owner's consent) and no
earlier trigger of the model is still open. ``rollback`` is carried out by
:func:`mlctl.operations.monitor` through :func:`mlctl.operations.rollback`, the code
``mlctl rollback`` runs; :func:`rollback_outcome` describes what it did.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlctl.monitor.findings import ActionResult, MonitorResult
from mlctl.plan.triggers import trigger_status
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import RetrainTrigger, State, utcnow

WEBHOOK_ENV = "MLCTL_ALERT_WEBHOOK"


def alert_payload(environment: str, result: MonitorResult) -> dict[str, Any]:
    """The JSON an alert webhook receives (``text`` makes it readable by Slack-style hooks)."""
    breaches = [f.to_dict() for f in result.findings if f.breach]
    return {
        "source": "mlctl",
        "event": "monitor.fired",
        "time": utcnow(),
        "environment": environment,
        "monitor": result.name,
        "kind": result.kind,
        "model": result.model,
        "version": result.version,
        "severity": result.severity,
        "summary": result.summary,
        "consecutive": result.consecutive,
        "actions": list(_planned(result)),
        "breaches": breaches,
        "text": f"[mlctl] {environment}/{result.name} fired ({result.severity}): {result.summary}",
    }


def _planned(result: MonitorResult) -> list[str]:
    return [a.action for a in result.actions]


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> ActionResult:
    """POST ``payload`` as JSON to ``url``; the outcome as an :class:`ActionResult`."""
    if not url.startswith(("http://", "https://")):
        return ActionResult("alert", False, f"${WEBHOOK_ENV} is not an http(s) URL")
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "mlctl-monitor"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        return ActionResult("alert", False, f"webhook answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ActionResult("alert", False, f"webhook unreachable: {reason}")
    return ActionResult("alert", True, f"webhook answered HTTP {code}")


def alert(environment: str, result: MonitorResult) -> ActionResult:
    """Send the webhook when configured; stdout printing is the command's job."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return ActionResult("alert", True, f"printed (set ${WEBHOOK_ENV} to also post a webhook)")
    return post_webhook(url, alert_payload(environment, result))


def record_trigger(spec: EnvSpec, state: State, result: MonitorResult, actor: str) -> ActionResult:
    """Record a retraining trigger for ``result``'s model in ``state`` (held under the lock)."""
    model = spec.config.models.get(result.model)
    if model is None:
        return ActionResult("retrain", False, f"model {result.model} is not defined")
    allowed = model.retrain.on if model.retrain else []
    if result.kind not in allowed:
        return ActionResult(
            "retrain",
            True,
            f"not recorded: models.{result.model}.retrain.on does not include '{result.kind}'",
        )
    registry = state.registry(result.model)
    for trigger in registry.triggers:
        status = trigger_status(trigger, registry)
        if status != "cleared":
            return ActionResult(
                "retrain",
                True,
                f"trigger {trigger.id} already {status}"
                + (f" (v{trigger.trained_version} not live yet)" if status == "trained" else ""),
            )
    trigger = RetrainTrigger(
        id=f"{result.kind}:{result.name}:{utcnow()}:{secrets.token_hex(2)}",
        kind=result.kind,
        monitor=result.name,
        reason=f"{result.summary} (monitor {result.name})",
        created_by=actor,
    )
    registry.triggers.append(trigger)
    return ActionResult("retrain", True, f"trigger recorded; the next plan trains {result.model}")


def rollback_outcome(
    environment: str, from_version: int, to_version: int, written: Path | None, repo: Path
) -> ActionResult:
    """The ``rollback`` action's result for a rollback that happened; ``written`` is the YAML
    file whose production pin was rewritten (None when it already pinned the version)."""
    wrote = f"; wrote production: {to_version} to {written.relative_to(repo)}" if written else ""
    return ActionResult(
        "rollback", True, f"production v{from_version} -> v{to_version} in {environment}{wrote}"
    )
