"""The Redis Stream behind the Redis log: its layout, its ids, and the Lua that guards its epoch.

Each change is one stream entry ``{e: <[entry] JSON>, p: <previous id>}``. ``p``
chains the entries, so a reader that meets an entry whose ``p`` is not the id it
read last knows that entries are missing (trimmed, or lost by Redis). Two more
kinds of entry: ``{epoch: <token>, p: 0-0}`` opens an epoch, and ``{lost: <JSON>, p}``
says a Django process could not write some changes, so pages that may have missed
them must resync. The hash ``<key>:meta`` holds the ``epoch``, the id of the entry
that opened it (``created``) and the ``last`` id written.

Every script first makes sure the stream and its meta exist together; if either
is missing (Redis flushed, restarted empty, key deleted) it opens a new epoch, so
a cursor from before can never be mistaken for one of the new stream.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from serverpush.entries import Entry, decode

logger = logging.getLogger(__name__)


class StreamId(NamedTuple):
    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> StreamId:
        """``"<ms>-<seq>"`` as Redis writes it; raises ``ValueError``."""
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ZERO = StreamId(0, 0)


@dataclass
class Record:
    """One stream entry: a change (``entry``), a ``lost`` marker, or an epoch's opening."""

    id: StreamId
    prev: StreamId
    entry: Entry | None = None
    lost: str | None = None


@dataclass
class Snapshot:
    """What a read saw, all at one instant: the epoch, its first and last ids, and records."""

    epoch: str
    created: StreamId
    last: StreamId
    records: list[Record]


_EPOCH = """
local function epoch(replace)
  local e = redis.call('HGET', KEYS[2], 'epoch')
  if e and e ~= replace and redis.call('EXISTS', KEYS[1]) == 1 then return e end
  redis.call('DEL', KEYS[1])
  local id = redis.call('XADD', KEYS[1], '*', 'epoch', ARGV[1], 'p', '0-0')
  redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'created', id, 'last', id)
  return ARGV[1]
end
"""
# ARGV: fresh epoch, maxlen, min id ('0': no age limit), lost marker ('' if none), entries...
APPEND = _EPOCH + """
local e = epoch('')
local last = redis.call('HGET', KEYS[2], 'last')
local function add(kind, value)
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', kind, value, 'p', last)
end
if ARGV[4] ~= '' then add('lost', ARGV[4]) end
for i = 5, #ARGV do add('e', ARGV[i]) end
redis.call('HSET', KEYS[2], 'last', last)
if ARGV[3] ~= '0' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3]) end
return e
"""
# ARGV: fresh epoch, epoch to replace ('' for none), after ('' for no range), upto, extra.
# Returns the epoch, created, last, the records in (after, upto], and up to
# ``extra`` records at or before ``after`` (newest first), for the caller's cache.
READ = _EPOCH + """
local e = epoch(ARGV[2])
local meta = redis.call('HMGET', KEYS[2], 'created', 'last')
local range, older = {}, {}
if ARGV[3] ~= '' then
  range = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], ARGV[4])
  older = redis.call('XREVRANGE', KEYS[1], ARGV[3], '-', 'COUNT', ARGV[5])
end
return {e, meta[1], meta[2], range, older}
"""


def connect(url: str, timeout: float | None, connect_timeout: float) -> redis.Redis:
    """A client that fails fast: a timeout is the longest anyone waits.

    A broken connection is retried once, at once: after a Redis restart every pooled
    connection is dead, and that alone must not count as a failed write. A timeout
    is not retried. RESP2: no HELLO on connect, and no "maintenance notifications"
    mode, which would relax the timeouts.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "decode_responses": True,
        "protocol": 2,
    }
    if url.startswith(SENTINEL_SCHEME):
        return _sentinel_master(url, options)
    return redis.Redis.from_url(url, **options)


SENTINEL_SCHEME = "redis+sentinel://"


def _sentinel_master(url: str, options: dict[str, Any]) -> redis.Redis:
    """``redis+sentinel://[:password@]host:26379[,host:26379...]/<service>[/<db>]``: the master Sentinel names.

    The password is the master's; the Sentinels themselves are asked without one.

    The client asks the Sentinels for the master again whenever its connection
    fails, so writes and the tail follow a failover.
    """
    from urllib.parse import unquote, urlsplit

    from redis.sentinel import Sentinel

    parts = urlsplit(url)
    service, _, db = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError(f"SERVERPUSH_LOG = {url!r} names no master: use redis+sentinel://host:26379/<service name>/<db>")
    password = unquote(parts.password) if parts.password else None
    hosts = []
    for host in parts.netloc.rpartition("@")[2].split(","):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        hosts.append((name, int(port or 26379)))
    sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": options["socket_connect_timeout"], "socket_connect_timeout": options["socket_connect_timeout"]})
    return sentinel.master_for(service, db=int(db or 0), password=password, **options)


class ClusterUnsupported(redis.ResponseError):
    """The Redis log runs scripts over the stream and its meta hash, which a Redis Cluster keeps apart."""


CLUSTER_ERRORS = (redis.exceptions.ClusterCrossSlotError, redis.exceptions.MovedError, redis.exceptions.AskError, redis.exceptions.ClusterDownError)


class Stream:
    """The stream at ``key`` (and its meta hash), through ``client``."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.keys = [key, f"{key}:meta"]

    def append(self, payloads: list[str], lost: str, maxlen: int, min_id: str) -> None:
        """Write a ``lost`` marker (if any) then one entry per payload, in one round trip."""
        self._eval(APPEND, _token(), maxlen, min_id, lost, *payloads)

    def read(self, after: StreamId | None = None, upto: StreamId | None = None, extra: int = 0, replace: str = "") -> Snapshot:
        """The epoch and its ids, and the records in (``after``, ``upto``] plus ``extra`` older ones.

        ``replace``: open a new epoch if the current one is this one (the caller
        found that the stream lost entries).
        """
        after_arg = "" if after is None else str(after)
        raw = self._eval(READ, _token(), replace, after_arg, str(upto or ""), extra)
        epoch, created, last, in_range, older = raw
        records = [parse_record(epoch, item) for item in [*reversed(older), *in_range]]
        return Snapshot(epoch, StreamId.parse(created), StreamId.parse(last), [r for r in records if r is not None])

    def _eval(self, script: str, *args: Any) -> Any:
        try:
            return self.client.eval(script, 2, *self.keys, *args)
        except CLUSTER_ERRORS as exc:
            raise ClusterUnsupported(
                f"Redis Cluster is not supported by the Redis log (Redis said: {exc}); use one Redis server, "
                "with Sentinel (redis+sentinel://) for failover, see docs/deployment.md"
            ) from None

    def wait(self, epoch: str, after: StreamId, block_ms: int, count: int) -> list[Record]:
        """Records after ``after``, blocking up to ``block_ms`` for the first one."""
        reply = self.client.xread({self.key: str(after)}, count=count, block=block_ms)
        items = reply[0][1] if reply else []
        return [r for r in (parse_record(epoch, item) for item in items) if r is not None]


def parse_record(epoch: str, item: Any) -> Record | None:
    """The record of one ``(id, fields)`` stream item; None (logged) if it is not one of ours.

    A change that does not decode keeps its place in the chain, without an entry.
    """
    raw_id, fields = item[0], item[1]
    if isinstance(fields, list):
        fields = dict(zip(fields[::2], fields[1::2]))
    try:
        record = Record(StreamId.parse(raw_id), StreamId.parse(fields["p"]), lost=fields.get("lost"))
    except (KeyError, ValueError):
        logger.warning("serverpush: stream entry %s of %r has no valid 'p'; not written by serverpush?", raw_id, fields)
        return None
    if "e" in fields:
        try:
            [record.entry] = decode(fields["e"])
        except ValueError as exc:
            logger.warning("serverpush: stream entry %s holds a malformed change, skipped: %s", raw_id, exc)
            return record
        record.entry.position = f"{epoch}:{raw_id}"
    return record


def _token() -> str:
    return secrets.token_hex(4)
