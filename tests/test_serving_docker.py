"""The serving image, checked statically (CI cannot build images here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_slim_base_non_root_and_serve_entrypoint() -> None:
    steps = _instructions()
    bases = [rest for word, rest in steps if word == "FROM"]
    assert bases and all(re.match(r"python:3\.1[1-9]-slim\b", b) for b in bases)
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = json.loads(next(rest for word, rest in final if word == "ENTRYPOINT"))
    assert entry[0] == "mlctl" and "serve" in entry
    assert "--host" in entry and entry[entry.index("--host") + 1] == "0.0.0.0"
    assert any(word == "EXPOSE" for word, _ in final)
    assert any(word == "HEALTHCHECK" and "/health" in rest for word, rest in final)


def test_build_context_copies_only_what_exists_and_skips_secrets() -> None:
    for word, rest in _instructions():
        if word == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".mlctl", "state"} <= set(ignored)
