"""State backends: where an environment's state document lives, and who may change it.

Contract (after Terraform's ``statemgr``):

- :meth:`StateBackend.read` returns a snapshot (or ``None`` when no state exists yet). The
  backend remembers which lineage/serial it handed out; that is what ``write`` checks against.
- :meth:`StateBackend.write` stores a snapshot. **It is the caller's responsibility to hold the
  lock** (:func:`locked`) for the duration of the call. A write is atomic: a concurrent reader
  sees the old document or the new one, never a mix. If the stored document changed since this
  backend last read or wrote it (a different lineage, or a stored serial greater than the one it
  saw), the write is refused with :class:`~mlctl.errors.StateConflictError` -- the caller lost
  the race and must not retry blindly. ``write`` never changes ``serial``; :func:`persist` does.
- :meth:`StateBackend.lock` takes the environment's exclusive lock or raises
  :class:`~mlctl.errors.LockError` naming the holder. :meth:`StateBackend.force_unlock` is the
  operator's lever for a lock whose holder is gone.

:func:`persist` is the single checkpoint function: the executor calls it after every action,
so a crash loses at most the action in flight.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlctl.state.document import GitInfo, State, utcnow

if TYPE_CHECKING:
    from mlctl.state.s3 import StateVersion


def _mlctl_version() -> str:
    from mlctl import __version__

    return __version__


def current_user() -> str:
    """``user@host`` of this process; never raises (containers may have no passwd entry)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid and no $USER
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class LockInfo:
    """Who holds a state lock. Stored as JSON next to (local) or as (S3) the lock."""

    id: str
    operation: str
    who: str
    pid: int
    host: str
    created: str
    environment: str
    version: str

    @classmethod
    def new(cls, operation: str, environment: str) -> LockInfo:
        """A fresh lock description for this process (random id, current user, UTC time)."""
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=current_user(),
            pid=os.getpid(),
            host=socket.gethostname(),
            created=utcnow(),
            environment=environment,
            version=_mlctl_version(),
        )

    def describe(self) -> str:
        """One line for error messages: ``ID ..., operation apply, who alice@host, ...``."""
        return (
            f"ID {self.id}, operation {self.operation}, who {self.who}, "
            f"pid {self.pid}, created {self.created}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockInfo:
        """Tolerant of missing keys (older writers) and of extra keys (newer writers)."""
        defaults: dict[str, Any] = {
            "id": "",
            "operation": "unknown",
            "who": "unknown",
            "pid": 0,
            "host": "unknown",
            "created": "unknown",
            "environment": "",
            "version": "",
        }
        values = {f.name: data.get(f.name, defaults[f.name]) for f in fields(cls)}
        try:
            values["pid"] = int(values["pid"])
        except (TypeError, ValueError):
            values["pid"] = 0
        for key in values:
            if key != "pid":
                values[key] = str(values[key])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Parse lock JSON; raises ``ValueError`` when it is not a JSON object."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("lock info is not a JSON object")
        return cls.from_dict(data)


@runtime_checkable
class StateBackend(Protocol):
    """Storage and locking of one environment's state document."""

    def read(self) -> State | None:
        """The stored state, or None if none exists yet.

        Raises :class:`~mlctl.errors.MlctlError` (``state file X is corrupt: ...``) when the
        stored document cannot be parsed. Records the lineage/serial seen for ``write``.
        """
        ...

    def write(self, state: State) -> None:
        """Store ``state`` atomically. The caller holds the lock.

        Raises :class:`~mlctl.errors.StateConflictError` if the stored state changed since
        this backend read it. Does not change ``state.serial`` (see :func:`persist`).
        """
        ...

    def lock(self, info: LockInfo) -> None:
        """Take the exclusive lock, or raise :class:`~mlctl.errors.LockError` naming the holder."""
        ...

    def unlock(self, lock_id: str) -> None:
        """Release a lock this backend holds (``lock_id`` must match)."""
        ...

    def lock_holder(self) -> LockInfo | None:
        """Who holds the lock now, or None when it is free."""
        ...

    def force_unlock(self, lock_id: str) -> None:
        """Remove a lock whose holder is gone; MlctlError when absent or ``lock_id`` differs."""
        ...

    def describe(self) -> str:
        """Human name of the storage, e.g. ``local state file state/dev.json``."""
        ...


@runtime_checkable
class VersionedBackend(StateBackend, Protocol):
    """A backend that keeps every stored snapshot (S3 on a versioned bucket): an optional
    capability, tested with ``isinstance`` by the commands that need it."""

    def history(self, limit: int = 20) -> list[StateVersion]:
        """The newest ``limit`` snapshots, newest first."""
        ...

    def read_version(self, version_id: str) -> State:
        """One stored snapshot; MlctlError when there is no such version."""
        ...


def persist(backend: StateBackend, state: State, *, git: GitInfo | None = None) -> State:
    """Checkpoint ``state``: bump ``serial``, stamp version/time (and git), then write it.

    The caller holds the backend's lock. On failure the in-memory ``serial``, ``updated_at``,
    ``mlctl_version`` and ``git`` are restored, so a retry after e.g. a full disk writes the
    same serial; a :class:`~mlctl.errors.StateConflictError` means another writer won and the
    in-memory state must be discarded.
    """
    saved = (state.serial, state.updated_at, state.mlctl_version, state.git)
    state.serial += 1
    state.mlctl_version = _mlctl_version()
    state.updated_at = utcnow()
    if git is not None:
        state.git = git
    try:
        backend.write(state)
    except BaseException:
        state.serial, state.updated_at, state.mlctl_version, state.git = saved
        raise
    return state


#: Seconds between two attempts to take a held lock while waiting (``--lock-timeout``).
LOCK_POLL_SECONDS = 0.5


def parse_duration(text: str) -> float:
    """Seconds in a Terraform-style duration: ``0``, ``30s``, ``5m``, ``1h``, ``1m30s``, ``1.5s``
    (a bare number is seconds). Raises :class:`~mlctl.errors.MlctlError` on anything else."""
    import re

    from mlctl.errors import MlctlError

    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise MlctlError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h or 1m30s")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def acquire(
    backend: StateBackend,
    info: LockInfo,
    timeout: float = 0.0,
    *,
    poll: float = LOCK_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Take ``backend``'s lock for ``info``, waiting up to ``timeout`` seconds for a holder to
    release it (Terraform's ``-lock-timeout``), polling every ``poll`` seconds.

    ``timeout`` 0 tries once. When the wait ends without the lock, the last
    :class:`~mlctl.errors.LockError` (naming the holder) is raised, saying how long it waited.
    Errors other than a held lock are raised at once.
    """
    from mlctl.errors import LockError

    deadline = clock() + max(timeout, 0.0)
    while True:
        try:
            backend.lock(info)
            return
        except LockError as exc:
            left = deadline - clock()
            if left <= 0:
                if timeout > 0:
                    raise LockError(f"{exc} (waited {_seconds(timeout)} for it: --lock-timeout)") from None
                raise
            sleep(min(poll, left))


def _seconds(value: float) -> str:
    return f"{value:g}s"


@contextmanager
def locked(
    backend: StateBackend, operation: str, environment: str, *, timeout: float = 0.0
) -> Iterator[LockInfo]:
    """Hold the environment's lock for the ``with`` block; always released on exit.

    A held lock raises :class:`~mlctl.errors.LockError` naming its holder, at once or, with
    ``timeout`` seconds, when the holder has not released it by then (see :func:`acquire`).
    """
    info = LockInfo.new(operation, environment)
    acquire(backend, info, timeout)
    try:
        yield info
    finally:
        backend.unlock(info.id)
