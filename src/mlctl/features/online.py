"""Online feature stores: the latest materialized value of each (view, entity key).

Contract of every :class:`OnlineStore`:

* One record per (view, entity key): the event time (UTC, integer nanoseconds since the epoch)
  and the view's feature values, in the order of the view's ``features`` at write time.
* :meth:`~OnlineStore.write` is *latest wins*: a record replaces the stored one only when its
  event time is later or equal (equal: the later write wins, matching the offline join's
  "last row in source order" rule). It returns how many records it actually changed, so an
  unchanged window rewritten by mistake shows up as 0.
* :meth:`~OnlineStore.read` returns, for each requested key in order, ``(event_ns, values)``
  or None. It applies no ttl: expiry is decided by :mod:`mlctl.features.store` at request
  time, identically for every store.
* :meth:`~OnlineStore.view_schema` / :meth:`~OnlineStore.set_view_schema` hold the schema
  hash and feature order a view was written with; :meth:`~OnlineStore.drop_view` removes a
  view's records and schema (used for rebuilds and deletions).
* Entity keys are text: :func:`entity_key` renders one value per join key and joins them, so
  ``"C1"``, ``C1`` and ``1`` / ``1.0`` / ``"1"`` address the same record online as they do
  in the offline join.

Implementations: :class:`SQLiteOnlineStore` (embedded default, one WAL-mode file per
environment under ``<repo>/<local root>/online/<env>.sqlite``) and :class:`RedisOnlineStore`
(one hash per view, conditional writes in a Lua script). :func:`online_store` builds the one
an environment names in ``providers.online``. Importing this module is cheap (no pandas,
no redis client until a Redis store is opened).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlctl.errors import MlctlError

if TYPE_CHECKING:
    from mlctl.spec.envspec import EnvSpec

__all__ = [
    "OnlineStore",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "entity_key",
    "online_store",
    "online_store_name",
]

Record = tuple[str, int, Sequence[Any] | str]
"""(entity key, event time in ns, feature values in view order, or their JSON array text)."""

_SEP = "\x1f"
_OFFSET = 2**63  # Redis: event times as 20-digit unsigned text, so text order = time order


def key_part(value: Any) -> str:
    """One join key value as text (integral floats lose their ``.0``; bools are ``True``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalar
        return key_part(value.item())
    return str(value)


def entity_key(values: Sequence[Any]) -> str:
    """The store key of one entity: its join key values, in the view's key order."""
    if len(values) == 1:
        return key_part(values[0])
    return _SEP.join(key_part(v) for v in values)


class OnlineStore(Protocol):
    """What materialization writes to and online retrieval reads from (see module)."""

    def describe(self) -> str: ...

    def write(self, view: str, records: Iterable[Record]) -> int: ...

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, list[Any]] | None]: ...

    def view_schema(self, view: str) -> dict[str, Any] | None: ...

    def set_view_schema(self, view: str, schema: dict[str, Any]) -> None: ...

    def drop_view(self, view: str) -> int: ...

    def count(self, view: str) -> int: ...

    def close(self) -> None: ...


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=str)


def _dumps(values: Sequence[Any] | str) -> str:
    """A record's values as a JSON array (a ``str`` is taken as already encoded)."""
    if isinstance(values, str):
        return values
    return _ENCODER.encode(list(values))


class SQLiteOnlineStore:
    """The embedded online store: one SQLite file (WAL) per environment.

    Safe to share between threads (one connection behind a lock); several processes may
    read while one writes (WAL). Writes happen in one transaction per call.
    """

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS online_features (
        view TEXT NOT NULL,
        entity_key TEXT NOT NULL,
        event_ns INTEGER NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (view, entity_key)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS online_views (
        view TEXT PRIMARY KEY,
        schema TEXT NOT NULL
    );
    """
    _UPSERT = (
        "INSERT INTO online_features (view, entity_key, event_ns, payload) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (view, entity_key) DO UPDATE SET event_ns = excluded.event_ns, "
        "payload = excluded.payload WHERE excluded.event_ns >= online_features.event_ns "
        "AND (excluded.event_ns > online_features.event_ns "
        "OR excluded.payload != online_features.payload)"
    )

    def __init__(self, path: Path, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache
            self._db.execute("PRAGMA mmap_size=1073741824")  # reads without a syscall per page
            self._db.executescript(self._SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise MlctlError(f"cannot open the online store {self.path}: {error}") from None
        self._lock = threading.Lock()
        self._sql: dict[int, str] = {}

    def describe(self) -> str:
        return f"sqlite:{self.label}"

    def write(self, view: str, records: Iterable[Record]) -> int:
        # in key order: B-tree appends instead of random inserts (several times faster)
        rows = sorted((view, key, int(ns), _dumps(values)) for key, ns, values in records)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cursor = self._db.executemany(self._UPSERT, rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._db.execute("ROLLBACK")
                raise MlctlError(f"online store {self.path}: write failed: {error}") from None
        return max(cursor.rowcount, 0)

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, list[Any]] | None]:
        n = len(keys)
        if n == 0:
            return []
        sql = self._sql.get(n)
        if sql is None:
            marks = ",".join("?" * n)
            sql = self._sql[n] = (
                "SELECT entity_key, event_ns, payload FROM online_features "
                f"WHERE view = ? AND entity_key IN ({marks})"
            )
        with self._lock:
            found = self._db.execute(sql, (view, *keys)).fetchall()
        if n == 1:
            return [(found[0][1], json.loads(found[0][2]))] if found else [None]
        by_key = {key: (ns, json.loads(payload)) for key, ns, payload in found}
        return [by_key.get(key) for key in keys]

    def view_schema(self, view: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT schema FROM online_views WHERE view = ?", (view,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_view_schema(self, view: str, schema: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO online_views (view, schema) VALUES (?, ?) "
                "ON CONFLICT (view) DO UPDATE SET schema = excluded.schema",
                (view, json.dumps(schema, sort_keys=True)),
            )

    def drop_view(self, view: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cursor = self._db.execute("DELETE FROM online_features WHERE view = ?", (view,))
            self._db.execute("DELETE FROM online_views WHERE view = ?", (view,))
            self._db.execute("COMMIT")
        return max(cursor.rowcount, 0)

    def count(self, view: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM online_features WHERE view = ?", (view,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


# KEYS[1] = the view's hash; ARGV = key, ts (20-digit text), payload, key, ts, payload, ...
_WRITE_LUA = """
local h = KEYS[1]
local n = 0
for i = 1, #ARGV, 3 do
  local key, ts, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local value = ts .. '|' .. payload
  local cur = redis.call('HGET', h, key)
  if (not cur) or (string.sub(cur, 1, 20) < ts)
     or (string.sub(cur, 1, 20) == ts and cur ~= value) then
    redis.call('HSET', h, key, value)
    n = n + 1
  end
end
return n
"""


class RedisOnlineStore:
    """The team online store: one Redis hash per view (``<prefix><env>:view:<view>``).

    Each field is an entity key; its value is ``<event time>|<JSON values>``. Latest-wins
    writes run as a Lua script (atomic per batch of 2,000 records); a read of N entities is
    one ``HMGET``.
    """

    _BATCH = 2000

    def __init__(self, client: Any, prefix: str, env: str, where: str = "redis") -> None:
        self._r = client
        self._base = f"{prefix}{env}:"
        self._where = where
        self._script = client.register_script(_WRITE_LUA)

    @classmethod
    def connect(
        cls,
        *,
        url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        prefix: str = "mlctl:",
        env: str = "default",
    ) -> RedisOnlineStore:
        """Connect (lazily importing the redis client) and check the server answers."""
        from mlctl.extras import require

        redis = require("redis", "redis")  # the mlctl[redis] extra
        if url:
            client = redis.Redis.from_url(url, socket_timeout=5)
            where = url.split("@")[-1]
        else:
            client = redis.Redis(host=host, port=port, db=db, password=password, socket_timeout=5)
            where = f"{host}:{port}/{db}"
        try:
            client.ping()
        except redis.RedisError as error:
            raise MlctlError(f"cannot reach the redis online store at {where}: {error}") from None
        return cls(client, prefix, env, where)

    def _hash(self, view: str) -> str:
        return f"{self._base}view:{view}"

    def describe(self) -> str:
        return f"redis:{self._where}/{self._base}"

    def write(self, view: str, records: Iterable[Record]) -> int:
        key = self._hash(view)
        changed = 0
        batch: list[str] = []
        for entity, ns, values in records:
            batch += [entity, f"{int(ns) + _OFFSET:020d}", _dumps(values)]
            if len(batch) >= 3 * self._BATCH:
                changed += int(self._script(keys=[key], args=batch))
                batch = []
        if batch:
            changed += int(self._script(keys=[key], args=batch))
        return changed

    def read(self, view: str, keys: Sequence[str]) -> list[tuple[int, list[Any]] | None]:
        if not keys:
            return []
        out: list[tuple[int, list[Any]] | None] = []
        for raw in self._r.hmget(self._hash(view), list(keys)):
            if raw is None:
                out.append(None)
            else:
                out.append((int(raw[:20]) - _OFFSET, json.loads(raw[21:])))
        return out

    def view_schema(self, view: str) -> dict[str, Any] | None:
        raw = self._r.hget(f"{self._base}views", view)
        return json.loads(raw) if raw else None

    def set_view_schema(self, view: str, schema: dict[str, Any]) -> None:
        self._r.hset(f"{self._base}views", view, json.dumps(schema, sort_keys=True))

    def drop_view(self, view: str) -> int:
        n = int(self._r.hlen(self._hash(view)))
        self._r.delete(self._hash(view))
        self._r.hdel(f"{self._base}views", view)
        return n

    def count(self, view: str) -> int:
        return int(self._r.hlen(self._hash(view)))

    def close(self) -> None:
        self._r.close()


def online_store_name(spec: EnvSpec) -> str:
    """The provider name ``providers.online`` of an environment (``local`` by default)."""
    return str(getattr(spec.config.providers, "online", "local"))


def online_store(spec: EnvSpec) -> OnlineStore:
    """The online store an environment names in ``providers.online`` (see module).

    ``spec`` is an :class:`mlctl.spec.envspec.EnvSpec`. A ``local`` provider means the embedded
    SQLite file under its root; a ``redis`` provider, Redis. Anything else is a MlctlError.
    """
    from mlctl.spec.models import LocalProvider, RedisProvider

    name = online_store_name(spec)
    config = spec.providers.get(name)
    if config is None and name == "local":
        config = LocalProvider(type="local")
    if config is None:
        raise MlctlError(f"online store provider '{name}' has no providers/{name}.yaml")
    if isinstance(config, LocalProvider):
        relative = f"{config.root.rstrip('/')}/online/{spec.name}.sqlite"
        return SQLiteOnlineStore(spec.repo / relative, label=relative)
    if isinstance(config, RedisProvider):
        return RedisOnlineStore.connect(
            url=config.url,
            host=config.host,
            port=config.port,
            db=config.db,
            password=config.password,
            prefix=config.key_prefix,
            env=spec.name,
        )
    kind = getattr(config, "type", "?")
    raise MlctlError(f"provider '{name}' ({kind}) cannot hold online features: use a local or redis provider")
