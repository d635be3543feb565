"""`mlctl serve` as a command: user errors are one line and exit 1; the module stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import invoke


def test_unknown_model_is_one_line(applied: Path) -> None:
    result = invoke(applied, "serve", "churn-predicter", "-e", "dev")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'churn-predictor'" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_environment_is_one_line(applied: Path) -> None:
    result = invoke(applied, "serve", "churn-predictor", "-e", "nowhere")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_lists_the_options(applied: Path) -> None:
    result = invoke(applied, "serve", "--help")
    assert result.exit_code == 0
    for option in ("--stage", "--host", "--port", "--workers", "MLCTL_SERVE_TOKEN"):
        assert option in result.stdout


def test_command_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, mlctl.cli.serve_cmd; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'sklearn', 'pandas', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_busy_port_is_a_user_error(applied: Path) -> None:
    import socket

    from conftest import invoke

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(applied, "serve", "churn-predictor", "-e", "dev", "--port", str(port))
    assert result.exit_code == 1, result.output
    assert f"cannot serve on 127.0.0.1:{port}: the port is in use" in result.stderr


def test_non_loopback_bind_without_a_token_is_refused(applied: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLCTL_SERVE_TOKEN", raising=False)
    before = (applied / "state" / "dev.json").read_bytes()
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.com"):
        result = invoke(applied, "serve", "churn-predictor", "-e", "dev", "--host", host)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"refusing to serve on {host} without a token" in lines[0]
        assert "MLCTL_SERVE_TOKEN" in lines[0] and "--insecure" in lines[0]
    assert (applied / "state" / "dev.json").read_bytes() == before


def test_a_token_or_insecure_gets_past_the_bind_check(applied: Path, monkeypatch) -> None:
    """Both reach the next check (a busy port), so the bind check let them through."""
    import socket

    monkeypatch.delenv("MLCTL_SERVE_TOKEN", raising=False)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ("serve", "churn-predictor", "-e", "dev", "--host", "0.0.0.0", "--port", port)
        insecure = invoke(applied, *args, "--insecure")
        monkeypatch.setenv("MLCTL_SERVE_TOKEN", "s3cret")
        with_token = invoke(applied, *args)
    for result in (insecure, with_token):
        assert result.exit_code == 1 and "the port is in use" in result.stderr, result.output


def test_loopback_addresses() -> None:
    from mlctl.serving.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", ""))
