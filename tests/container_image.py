"""The image as the kubelet runs it, read from the Dockerfile (no Docker engine needed).

:func:`image_config` is what the final stage leaves in the image config (ENTRYPOINT, CMD,
WORKDIR, USER); :func:`kubelet_argv` combines it with a container's ``command``/``args`` and
expands ``$(VAR)`` as the kubelet does; :func:`process_of` turns a rendered container into the
real process (the installed ``mlctl`` console script, the container's environment) a test can
run on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (WORD, rest); continuation lines joined,
    comments and blank lines dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (from its ``FROM`` on): what the image is made of."""
    steps = instructions()
    return steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]


def image_config() -> dict[str, Any]:
    """What the final stage leaves in the image config: Entrypoint, Cmd (exec form, as the
    kubelet receives them), WorkingDir and User. Only exec form is accepted: shell form would
    wrap everything in ``/bin/sh -c`` and swallow the container's args."""
    config: dict[str, Any] = {"Entrypoint": None, "Cmd": None, "WorkingDir": "/", "User": "root"}
    for word, rest in final_stage():
        if word in ("ENTRYPOINT", "CMD"):
            value = json.loads(rest)
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{word} not exec form"
            config["Entrypoint" if word == "ENTRYPOINT" else "Cmd"] = value
            if word == "ENTRYPOINT":
                config["Cmd"] = None  # a new ENTRYPOINT resets an inherited CMD
        elif word == "WORKDIR":
            config["WorkingDir"] = str(Path(config["WorkingDir"]) / rest)
        elif word == "USER":
            config["User"] = rest
    return config


def kubelet_argv(container: dict[str, Any], entrypoint: list[str], cmd: list[str] | None) -> list[str]:
    """The process the kubelet starts for ``container`` on an image with ``entrypoint`` and
    ``cmd``: ``command`` replaces the ENTRYPOINT (and drops CMD), ``args`` replace CMD, and
    ``$(VAR)`` references to the container's env are expanded (``$$`` escapes)."""
    command, args = container.get("command"), container.get("args")
    if command:
        argv = [*command, *(args or [])]
    elif args is not None:
        argv = [*entrypoint, *args]
    else:
        argv = [*entrypoint, *(cmd or [])]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    def expand(word: str) -> str:
        return re.sub(
            r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
            lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
            word,
        )

    return [expand(word) for word in argv]


def console_script() -> str:
    """The ``mlctl`` executable the package installs (what the image's ENTRYPOINT names)."""
    found = shutil.which("mlctl", path=str(Path(sys.executable).parent)) or shutil.which("mlctl")
    assert found, "the mlctl console script is not installed"
    return found


def process_of(
    container: dict[str, Any], secrets: dict[tuple[str, str], str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """argv (the executable resolved on PATH, as the container runtime does) and environment
    of ``container`` on the image; ``secrets`` answers ``secretKeyRef`` (name, key)."""
    config = image_config()
    argv = kubelet_argv(container, config["Entrypoint"], config["Cmd"])
    assert argv[0] == "mlctl"
    env = dict(os.environ)
    env.pop("MLCTL_SERVE_TOKEN", None)
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = (secrets or {})[(ref["name"], ref["key"])]
    return [console_script(), *argv[1:]], env
