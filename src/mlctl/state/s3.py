"""The S3 state backend: one object per environment in a bucket, shared by a team.

Objects, for a backend ``{bucket: B, key: mlctl/prod.json}``:

- ``s3://B/mlctl/prod.json``: the state document. Every write is conditional:
  ``put_object(IfMatch=<ETag this backend last read or wrote>)``, or ``IfNoneMatch='*'``
  when it read no state. A write therefore succeeds only if nobody changed the object since
  this backend saw it: a lost update is impossible even when a writer ignores the lock.
- ``s3://B/mlctl/prod.json.lock``: the lock, created with ``put_object(IfNoneMatch='*')``
  and holding the :class:`~mlctl.state.backend.LockInfo` JSON; removed on release. A runner
  killed while holding it leaves it behind: ``mlctl force-unlock -e ENV LOCK_ID`` removes it.

"Lost the race" answers -- 412 Precondition Failed, 409 Conflict (a concurrent conditional
write in progress) and, for ``IfMatch`` on a key that vanished, 404 -- are treated alike:
:class:`~mlctl.errors.StateConflictError` for the state, :class:`~mlctl.errors.LockError`
for the lock. Nothing is retried blindly.

When the bucket has versioning enabled, every checkpoint is kept as an object version:
:meth:`S3Backend.history` lists them, :meth:`S3Backend.read_version` reads one.

Credentials come from the usual AWS chain (environment, shared config and ``profile``,
instance roles), never from YAML. boto3 is imported only when an S3 backend is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlctl.errors import LockError, MlctlError, NotFoundError, StateConflictError
from mlctl.s3client import error_code, is_lost_race, is_missing, s3_client, s3_error
from mlctl.state.backend import LockInfo
from mlctl.state.document import NewerStateError, State


@dataclass(frozen=True)
class StateVersion:
    """One stored snapshot of a versioned state object."""

    version_id: str
    last_modified: str
    size: int
    latest: bool
    serial: int | None
    lineage: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "last_modified": self.last_modified,
            "size": self.size,
            "latest": self.latest,
            "serial": self.serial,
            "lineage": self.lineage,
        }


class S3Backend:
    """State in ``s3://bucket/key`` with conditional writes and a lock object."""

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.key = key.lstrip("/")
        self.lock_key = self.key + ".lock"
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        self._client = client
        # What this backend last saw stored: None = never looked; etag None = no object.
        self._seen: tuple[str, int] | None = None
        self._etag: str | None = None
        self._looked = False
        self._lock_info: LockInfo | None = None
        self._lock_etag: str | None = None  # ETag of the lock object this backend created

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(region=self.region, endpoint_url=self.endpoint_url, profile=self.profile)
        return self._client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def describe(self) -> str:
        return f"S3 state {self.url}"

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r})"

    # -- reading and writing -------------------------------------------------------------

    def _get(self, key: str, version_id: str | None = None) -> tuple[bytes, str] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self.client.get_object(**kwargs)
            return response["Body"].read(), str(response.get("ETag", ""))
        except ClientError as exc:
            if is_missing(exc) and error_code(exc) != "NoSuchBucket":
                return None
            raise s3_error(exc, f"read s3://{self.bucket}/{key}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"read s3://{self.bucket}/{key}") from None

    def _parse(self, data: bytes, where: str) -> State:
        try:
            return State.from_json(data.decode("utf-8"))
        except NewerStateError as exc:
            raise MlctlError(f"{where}: {exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MlctlError(
                f"{where} is corrupt: {detail} (earlier versions: mlctl state history)"
            ) from None

    def read(self) -> State | None:
        """The stored state, or None when the object does not exist. Remembers its ETag."""
        found = self._get(self.key)
        self._looked = True
        if found is None:
            self._seen, self._etag = ("", -1), None
            return None
        data, etag = found
        state = self._parse(data, self.describe())
        self._seen, self._etag = (state.lineage, state.serial), etag
        return state

    def write(self, state: State) -> None:
        """Store ``state`` with a conditional put. The caller holds the lock.

        Refused with StateConflictError when the object changed since this backend read or
        wrote it (412/409, or 404 because it was deleted), when it was created since this
        backend saw none, or when it holds another lineage. Without a prior ``read`` the
        stored object is read first and its serial must be lower than ``state.serial``.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if not self._looked:
            stored = self._get(self.key)
            self._looked = True
            if stored is None:
                self._seen, self._etag = ("", -1), None
            else:
                current = self._parse(stored[0], self.describe())
                if current.lineage == state.lineage and current.serial >= state.serial:
                    raise StateConflictError(
                        f"stored state has been changed by another operation ({self.describe()}: "
                        f"serial {current.serial}, writing {state.serial}); run the command again"
                    )
                self._seen, self._etag = (current.lineage, current.serial), stored[1]
        if self._seen is not None and self._seen[0] and self._seen[0] != state.lineage:
            raise StateConflictError(
                f"{self.describe()} has lineage {self._seen[0]}, but the state being written has "
                f"lineage {state.lineage}: refusing to overwrite a different state"
            )
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Body": state.to_bytes(),
            "ContentType": "application/json",
            "Metadata": {"mlctl-lineage": state.lineage, "mlctl-serial": str(state.serial)},
        }
        if self._etag is None:
            kwargs["IfNoneMatch"] = "*"
        else:
            kwargs["IfMatch"] = self._etag
        try:
            response = self.client.put_object(**kwargs)
        except ClientError as exc:
            if is_lost_race(exc) or (self._etag is not None and is_missing(exc)):
                if self._etag is None:
                    raise StateConflictError(
                        f"{self.describe()} was created by another operation since it was read; "
                        "run the command again"
                    ) from None
                raise StateConflictError(
                    f"stored state has been changed by another operation since it was read "
                    f"({self.describe()} no longer has ETag {self._etag}); refusing to overwrite "
                    "it -- run the command again"
                ) from None
            raise s3_error(exc, f"write {self.describe()}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"write {self.describe()}") from None
        etag = response.get("ETag")
        if not etag:  # servers that do not return the ETag of a put: ask for it
            etag = self.client.head_object(Bucket=self.bucket, Key=self.key).get("ETag")
        self._etag = str(etag)
        self._seen = (state.lineage, state.serial)

    # -- locking -------------------------------------------------------------------------

    def _holder(self) -> LockInfo | None:
        found = self._get(self.lock_key)
        if found is None:
            return None
        try:
            return LockInfo.from_json(found[0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return LockInfo.from_dict({"operation": "unknown (unreadable lock object)"})

    def _held_error(self, holder: LockInfo | None) -> LockError:
        if holder is None:
            return LockError(
                f"state is locked by another operation: holder unknown (lock object "
                f"s3://{self.bucket}/{self.lock_key})"
            )
        return LockError(
            f"state is locked by another operation: {holder.describe()} "
            f"(if that run crashed: mlctl force-unlock -e {holder.environment or 'ENV'} {holder.id})"
        )

    def lock(self, info: LockInfo) -> None:
        """Create the lock object with ``IfNoneMatch='*'``, or raise LockError naming the holder."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._lock_info is not None:
            raise self._held_error(self._lock_info)
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self.lock_key,
                Body=info.to_json().encode("utf-8"),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if is_lost_race(exc):
                raise self._held_error(self._holder()) from None
            raise s3_error(exc, f"lock {self.describe()}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"lock {self.describe()}") from None
        self._lock_info = info
        self._lock_etag = str(response.get("ETag") or "") or None

    def _delete_lock(self, etag: str | None = None) -> None:
        """Delete the lock object; with ``etag``, only if it is still that very object.

        A conditional delete (``IfMatch``) that loses -- the object was replaced or removed
        since -- leaves whatever is there now alone: it belongs to someone else.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.lock_key}
        if etag:
            kwargs["IfMatch"] = etag
        try:
            self.client.delete_object(**kwargs)
        except ClientError as exc:
            if etag and (is_lost_race(exc) or is_missing(exc)):
                return
            raise s3_error(exc, f"unlock {self.describe()}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"unlock {self.describe()}") from None

    def unlock(self, lock_id: str) -> None:
        """Remove the lock object this backend created (after checking it is still ours)."""
        if self._lock_info is None:
            raise MlctlError(f"cannot unlock {self.describe()}: this process does not hold it")
        if self._lock_info.id != lock_id:
            raise MlctlError(
                f"cannot unlock {self.describe()}: lock ID {lock_id} does not match the held "
                f"lock ID {self._lock_info.id}"
            )
        self._lock_info = None
        etag, self._lock_etag = self._lock_etag, None
        holder = self._holder()
        # Someone force-unlocked us and another operation holds it now: leave theirs alone
        # (our writes were still guarded by IfMatch, so nothing of theirs was overwritten).
        # The delete is conditional on the ETag of the object this backend created, so a
        # lock taken over between the read above and the delete survives too.
        if holder is not None and holder.id == lock_id:
            self._delete_lock(etag)

    def lock_holder(self) -> LockInfo | None:
        if self._lock_info is not None:
            return self._lock_info
        return self._holder()

    def force_unlock(self, lock_id: str) -> None:
        """Remove the lock ``lock_id`` left by a runner that is gone.

        S3 cannot tell whether the holder still runs: make sure it does not (its pid and host
        are in the lock info) before forcing. MlctlError when no lock is held or the ID differs.
        """
        if self._lock_info is not None and self._lock_info.id == lock_id:
            self.unlock(lock_id)
            return
        holder = self._holder()
        if holder is None:
            raise MlctlError(f"no lock is held on {self.describe()}")
        if holder.id != lock_id:
            raise MlctlError(
                f"lock ID {lock_id} does not match the lock on {self.describe()}: {holder.describe()}"
            )
        self._delete_lock()

    # -- history (versioned buckets) -----------------------------------------------------

    def versioning(self) -> str:
        """``Enabled``, ``Suspended`` or ``Disabled`` for the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, f"read the versioning of bucket {self.bucket}") from None
        return str(status or "Disabled")

    def history(self, limit: int = 20) -> list[StateVersion]:
        """Stored snapshots of the state, newest first (only one unless versioning is on)."""
        from botocore.exceptions import BotoCoreError, ClientError

        versions: list[dict[str, Any]] = []
        try:
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key):
                versions.extend(v for v in page.get("Versions", []) if v.get("Key") == self.key)
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, f"list the versions of {self.describe()}") from None
        versions.sort(key=lambda v: (v.get("IsLatest", False), v["LastModified"]), reverse=True)
        out = []
        for entry in versions[:limit]:
            version_id = str(entry.get("VersionId") or "null")
            serial: int | None = None
            lineage: str | None = None
            try:
                head_kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
                if version_id != "null":
                    head_kwargs["VersionId"] = version_id
                meta = self.client.head_object(**head_kwargs).get("Metadata", {})
                serial = int(meta["mlctl-serial"]) if "mlctl-serial" in meta else None
                lineage = meta.get("mlctl-lineage")
            except (ClientError, BotoCoreError, ValueError):
                pass
            out.append(
                StateVersion(
                    version_id=version_id,
                    last_modified=entry["LastModified"].isoformat(),
                    size=int(entry.get("Size", 0)),
                    latest=bool(entry.get("IsLatest")),
                    serial=serial,
                    lineage=lineage,
                )
            )
        return out

    def read_version(self, version_id: str) -> State:
        """One stored snapshot by its S3 version ID (NotFoundError when there is none)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key, VersionId=version_id)
            data = response["Body"].read()
        except ClientError as exc:
            if is_missing(exc) or error_code(exc) in ("InvalidArgument", "400"):
                raise NotFoundError(
                    f"{self.describe()} has no version {version_id} (see mlctl state history)"
                ) from None
            raise s3_error(exc, f"read version {version_id} of {self.describe()}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"read version {version_id} of {self.describe()}") from None
        return self._parse(data, f"{self.describe()} version {version_id}")
