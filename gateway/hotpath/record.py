"""Step 7 of the pipeline: the usage event goes to a Redis stream; the analytics
worker persists it (analytics.tasks.usage_flush). One script (FINISH) queues the event,
settles the request's reservation and writes its exact-cache entry: one round trip."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from .ids import unique_id
from .limits import SETTLE_FUNCTION, script_for, settle_args_upgrade
from .redis_keys import USAGE_STREAM
from .rediswire import WireRedis, WireScript

logger = logging.getLogger("aiproxy.gateway")

if TYPE_CHECKING:
    from .response_cache import CacheWrite

FINISH = SETTLE_FUNCTION + """
-- KEYS: the usage stream, [cache entry, cache index, cache sizes], settle's keys
-- ARGV: event, cache?, cache value, cache ttl, cache expiry, settle?, settle's args
redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
local k = 2
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', tonumber(ARGV[4]))
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), KEYS[2])
  redis.call('HSET', KEYS[4], KEYS[2], string.len(ARGV[3]))
  k = 5
end
if ARGV[6] == '1' then
  local keys, argv = {}, {}
  for i = k, #KEYS do keys[#keys + 1] = KEYS[i] end
  for i = 7, #ARGV do argv[#argv + 1] = ARGV[i] end
  settle(keys, argv)
end
return 1
"""


@dataclass(slots=True)
class UsageRecord:
    schema: str
    key_id: int
    key_name: str
    endpoint: str
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: str = "0"
    latency_ms: int = 0
    status_code: int = 200
    cache_status: str = "miss"
    cache_similarity: float | None = None
    cost_saved: str = "0"  # on a cache hit: what the answer would have cost upstream
    stream: bool = False
    usage_estimated: bool = False
    client_disconnected: bool = False
    error_type: str = ""
    deployment: str = ""  # "<group>/<deployment>" that served the answer
    attempts: int = 0  # upstream attempts made (0: none, e.g. a cache hit or a refused request)
    attempt_log: str = ""  # each attempt's deployment and outcome: "1 g/a 503 upstream_error; 2 g/b ok"
    ts: float = field(default_factory=time.time)
    event_id: str = field(default_factory=unique_id)


# What analytics.models.UsageEvent's columns hold (a test keeps the two in step). An event
# that does not fit would be refused by PostgreSQL in the worker's batch insert, so every
# event is bounded to them before it is queued.
USAGE_TEXT_LIMITS = (("key_name", 100), ("endpoint", 64), ("model", 128), ("provider", 128), ("cache_status", 16),
                     ("error_type", 64), ("deployment", 200), ("attempt_log", 1000))
USAGE_INT_FIELDS = ("input_tokens", "output_tokens", "latency_ms", "status_code", "attempts")
INT_MAX = 2**31 - 1  # PostgreSQL integer
BIGINT_MAX = 2**63 - 1
COST_MAX = Decimal("999999.99999999")  # numeric(14, 8)
_COST_LEN = len(str(COST_MAX))
_CENT = Decimal("0.00000001")


def text_bound(value: Any, limit: int) -> str:
    """`value` as text PostgreSQL stores in a varchar(`limit`): no NUL, valid UTF-8, cut to size.
    What cannot be stored becomes U+FFFD, so "gpt-4o\\0" is not counted as "gpt-4o"."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: neither orjson nor PostgreSQL takes them
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text[:limit]


def int_bound(value: Any, low: int = 0, high: int = INT_MAX) -> int:
    """`value` as an integer within [low, high]; a value that is no number raises ValueError."""
    if not isinstance(value, int):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        value = int(value)  # a float, a bool or a numeric string; anything else raises
    return low if value < low else high if value > high else value


def cost_bound(value: Any) -> str:
    """`value` as a decimal string within numeric(14, 8); no number (or NaN) raises ValueError."""
    try:
        amount = Decimal(value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value))
    except (InvalidOperation, TypeError):
        raise ValueError(f"not an amount: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {str(value)[:40]!r}")
    amount = max(-COST_MAX, min(COST_MAX, amount))
    return f"{amount.quantize(_CENT):f}"


def usage_event_bound(event: UsageRecord) -> UsageRecord:
    """Fit the event's fields to the usage table's columns, in place: a client's model name
    of any length or content must never make the worker's insert fail. The usual event
    passes one cheap check and is left as it is."""
    if _usage_event_fits(event):
        return event
    for name, limit in USAGE_TEXT_LIMITS:
        value = getattr(event, name)
        if type(value) is not str or len(value) > limit or "\x00" in value or not value.isascii():
            setattr(event, name, text_bound(value, limit))
    for name in USAGE_INT_FIELDS:
        value = getattr(event, name)
        if type(value) is not int or not 0 <= value <= INT_MAX:
            try:
                setattr(event, name, int_bound(value))
            except (ValueError, TypeError):
                setattr(event, name, 0)
    for name in ("cost", "cost_saved"):
        value = getattr(event, name)
        if value != "0" and not _cost_fits(value):
            try:
                setattr(event, name, cost_bound(value))
            except ValueError:
                setattr(event, name, "0")
    return event


def _cost_fits(value: Any) -> bool:
    """usage_cost's form: "123456.12345678" at most, no sign, no NaN."""
    return type(value) is str and len(value) <= _COST_LEN and value[-9:-8] == "." and value[:1].isdigit()


def _usage_event_fits(e: UsageRecord) -> bool:
    """The per-request check, unrolled (about half the time of the loops above)."""
    try:
        text = e.model + e.key_name + e.provider + e.endpoint + e.cache_status + e.error_type + e.deployment + e.attempt_log
        return (len(e.model) <= 128 and len(e.key_name) <= 100 and len(e.provider) <= 128 and len(e.endpoint) <= 64
                and len(e.cache_status) <= 16 and len(e.error_type) <= 64 and len(e.deployment) <= 200
                and len(e.attempt_log) <= 1000 and text.isascii() and "\x00" not in text
                and type(e.attempts) is int and 0 <= e.attempts <= INT_MAX
                and type(e.input_tokens) is int and 0 <= e.input_tokens <= INT_MAX
                and type(e.output_tokens) is int and 0 <= e.output_tokens <= INT_MAX
                and type(e.latency_ms) is int and 0 <= e.latency_ms <= INT_MAX
                and type(e.status_code) is int and 0 <= e.status_code <= INT_MAX
                and (e.cost == "0" or _cost_fits(e.cost)) and (e.cost_saved == "0" or _cost_fits(e.cost_saved)))
    except (TypeError, AttributeError):  # a field of the wrong type
        return False


def usage_cost(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> str:
    return f"{(input_tokens * input_price + output_tokens * output_price) / 1_000_000:.8f}"


class UsageSpool:
    """Usage events (and their settlements) that could not reach Redis, kept in a file
    until it is back, so a Redis outage loses no usage. One file per process; a process
    adopts the files of processes that died with events still in them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()
        self.path = directory / f"usage-{self.pid}.jsonl"
        self.lock = threading.Lock()
        self.pending = False
        self._adopt()

    def _adopt(self) -> None:
        if not self.directory.is_dir():
            return
        for other in self.directory.glob("usage-*.jsonl"):
            pid = other.stem.split("-", 1)[1]
            if other != self.path and pid.isdigit() and not _alive(int(pid)):
                with self.lock, open(self.path, "ab") as out:
                    out.write(other.read_bytes())
                other.unlink(missing_ok=True)
        self.pending = self.path.exists() and self.path.stat().st_size > 0

    def append(self, event: UsageRecord, settle: tuple[list[str], list[Any]] | None) -> None:
        line = orjson.dumps({"event": asdict(event), "settle": settle}) + b"\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock, open(self.path, "ab") as out:  # a few hundred bytes to the page cache
            out.write(line)
        self.pending = True

    async def replay(self, client: aioredis.Redis | WireRedis) -> int:
        """Send what was spooled; entries that fail again stay for the next try."""
        with self.lock:
            if not self.path.exists():
                self.pending = False
                return 0
            lines = self.path.read_bytes().splitlines()
            self.path.unlink()
            self.pending = False
        sent = 0
        for i, line in enumerate(lines):
            item = orjson.loads(line)
            event = UsageRecord(**item["event"])
            try:
                await _send(client, event, settle_args_upgrade(item["settle"]))
            except RedisError:
                with self.lock, open(self.path, "ab") as out:
                    out.write(b"\n".join(lines[i:]) + b"\n")
                self.pending = True
                break
            sent += 1
        return sent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_spool: UsageSpool | None = None


def usage_spool() -> UsageSpool:
    global _spool
    if _spool is None or _spool.pid != os.getpid():  # a forked worker gets its own file
        from aiproxy_site.embedded import data_dir

        _spool = UsageSpool(data_dir() / "spool")
    return _spool


def _finish_call(event: UsageRecord, settle: Any, write: CacheWrite | None) -> tuple[list[Any], list[Any]]:
    """KEYS and ARGV of FINISH (the event is bounded first: every way to the stream passes here)."""
    keys: list[Any] = [USAGE_STREAM]
    args: list[Any] = [orjson.dumps(usage_event_bound(event))]  # orjson writes the dataclass's fields as asdict would
    if write is not None:
        keys += [write.key, write.index_key, write.sizes_key]
        args += ["1", write.value, write.ttl, write.expires_at()]
    else:
        args += ["0", "", 0, 0]
    if settle is not None:
        keys += settle[0]
        args += ["1", *settle[1]]
    else:
        args.append("0")
    return keys, args


async def _send(client: aioredis.Redis | WireRedis, event: UsageRecord, settle: Any, write: CacheWrite | None = None) -> None:
    keys, args = _finish_call(event, settle, write)
    await script_for(client, FINISH)(keys=keys, args=args)


async def usage_event_record(client: aioredis.Redis | WireRedis, event: UsageRecord, settle: tuple[list[str], list[Any]] | None = None,
                             write: CacheWrite | None = None) -> None:
    """Queue the event in one round trip, together with, if given, the settlement of its
    reservation (`settle`, gateway.hotpath.limits.settle_args) and its exact-cache entry (`write`).
    If Redis is unavailable the event and settlement go to the spool and are sent once
    Redis answers again (the cache entry is dropped: it is only a cache)."""
    await _spooled(client, event, settle, _send(client, event, settle, write))


async def _spooled(client: aioredis.Redis | WireRedis, event: UsageRecord, settle: tuple[list[str], list[Any]] | None,
                   sending: Awaitable[Any]) -> None:
    """Await the FINISH round trip `sending`; on a Redis failure spool the event, and after
    a success send what an earlier failure spooled."""
    spool = usage_spool()
    try:
        await sending
    except RedisError:
        spool.append(event, settle)
        return
    if spool.pending:
        await spool.replay(client)


async def usage_event_begin(client: aioredis.Redis | WireRedis, event: UsageRecord,
                            settle: tuple[list[str], list[Any]] | None = None,
                            write: CacheWrite | None = None) -> FinishReply | None:
    """usage_event_record in two halves, so a client can have its answer while Redis runs
    the script: on a connected WireRedis the command is written to Redis's socket before
    this returns, and the returned FinishReply collects the reply (awaited, or `detach()`ed
    so nobody waits; either way a failure ends in the spool). Otherwise the whole round
    trip happens here and None is returned. Either way the usage has left the process
    before the caller answers."""
    if isinstance(client, WireRedis):
        keys, args = _finish_call(event, settle, write)
        script = script_for(client, FINISH)
        pending = script.send_now(keys, args)
        if pending is not None:
            return FinishReply(client, event, settle, script, pending, keys, args)
    await asyncio.shield(usage_event_record(client, event, settle, write))  # a cancelled caller does not cancel it
    return None


_detached: set[asyncio.Future[Any]] = set()  # replies no request waits for (shutdown waits for them)
_recovering: set[asyncio.Task[None]] = set()  # the failure handling of some of those


class FinishReply:
    """The reply of a FINISH already written to Redis."""

    __slots__ = ("client", "event", "settle", "script", "future", "keys", "args")

    def __init__(self, client: WireRedis, event: UsageRecord, settle: tuple[list[str], list[Any]] | None,
                 script: WireScript, future: asyncio.Future[Any], keys: list[Any], args: list[Any]) -> None:
        self.client, self.event, self.settle, self.script = client, event, settle, script
        self.future, self.keys, self.args = future, keys, args

    def __await__(self) -> Any:
        """The reply; a Redis failure spools the event (NOSCRIPT runs the script again)."""
        sending = _finish_reply(self.script, self.future, self.keys, self.args)
        return _spooled(self.client, self.event, self.settle, sending).__await__()

    def detach(self) -> None:
        """Collect the reply without anyone waiting for it: a callback when it arrives,
        which does nothing in the usual case (no task, no wake-up of the request), and
        hands a failure, or a spool to replay, to a task that awaits this as above."""
        _detached.add(self.future)
        self.future.add_done_callback(self._arrived)

    def _arrived(self, future: asyncio.Future[Any]) -> None:
        _detached.discard(future)
        if not future.cancelled() and future.exception() is None and not usage_spool().pending:
            return
        task = asyncio.ensure_future(self._recover())
        _recovering.add(task)
        task.add_done_callback(_recovering.discard)

    async def _recover(self) -> None:
        try:
            await self
        except Exception:
            logger.exception("usage event could not be recorded (event_id=%s)", self.event.event_id)


async def usage_replies_wait(timeout: float = 5.0) -> None:
    """Wait (bounded) for this loop's detached FINISH replies and their failure handling:
    a worker shutting down spools what Redis refused instead of dropping it."""
    loop = asyncio.get_running_loop()
    waiting = [f for f in (*_detached, *_recovering) if f.get_loop() is loop]
    if waiting:
        await asyncio.wait(waiting, timeout=timeout)
    waiting = [t for t in _recovering if t.get_loop() is loop]  # started by replies that just arrived
    if waiting:
        await asyncio.wait(waiting, timeout=timeout)


async def _finish_reply(script: WireScript, pending: asyncio.Future[Any], keys: list[Any], args: list[Any]) -> None:
    try:
        await pending
    except NoScriptError:  # Redis lost its scripts (restarted): load and run it again
        await script(keys=keys, args=args)
