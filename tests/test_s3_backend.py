"""The S3 state backend against a real S3-compatible server (SeaweedFS, started by a fixture).

Conditional writes (IfMatch / IfNoneMatch), the lock object, force-unlock, history of a
versioned bucket, and clear errors for bad credentials and missing buckets.
"""

from __future__ import annotations

import json

import pytest

import seaweed
from mlctl.errors import LockError, MlctlError, NotFoundError, StateConflictError
from mlctl.state.backend import LockInfo, locked, persist
from mlctl.state.document import State
from mlctl.state.s3 import S3Backend
from seaweed import Seaweed, fresh_bucket

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)

KEY = "team/dev.json"


def backend(server: Seaweed, bucket: str, key: str = KEY) -> S3Backend:
    return S3Backend(bucket, key, endpoint_url=server.endpoint_url, region="us-east-1")


def first_state(be: S3Backend) -> State:
    state = State(environment="dev")
    with locked(be, "test", "dev"):
        assert be.read() is None
        persist(be, state)
    return state


def test_write_read_round_trip_and_serial(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    be = backend(s3, bucket)
    state = first_state(be)
    assert state.serial == 1
    again = backend(s3, bucket).read()
    assert again is not None
    assert (again.lineage, again.serial) == (state.lineage, 1)
    raw = s3.client().get_object(Bucket=bucket, Key=KEY)
    assert json.loads(raw["Body"].read())["lineage"] == state.lineage
    assert raw["Metadata"]["mlctl-serial"] == "1"


def test_concurrent_writer_loses_the_race(s3: Seaweed) -> None:
    """Two backends read serial 1; the first write wins, the second is refused (no lost update)."""
    bucket = fresh_bucket(s3)
    first_state(backend(s3, bucket))
    a, b = backend(s3, bucket), backend(s3, bucket)
    sa, sb = a.read(), b.read()
    assert sa is not None and sb is not None
    sa.environment = "written-by-a"
    persist(a, sa)
    sb.environment = "written-by-b"
    with pytest.raises(StateConflictError, match="changed by another operation"):
        persist(b, sb)
    assert sb.serial == 1  # persist restored the in-memory serial
    stored = backend(s3, bucket).read()
    assert stored is not None and stored.environment == "written-by-a" and stored.serial == 2


def test_state_changed_behind_mlctls_back_is_not_overwritten(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    first_state(backend(s3, bucket))
    be = backend(s3, bucket)
    state = be.read()
    assert state is not None
    client = s3.client()
    body = json.loads(client.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    body["environment"] = "hand-edited"
    client.put_object(Bucket=bucket, Key=KEY, Body=json.dumps(body).encode())
    with pytest.raises(StateConflictError, match="refusing to overwrite"):
        persist(be, state)
    stored = json.loads(client.get_object(Bucket=bucket, Key=KEY)["Body"].read())
    assert stored["environment"] == "hand-edited"


def test_state_deleted_behind_mlctls_back_is_a_conflict(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3, versioned=False)
    first_state(backend(s3, bucket))
    be = backend(s3, bucket)
    state = be.read()
    assert state is not None
    s3.client().delete_object(Bucket=bucket, Key=KEY)
    with pytest.raises(StateConflictError):
        persist(be, state)


def test_state_created_by_another_writer_is_a_conflict(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    be = backend(s3, bucket)
    assert be.read() is None
    first_state(backend(s3, bucket))  # someone else creates it meanwhile
    with pytest.raises(StateConflictError, match="created by another operation"):
        persist(be, State(environment="dev"))


def test_other_lineage_is_refused(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    first_state(backend(s3, bucket))
    be = backend(s3, bucket)
    be.read()
    with pytest.raises(StateConflictError, match="lineage"):
        persist(be, State(environment="dev"))


def test_lock_object_excludes_a_second_holder_and_names_the_first(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    a, b = backend(s3, bucket), backend(s3, bucket)
    info = LockInfo.new("apply", "dev")
    a.lock(info)
    try:
        with pytest.raises(LockError) as caught:
            b.lock(LockInfo.new("apply", "dev"))
        message = str(caught.value)
        assert info.id in message and info.who in message and "apply" in message
        assert f"mlctl force-unlock -e dev {info.id}" in message
        holder = b.lock_holder()
        assert holder is not None and holder.id == info.id
        raw = s3.client().get_object(Bucket=bucket, Key=KEY + ".lock")["Body"].read()
        assert json.loads(raw)["id"] == info.id
    finally:
        a.unlock(info.id)
    assert b.lock_holder() is None
    with locked(b, "plan", "dev"):
        assert a.lock_holder() is not None
    assert a.lock_holder() is None


def test_force_unlock_removes_a_lock_left_behind(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    crashed = backend(s3, bucket)
    info = LockInfo.new("apply", "dev")
    crashed.lock(info)  # and never unlocks: the runner "died"
    operator = backend(s3, bucket)
    with pytest.raises(MlctlError, match="does not match"):
        operator.force_unlock("not-the-id")
    operator.force_unlock(info.id)
    assert operator.lock_holder() is None
    with pytest.raises(MlctlError, match="no lock is held"):
        operator.force_unlock(info.id)
    operator.lock(LockInfo.new("apply", "dev"))


def test_unlock_leaves_a_lock_that_is_no_longer_ours(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3)
    slow, operator, newcomer = backend(s3, bucket), backend(s3, bucket), backend(s3, bucket)
    old = LockInfo.new("apply", "dev")
    slow.lock(old)
    operator.force_unlock(old.id)
    new = LockInfo.new("apply", "dev")
    newcomer.lock(new)
    slow.unlock(old.id)
    holder = operator.lock_holder()
    assert holder is not None and holder.id == new.id


def test_unlock_is_a_conditional_delete_of_the_object_it_created(
    s3: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is taken over between unlock's read of the holder and its delete (the holder
    read still says "ours"): the delete is conditional on our object's ETag and must miss."""
    bucket = fresh_bucket(s3)
    slow, operator, newcomer = backend(s3, bucket), backend(s3, bucket), backend(s3, bucket)
    old = LockInfo.new("apply", "dev")
    slow.lock(old)
    operator.force_unlock(old.id)
    new = LockInfo.new("apply", "dev")
    newcomer.lock(new)
    monkeypatch.setattr(slow, "_holder", lambda: old)  # a read from before the takeover
    slow.unlock(old.id)
    holder = operator.lock_holder()
    assert holder is not None and holder.id == new.id
    newcomer.unlock(new.id)
    assert operator.lock_holder() is None


def test_state_from_a_newer_mlctl_is_refused_not_rewritten(s3: Seaweed) -> None:
    """Terraform's rule: a state whose format_version is newer than this mlctl understands
    is neither read nor overwritten."""
    bucket = fresh_bucket(s3)
    be = backend(s3, bucket)
    first_state(be)
    raw = json.loads(s3.client().get_object(Bucket=bucket, Key=KEY)["Body"].read())
    raw["format_version"] = 99
    body = json.dumps(raw).encode()
    s3.client().put_object(Bucket=bucket, Key=KEY, Body=body)
    with pytest.raises(MlctlError, match=r"format_version 99.*newer than this mlctl"):
        backend(s3, bucket).read()
    assert s3.client().get_object(Bucket=bucket, Key=KEY)["Body"].read() == body


def test_history_and_pull_of_a_version(s3: Seaweed) -> None:
    bucket = fresh_bucket(s3, versioned=True)
    be = backend(s3, bucket)
    state = first_state(be)
    with locked(be, "test", "dev"):
        be.read()
        for name in ("second", "third"):
            state.environment = name
            persist(be, state)
    versions = be.history()
    assert [v.serial for v in versions] == [3, 2, 1]
    assert versions[0].latest and not versions[1].latest
    assert all(v.lineage == state.lineage for v in versions)
    old = be.read_version(versions[1].version_id)
    assert (old.serial, old.environment) == (2, "second")
    with pytest.raises(NotFoundError):
        be.read_version("0000000000000000deadbeef00000000")
    assert be.versioning() == "Enabled"


def test_wrong_credentials_are_one_clear_error(s3: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = fresh_bucket(s3)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(MlctlError) as caught:
        backend(s3, bucket).read()
    assert "secret key does not match" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_access_key_and_missing_bucket(s3: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MlctlError, match="bucket does not exist"):
        backend(s3, "no-such-bucket-mlctl").read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(MlctlError, match="credentials"):
        backend(s3, "no-such-bucket-mlctl").read()
