"""The local state backend: ``state/<env>.json`` on this machine's file system.

Files, for a state at ``state/dev.json``:

- ``state/dev.json``: the document. Written atomically (temp file in the same directory,
  ``fsync``, ``os.replace``, ``fsync`` of the directory), so a reader -- or a crash at any
  instant, including SIGKILL -- sees the old document or the new one, never a mix.
- ``state/dev.json.backup``: the document as it was before this backend's first write, i.e.
  before the current command (Terraform's ``terraform.tfstate.backup``). Later checkpoints of
  the same command do not overwrite it, so it always holds the pre-command state.
- ``state/dev.json.lock``: the lock. Exclusive ``fcntl.flock`` on this file *is* the lock; the
  JSON :class:`LockInfo` inside only describes the holder. The kernel drops a flock when its
  process dies, so a killed ``mlctl`` never leaves a stale lock: at worst it leaves stale
  *info*, which is ignored (and overwritten by the next holder).

Concurrency contract: ``write`` must be called while holding the lock (see
:func:`mlctl.state.backend.locked`); the conflict check in ``write`` (compare the stored
lineage/serial with what this backend last saw) is then race-free. Two ``LocalBackend``
objects on the same path -- even in one process -- exclude each other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path

from mlctl.errors import LockError, MlctlError, StateConflictError
from mlctl.files import atomic_write
from mlctl.state.backend import LockInfo
from mlctl.state.document import FORMAT_VERSION, NewerStateError, State


class LocalBackend:
    """State in a local JSON file, locked with ``flock`` on ``<path>.lock``."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.backup_path = self.path.with_name(self.path.name + ".backup")
        self._lock_fd: int | None = None
        self._lock_info: LockInfo | None = None
        # What this backend last saw stored: None = never looked; ("", -1) = no state existed.
        self._seen: tuple[str, int] | None = None
        self._backed_up = False
        # The file as this backend's last write left it (inode, size, mtime, ctime): while the
        # stored file still matches, nobody replaced it, so the next write need not parse it.
        self._written: tuple[int, int, int, int] | None = None

    def describe(self) -> str:
        return f"local state file {self.path}"

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.path)!r})"

    # -- reading and writing -------------------------------------------------------------

    def _read_text(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise MlctlError(f"cannot read state file {self.path}: {exc}") from None

    def _corrupt(self, exc: Exception) -> MlctlError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return MlctlError(
            f"state file {self.path} is corrupt: {detail} (a previous copy may be in {self.backup_path})"
        )

    def read(self) -> State | None:
        """The stored state, or None when the file does not exist.

        Raises MlctlError ``state file X is corrupt: ...`` when it cannot be parsed.
        """
        text = self._read_text()
        if text is None:
            self._seen = ("", -1)
            return None
        try:
            state = State.from_json(text)
        except ValueError as exc:
            raise self._corrupt(exc) from None
        except NewerStateError as exc:
            raise MlctlError(f"{self.path}: {exc}") from None
        self._seen = (state.lineage, state.serial)
        return state

    def _signature(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _stored_header(self) -> tuple[str, int] | None:
        """(lineage, serial) of the stored document, None when there is none. A file still
        exactly as this backend's last write left it (every writer replaces the file, so a
        new inode) holds what that write stored, and is not read again."""
        if self._written is not None and self._seen is not None and self._signature() == self._written:
            return self._seen
        text = self._read_text()
        if text is None:
            return None
        try:
            data = json.loads(text)
            header = str(data["lineage"]), int(data["serial"])
        except (ValueError, TypeError, KeyError) as exc:
            raise self._corrupt(exc) from None
        version = data.get("format_version", FORMAT_VERSION)
        if isinstance(version, int) and version > FORMAT_VERSION:
            State.from_json(text)  # raises NewerStateError, worded in one place
        return header

    def write(self, state: State) -> None:
        """Store ``state`` atomically. The caller must hold the lock.

        Refused with StateConflictError when the stored document has another lineage, or a
        serial greater than the one this backend last read or wrote (another writer won), or
        was created since this backend saw no state. Without a prior ``read`` the write is
        checked against ``state`` itself: the stored serial must be lower than ``state.serial``.
        The first write of this backend copies the stored document to ``<path>.backup``
        and removes temp files orphaned by writers killed mid-write.
        """
        stored = self._stored_header()
        seen = self._seen
        if stored is not None:
            lineage, serial = stored
            seen_serial = state.serial - 1 if seen is None else seen[1]
            if seen is not None and seen[0] == "":
                raise StateConflictError(
                    f"{self.describe()} was created by another operation since it was read "
                    f"(lineage {lineage}, serial {serial}); run the command again"
                )
            if lineage != state.lineage:
                raise StateConflictError(
                    f"{self.describe()} has lineage {lineage}, but the state being written "
                    f"has lineage {state.lineage}: refusing to overwrite a different state"
                )
            if serial > seen_serial:
                raise StateConflictError(
                    f"stored state has been changed by another operation since it was read "
                    f"({self.describe()}: serial {serial}, expected {seen_serial}); "
                    f"run the command again"
                )
        data = state.to_bytes()
        if self._written is None:
            self._remove_orphaned_temp_files()
        try:
            if stored is not None and not self._backed_up:
                atomic_write(self.backup_path, self.path.read_bytes())
            atomic_write(self.path, data)
        except OSError as exc:
            raise MlctlError(f"cannot write {self.describe()}: {exc}") from None
        self._backed_up = True
        self._seen = (state.lineage, state.serial)
        self._written = self._signature()

    def _remove_orphaned_temp_files(self) -> None:
        """Delete temp files of writers killed mid-write (safe: the caller holds the lock)."""
        for orphan in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                orphan.unlink()

    # -- locking -------------------------------------------------------------------------

    def _read_lock_info(self, fd: int) -> LockInfo | None:
        """The holder's info from an open lock file; retries briefly while it is being written."""
        for _ in range(20):
            os.lseek(fd, 0, os.SEEK_SET)
            raw = b""
            while chunk := os.read(fd, 65536):
                raw += chunk
            if raw.strip():
                try:
                    return LockInfo.from_json(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    pass
            time.sleep(0.01)
        return None

    def _open_lock_file(self, create: bool) -> int | None:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        try:
            return os.open(self.lock_path, flags, 0o644)
        except FileNotFoundError:
            if create:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                return os.open(self.lock_path, flags, 0o644)
            return None

    @staticmethod
    def _try_flock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _same_file(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at ``lock_path`` (not unlinked by a releaser)."""
        try:
            st = os.stat(self.lock_path)
        except FileNotFoundError:
            return False
        fst = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)

    def _held_error(self, holder: LockInfo | None) -> LockError:
        if holder is None:
            return LockError(
                f"state is locked by another operation: holder unknown (lock file {self.lock_path})"
            )
        return LockError(f"state is locked by another operation: {holder.describe()}")

    def lock(self, info: LockInfo) -> None:
        """Take the lock without waiting, or raise LockError naming the holder.

        The lock lives as long as this object holds it (until :meth:`unlock`) or this process
        exits. Locking twice through the same object is refused like any other holder.
        """
        if self._lock_fd is not None:
            raise self._held_error(self._lock_info)
        try:
            while True:
                fd = self._open_lock_file(create=True)
                assert fd is not None
                if not self._try_flock(fd):
                    holder = self._read_lock_info(fd)
                    os.close(fd)
                    raise self._held_error(holder)
                if self._same_file(fd):
                    break
                # The previous holder unlinked the file between our open and flock: retry on
                # the new file, otherwise two processes could "hold" two different inodes.
                os.close(fd)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, info.to_json().encode("utf-8"), 0)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise MlctlError(f"cannot lock {self.describe()}: {exc}") from None
        self._lock_fd = fd
        self._lock_info = info

    def _release(self) -> None:
        fd = self._lock_fd
        self._lock_fd = None
        self._lock_info = None
        if fd is None:
            return
        try:
            # Unlink while still holding the flock, then drop it (see the retry in ``lock``).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
        finally:
            os.close(fd)

    def unlock(self, lock_id: str) -> None:
        """Release the lock this object holds; MlctlError if it holds none or another id."""
        if self._lock_fd is None or self._lock_info is None:
            raise MlctlError(f"cannot unlock {self.describe()}: this process does not hold it")
        if self._lock_info.id != lock_id:
            raise MlctlError(
                f"cannot unlock {self.describe()}: lock ID {lock_id} does not match the "
                f"held lock ID {self._lock_info.id}"
            )
        self._release()

    def lock_holder(self) -> LockInfo | None:
        """Who holds the lock, or None when it is free (stale info of dead holders ignored).

        Probes with a non-blocking flock; during that instant a concurrent ``lock`` from another
        process would be refused, as if this probe held the lock.
        """
        if self._lock_info is not None:
            return self._lock_info
        fd = self._open_lock_file(create=False)
        if fd is None:
            return None
        try:
            if self._try_flock(fd):
                return None  # free: whatever info is inside is stale
            return self._read_lock_info(fd) or LockInfo.from_dict({"operation": "unknown"})
        finally:
            os.close(fd)  # also drops the probe's flock, if taken

    def force_unlock(self, lock_id: str) -> None:
        """Remove the lock ``lock_id`` when its holder is gone.

        A local lock is an ``flock`` held by a live process, which cannot be broken from
        outside -- and never needs to be, because the kernel releases it when the holder exits
        (even on SIGKILL). So:

        - the lock file exists but nobody holds its flock (a killed holder left its info):
          the stale info is removed if its ID is ``lock_id``;
        - a live process holds it: refused with a message naming that process's pid and host;
          stop that process (it will release the lock as it exits) instead of forcing;
        - no lock file, or ``lock_id`` is not the recorded ID: MlctlError naming the actual
          holder's ID.

        If this object itself holds ``lock_id``, this is :meth:`unlock`.
        """
        if self._lock_info is not None and self._lock_info.id == lock_id:
            self._release()
            return
        fd = self._open_lock_file(create=False)
        if fd is None:
            raise MlctlError(f"no lock is held on {self.describe()}")
        try:
            free = self._try_flock(fd)
            holder = self._read_lock_info(fd) if not free else _parse_lock_info(fd)
            if holder is None:
                if free:
                    with contextlib.suppress(FileNotFoundError):
                        if self._same_file(fd):
                            os.unlink(self.lock_path)
                    raise MlctlError(f"no lock is held on {self.describe()}")
                raise MlctlError(
                    f"{self.describe()} is locked by a running process whose details are "
                    f"unreadable (lock file {self.lock_path}); it cannot be force-unlocked"
                )
            if holder.id != lock_id:
                state = "stale lock info" if free else "lock"
                raise MlctlError(
                    f"lock ID {lock_id} does not match the {state} on {self.describe()}: {holder.describe()}"
                )
            if not free:
                raise MlctlError(
                    f"lock {lock_id} on {self.describe()} is held by a running process "
                    f"(pid {holder.pid} on host {holder.host}, operation {holder.operation}, "
                    f"who {holder.who}); a local lock is released when its process exits, so "
                    f"stop that process (e.g. kill {holder.pid}) instead of forcing the lock"
                )
            if self._same_file(fd):
                os.unlink(self.lock_path)
        finally:
            os.close(fd)


def _parse_lock_info(fd: int) -> LockInfo | None:
    """Lock info from a file nobody writes to any more (no retry needed)."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    if not raw.strip():
        return None
    try:
        return LockInfo.from_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
