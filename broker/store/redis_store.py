"""The shared store in Redis: policy versions with history, the last plan, an audit log and leases.

Several broker replicas and the CLI share one Redis, so every write that could race is decided on the
server, atomically: a policy version is appended with ``WATCH``/``MULTI``/``EXEC`` (a stale version is a
``ConflictError`` and nothing is written), a plan or a fenced value is written by a compare-and-set Lua
script, and leases are Lua scripts that hand out ever-growing fencing tokens. This module is the only one
that imports ``redis`` (an import-linter contract keeps the decision packages free of it).

Keys (``P`` is the prefix, ``broker`` by default; the braces make every key hash to one Redis Cluster slot, so
the multi-key transactions and scripts stay legal there)::

    {P}:schema          string  layout version of these keys (SCHEMA_VERSION); a newer one is refused
    {P}:policy:log      list    PolicyRecord JSON; element i is version i + 1, so LLEN is the head
    {P}:observation     string  Observation JSON (last writer wins)
    {P}:plan            hash    version, json: the last published plan (a write must carry a newer version)
    {P}:audit           stream  entry: AuditEntry JSON, trimmed to the newest ``audit_max`` entries
    {P}:lease:NAME      hash    holder, token; expires after the lease's TTL
    {P}:fence:NAME      string  the newest token issued for lease NAME (never expires, only grows)
    {P}:fenced:KEY      string  a value written by ``fenced_write``

Durability: Redis answers a write once it is in memory. Only with ``appendonly yes`` and ``appendfsync
always`` is the write also fsync-ed to the append-only file before the answer goes out, which is what
"durable before acknowledged" needs. ``connect`` checks both settings (``CONFIG GET``) and logs a
warning, or refuses to start with ``durability=require``. With replicas, ``replicas=N`` also waits
(``WAIT``) until N replicas hold each policy write before acknowledging it.

Failures: connection errors and timeouts are ``TemporaryPeerError("redis", ...)``; the client reconnects by
itself on the next call. A temporary error on a write means its outcome is unknown: re-read before retrying
(a retry on the same expected version is refused if the first attempt landed). Anything else Redis refuses
is a ``PermanentPeerError``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.errors import ConflictError, InputError, PermanentPeerError, TemporaryPeerError
from broker.model import parse
from broker.store.records import AuditEntry, Fence, Observation, PolicyRecord, StoredPlan

SCHEMA_VERSION: Final = 1
"""Layout of the keys above. Bump it with any incompatible change; an older broker then refuses the store."""

SCHEMES: Final = ("redis", "rediss", "unix")
"""URL schemes that name a Redis server (plain TCP, TLS, a Unix socket)."""

PEER: Final = "redis"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME_RE = re.compile(_NAME)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class Durability(StrEnum):
    """What ``connect`` does when Redis would acknowledge writes before they are on disk."""

    WARN = "warn"
    REQUIRE = "require"


class RedisSettings(BaseModel):
    """How the store uses its Redis; in a URL these are query parameters (``?durability=require``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str = Field("broker", pattern=_NAME, description="Key namespace (brokers sharing a Redis).")
    durability: Durability = Durability.WARN
    audit_max: int = Field(10_000, ge=1, le=10_000_000, description="Audit entries kept (newest).")
    replicas: int = Field(0, ge=0, le=64, description="Replicas that must hold a policy write (WAIT).")
    replica_timeout_ms: int = Field(1_000, ge=1, le=600_000)
    timeout_s: float = Field(5.0, gt=0, le=300, description="Socket connect and read timeout.")


# --- server-side scripts: each runs atomically, so no other client can interleave --------------------------

_PUT_VERSIONED = """
-- KEYS[1] the hash written; KEYS[2] the lease's fence counter (only when ARGV[3] is a token)
-- ARGV[1] version, ARGV[2] payload, ARGV[3] fencing token or ''
if ARGV[3] ~= '' then
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[3]) ~= newest then return {'fenced', newest} end
end
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(ARGV[1]) <= tonumber(stored) then return {'stale', tonumber(stored)} end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'json', ARGV[2])
return {'ok', tonumber(ARGV[1])}
"""

_FENCED_SET = """
-- KEYS[1] the lease's fence counter; KEYS[2] the key written. ARGV[1] token, ARGV[2] value
local newest = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) ~= newest then return {'fenced', newest} end
redis.call('SET', KEYS[2], ARGV[2])
return {'ok', newest}
"""

_ACQUIRE = """
-- KEYS[1] the lease; KEYS[2] its fence counter. ARGV[1] holder, ARGV[2] ttl in ms
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'token', token)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return token
"""

_RENEW = """
-- KEYS[1] the lease. ARGV[1] holder, ARGV[2] token, ARGV[3] ttl in ms
local lease = redis.call('HMGET', KEYS[1], 'holder', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_ADOPT = """
-- KEYS[1] the lease's fence counter. ARGV[1] a token issued outside the store (a Kubernetes Lease's transitions)
local newest = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if token < newest then return newest end
redis.call('SET', KEYS[1], ARGV[1])
return token
"""

_RELEASE = """
-- KEYS[1] the lease. ARGV[1] holder, ARGV[2] token
local lease = redis.call('HMGET', KEYS[1], 'holder', 'token')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class RedisStore:
    """A ``PolicyStore`` in Redis, plus the plan, the audit log and leases. Open it with ``from_url`` or
    ``connect``; both check the server (reachable, schema, durability) before returning."""

    def __init__(self, client: redis.Redis, settings: RedisSettings) -> None:
        self._r = client
        self.settings = settings
        kwargs = client.connection_pool.connection_kwargs
        address = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self.where = f"redis {address}/{kwargs.get('db', 0)}"
        base = "{" + settings.prefix + "}"
        self._schema_key = f"{base}:schema"
        self._log_key = f"{base}:policy:log"
        self._observation_key = f"{base}:observation"
        self._plan_key = f"{base}:plan"
        self._audit_key = f"{base}:audit"
        self._base = base
        self._put_versioned = client.register_script(_PUT_VERSIONED)
        self._fenced_set = client.register_script(_FENCED_SET)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._adopt = client.register_script(_ADOPT)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """Open ``redis://[user:password@]host:port/db?durability=require&prefix=...`` (``rediss://`` for
        TLS, ``unix:///path?db=0`` for a socket). Query parameters named like ``RedisSettings`` fields are
        ours; the rest go to the Redis client. A malformed URL is an ``InputError`` on ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise InputError("url", f"{parts.scheme or '(none)'}:// is not one of {', '.join(SCHEMES)}")
        ours: dict[str, str] = {}
        theirs: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in RedisSettings.model_fields:
                ours[key] = value
            else:
                theirs.append((key, value))
        settings = parse(RedisSettings, ours, "url")
        return cls.connect(urlunsplit(parts._replace(query=urlencode(theirs))), settings)

    @classmethod
    def connect(cls, url: str, settings: RedisSettings | None = None) -> RedisStore:
        """Connect to the Redis at ``url``, stamp or check the schema version and check durability."""
        settings = settings or RedisSettings()
        try:
            client = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=settings.timeout_s,
                socket_connect_timeout=settings.timeout_s,
                # No client-side retries: a retried script or EXEC could apply twice; callers retry instead.
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
        except ValueError as exc:
            raise InputError("url", str(exc)) from None
        store = cls(client, settings)
        try:
            store._check_schema()
            store._check_durability()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the connections (the store must not be used afterwards)."""
        self._r.close()

    # --- PolicyStore ---------------------------------------------------------------------------------------

    def head(self) -> int:
        with self._peer():
            return _as_int(self._r.llen(self._log_key))

    def get(self, version: int) -> PolicyRecord | None:
        if version < 1:
            return None
        with self._peer():
            raw = _as_text(self._r.lindex(self._log_key, version - 1))
        return None if raw is None else self._load(PolicyRecord, raw, f"version {version}")

    def history(self, limit: int) -> tuple[PolicyRecord, ...]:
        if limit < 1:
            return ()
        with self._peer():
            rows = _as_list(self._r.lrange(self._log_key, -limit, -1))
        return tuple(self._load(PolicyRecord, _as_str(raw), "a history record") for raw in reversed(rows))

    def append(self, record: PolicyRecord) -> None:
        """Append ``record`` (and its audit entry) in one transaction that fails if the head moved after it
        was read; replicas, when configured, must hold it before this returns."""
        raw = _dump(record)
        audit = _dump(AuditEntry(at=record.created_at, actor=record.author, action=f"policy.{record.action}",
                                  detail=f"version {record.version}, changes: {len(record.diff)}"))
        base = record.version - 1
        with self._peer():
            try:
                with self._r.pipeline() as pipe:
                    pipe.watch(self._log_key)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    head = _as_int(pipe.llen(self._log_key))
                    if head != base:
                        raise ConflictError(base, head)
                    pipe.multi()
                    pipe.rpush(self._log_key, raw)
                    pipe.xadd(self._audit_key, {"entry": audit}, maxlen=self.settings.audit_max,
                              approximate=False)
                    pipe.execute()
            except WatchError:
                self._settle_failed_append(record.version, raw)
        self._wait_for_replicas(f"policy version {record.version}")

    def observation(self) -> Observation | None:
        with self._peer():
            raw = _as_text(self._r.get(self._observation_key))
        return None if raw is None else self._load(Observation, raw, "the observation")

    def save_observation(self, observation: Observation) -> None:
        with self._peer():
            self._r.set(self._observation_key, _dump(observation))

    # --- plans ---------------------------------------------------------------------------------------------

    def put_plan(self, plan_json: str, version: int, fence: Fence | None = None) -> None:
        """Store the plan if ``version`` is newer than the stored one (else ``ConflictError(version,
        stored)``, nothing written). With ``fence``, it is also refused unless its token is the lease's newest
        (``ConflictError(token, newest)``)."""
        if version < 0:
            raise InputError("version", f"a plan version is >= 0, got {version}")
        keys = [self._plan_key] if fence is None else [self._plan_key, self._fence_key(fence.lease)]
        token = "" if fence is None else str(fence.token)
        with self._peer():
            verdict, number = _as_verdict(self._put_versioned(keys=keys, args=[version, plan_json, token]))
        if verdict == "fenced":
            raise ConflictError(fence.token if fence else 0, number)
        if verdict == "stale":
            raise ConflictError(version, number)

    def plan_version(self) -> int:
        """The stored plan's version (0: none), without its document: what a follower polls, so that it fetches
        a multi-megabyte plan only when a newer one is there."""
        with self._peer():
            version = self._r.hget(self._plan_key, "version")
        return 0 if version is None else _as_int(version)

    def get_plan(self) -> StoredPlan | None:
        """The last plan stored, with its version."""
        with self._peer():
            fields = _as_dict(self._r.hgetall(self._plan_key))
        if not fields:
            return None
        data = {"version": fields.get("version"), "plan_json": fields.get("json")}
        return self._load_model(StoredPlan, data, "the plan")

    # --- audit log -----------------------------------------------------------------------------------------

    def audit(self, entry: AuditEntry) -> None:
        """Append ``entry``; the oldest entries beyond ``audit_max`` are dropped in the same command."""
        with self._peer():
            self._r.xadd(self._audit_key, {"entry": _dump(entry)}, maxlen=self.settings.audit_max,
                         approximate=False)

    def audit_log(self, limit: int) -> tuple[AuditEntry, ...]:
        """Up to ``limit`` entries, newest first."""
        if limit < 1:
            return ()
        with self._peer():
            rows = _as_list(self._r.xrevrange(self._audit_key, count=limit))
        return tuple(self._load(AuditEntry, _as_str(_as_dict(row[1]).get("entry")), "an audit entry")
                     for row in rows)

    # --- leases and fencing --------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> int | None:
        """Take the lease ``name`` for ``ttl_s`` seconds if nobody holds it: its new fencing token (greater
        than every token issued for it before), or ``None`` when it is held (even by ``holder``: renew
        instead, so that a restarted holder cannot carry on with a token its old self also used)."""
        self._check_lease(name, holder)
        with self._peer():
            token = self._acquire(keys=[self._lease_key(name), self._fence_key(name)],
                                  args=[holder, _ttl_ms(ttl_s)])
        return None if token is None else _as_int(token)

    def renew_lease(self, name: str, holder: str, token: int, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now if ``holder`` still holds it with ``token``; ``False`` when
        it expired or passed to someone else (stop acting as its holder)."""
        self._check_lease(name, holder)
        with self._peer():
            renewed = self._renew(keys=[self._lease_key(name)], args=[holder, token, _ttl_ms(ttl_s)])
        return _as_int(renewed) == 1

    def release_lease(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up so that another holder need not wait for it to expire; ``False`` when it was no
        longer ``holder``'s (nothing changed)."""
        self._check_lease(name, holder)
        with self._peer():
            return _as_int(self._release(keys=[self._lease_key(name)], args=[holder, token])) == 1

    def adopt_fence(self, lease: str, token: int) -> int:
        """Make ``token``, issued outside the store, the newest token of ``lease`` unless the store has seen a
        larger one; return the newest token afterwards (``token`` when adopted, idempotently after a lost reply;
        a larger number when ``token`` is behind, and writes fenced with it would be refused).

        Why: a leader elected by a Kubernetes Lease gets its token from the API server (``leaseTransitions``), so
        the store must learn it before the ordinary fenced paths can refuse every older token, which is every
        deposed leader's. Only the elector can move its term past a larger counter (its Lease must agree), so a
        token that is behind is answered, not raised. The counter is shared with the store's own lease of the same
        name: switching ``leader.kind`` between ``redis`` and ``kubernetes`` keeps tokens growing."""
        if not _valid_name(lease):
            raise InputError("lease", f"{lease!r} does not match {_NAME}")
        if token < 0:
            raise InputError("token", f"a fencing token is >= 0, got {token}")
        with self._peer():
            return _as_int(self._adopt(keys=[self._fence_key(lease)], args=[token]))

    def fenced_write(self, fence: Fence, key: str, value: str) -> None:
        """Set ``key`` to ``value`` only if ``fence.token`` is the newest token of ``fence.lease``: a deposed
        holder's late write is refused with ``ConflictError(token, newest)``. (Equal, not greater-or-equal,
        so a token that was never issued, or one a store restored from an old backup never saw, is refused
        too.)"""
        if not _valid_name(key):
            raise InputError("key", f"{key!r} does not match {_NAME}")
        with self._peer():
            verdict, newest = _as_verdict(self._fenced_set(
                keys=[self._fence_key(fence.lease), f"{self._base}:fenced:{key}"], args=[fence.token, value]))
        if verdict == "fenced":
            raise ConflictError(fence.token, newest)

    def fenced_value(self, key: str) -> str | None:
        """The value last written to ``key`` with ``fenced_write``."""
        with self._peer():
            return _as_text(self._r.get(f"{self._base}:fenced:{key}"))

    # --- internals -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _peer(self) -> Iterator[None]:
        """Translate the client's exceptions into the broker's error tree (``ConflictError`` passes)."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError) as exc:
            raise TemporaryPeerError(PEER, f"{self.where}: {type(exc).__name__}: {exc}") from None
        except RedisError as exc:
            raise PermanentPeerError(PEER, f"{self.where}: {type(exc).__name__}: {exc}") from None

    def _settle_failed_append(self, version: int, raw: str) -> None:
        """The transaction was aborted: either another writer moved the head (a conflict) or the connection
        dropped while watching (the client reports both as ``WatchError``). Re-read to tell which; if the
        connection dropped after ``EXEC`` was applied, the record is there and the append succeeded."""
        head = _as_int(self._r.llen(self._log_key))
        if head >= version and _as_text(self._r.lindex(self._log_key, version - 1)) == raw:
            return
        if head == version - 1:
            raise TemporaryPeerError(PEER, f"{self.where}: the connection dropped while writing version "
                                           f"{version}; nothing was written")
        raise ConflictError(version - 1, head)

    def _wait_for_replicas(self, what: str) -> None:
        wanted = self.settings.replicas
        if wanted == 0:
            return
        with self._peer():
            acked = _as_int(self._r.wait(wanted, self.settings.replica_timeout_ms))
        if acked < wanted:
            raise TemporaryPeerError(
                PEER, f"{self.where}: {what} is on the primary but only {acked} of {wanted} replicas "
                      f"confirmed it within {self.settings.replica_timeout_ms} ms; re-read before retrying")

    def _check_schema(self) -> None:
        with self._peer():
            self._r.set(self._schema_key, SCHEMA_VERSION, nx=True)
            found = _as_text(self._r.get(self._schema_key))
        if found == str(SCHEMA_VERSION):
            return
        if found is not None and found.isdigit() and int(found) > SCHEMA_VERSION:
            raise PermanentPeerError(PEER, f"{self.where}: {self._schema_key} is schema {found}, newer than "
                                           f"the {SCHEMA_VERSION} this broker reads; upgrade the broker")
        raise PermanentPeerError(PEER, f"{self.where}: {self._schema_key} is {found!r}; this broker reads "
                                       f"schema {SCHEMA_VERSION} only")

    def _check_durability(self) -> None:
        """Warn (or refuse, with ``durability=require``) when Redis would acknowledge before fsync."""
        try:
            with self._peer():
                config = _as_dict(self._r.config_get("append*"))
            problems = [f"{name} is {config.get(name)!r}, not {wanted!r}"
                        for name, wanted in (("appendonly", "yes"), ("appendfsync", "always"))
                        if config.get(name) != wanted]
        except PermanentPeerError as exc:
            problems = [f"CONFIG GET is refused ({exc.message}), so durability cannot be checked"]
        if not problems:
            return
        message = (f"{self.where}: acknowledged writes may be lost on a crash ({'; '.join(problems)}); run "
                   "Redis with appendonly yes and appendfsync always")
        if self.settings.durability is Durability.REQUIRE:
            raise PermanentPeerError(PEER, message)
        log.warning("%s", message)

    def _check_lease(self, name: str, holder: str) -> None:
        if not _valid_name(name):
            raise InputError("lease", f"{name!r} does not match {_NAME}")
        if not 1 <= len(holder) <= 256:
            raise InputError("holder", "between 1 and 256 characters")

    def _lease_key(self, name: str) -> str:
        return f"{self._base}:lease:{name}"

    def _fence_key(self, name: str) -> str:
        return f"{self._base}:fence:{name}"

    def _load(self, model: type[M], raw: str, what: str) -> M:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise PermanentPeerError(PEER, f"{self.where}: {what} does not validate "
                                           f"({exc.error_count()} errors)") from None

    def _load_model(self, model: type[M], data: dict[str, Any], what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise PermanentPeerError(PEER, f"{self.where}: {what} does not validate "
                                           f"({exc.error_count()} errors)") from None


# --- the client's replies are typed loosely (sync or async); these check what came back ------------------

def _dump(model: BaseModel) -> str:
    return orjson.dumps(model.model_dump(mode="json", by_alias=True)).decode()


def _valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None


def _ttl_ms(ttl_s: float) -> int:
    if not 0 < ttl_s <= 86_400:
        raise InputError("ttl_s", f"a lease lasts more than 0 and at most 86400 s, got {ttl_s}")
    return max(1, round(ttl_s * 1000))


def _unexpected(value: object) -> PermanentPeerError:
    return PermanentPeerError(PEER, f"unexpected reply {value!r}")


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise _unexpected(value)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _unexpected(value)


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _unexpected(value)


def _as_list(value: object) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    raise _unexpected(value)


def _as_dict(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _unexpected(value)


def _as_verdict(value: object) -> tuple[str, int]:
    reply = _as_list(value)
    if len(reply) != 2:
        raise _unexpected(value)
    return _as_str(reply[0]), _as_int(reply[1])


__all__ = ["PEER", "SCHEMA_VERSION", "SCHEMES", "Durability", "RedisSettings", "RedisStore"]
