"""Deployment health shared by every gateway process: circuit breakers, latency averages,
requests in flight and per-minute use, kept in Redis and mirrored in each process.

No Redis round trip per request: begin()/end() update this process's view at once and
queue the outcome; `sync()`, run by a background task every SYNC_INTERVAL seconds, sends
what was queued and reads back the shared view of every deployment this process has seen,
in one round trip (one EVALSHA of SYNC per deployment, pipelined on the hot path's
WireRedis: it sends them all before reading any reply, at a fraction of redis-py's CPU).

The breaker, per deployment:
- closed -> open after `failures` failures in a row, or when the window (`window_seconds`)
  holds at least `min_requests` outcomes of which `error_rate` or more failed. A process
  that sees it happen opens its own view at once; the shared circuit opens at its next sync.
- open: no traffic. Once `cooldown_seconds` have passed, one request across all processes
  may try it (half-open), claimed by SET NX PX on the deployment's probe key: either by a
  sync of a process that routes to it (the grant puts the deployment first in that
  process's next candidates(), so a real request probes it), or by probe() (the router,
  when every deployment of a group is open).
- the probe's success closes it (and clears the window); its failure reopens it for another
  cooldown. Only closed -> open ("down") and open -> closed ("up") are transitions: SYNC
  appends them to the HEALTH_EVENTS stream, the staff emails read it (gateway/catalog/health.py).

Limits (a deployment's rpm/tpm and max_in_flight) are judged on the shared view, so they are
approximate by up to one sync interval: other processes' requests of the last 0.25 s (plus
the round trip) are not seen yet. The minute's counts are a sliding estimate (this minute's
count plus the previous minute's, weighted by how much of it is still inside the last 60 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .directory import Deployment
from .redis_keys import HEALTH_EVENTS_MAXLEN, HEALTH_EVENTS_STREAM, deployment_health_key, deployment_probe_key
from .rediswire import WireRedis

logger = logging.getLogger("aiproxy.gateway.health")

SYNC_INTERVAL = 0.25  # seconds between a process's syncs with Redis
PROCESS_TTL_MS = 3000  # a process's requests in flight stop counting when it has not synced for this long
WINDOW_CELLS = 10  # the error-rate window is kept in this many cells of window_seconds / WINDOW_CELLS
LATENCY_ALPHA = 0.2  # weight of a new sample in the latency moving averages
HEALTH_TTL_MS = 86_400_000  # a deployment no process syncs any more is forgotten after a day
IDLE_SYNCS = 1200  # a deployment this process has not routed to for 5 minutes is no longer synced
ERROR_CHARS = 300  # of the last error kept
FAILURE_STATUSES = frozenset({429, 500, 501, 502, 503, 504, 529})  # the upstream's fault, never the client's
LOG_EVERY_S = 60.0  # a failing sync is logged at most this often

Outcome = Literal["ok", "fail", "cancel"]  # "cancel": the client went away mid-attempt
BreakerState = Literal["closed", "open", "half_open"]


def outcome_of(status: int | None) -> Outcome:
    """How an attempt's ending counts for the breaker: None for a connect error or a timeout
    (no status), else the HTTP status the upstream answered (or the gateway made of it)."""
    return "fail" if status is None or status in FAILURE_STATUSES else "ok"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    error_rate: float = 0.5
    window_seconds: float = 30.0
    min_requests: int = 20
    cooldown_seconds: float = 15.0

    @classmethod
    def from_settings(cls) -> BreakerPolicy:
        return cls(failures=settings.GATEWAY_BREAKER_FAILURES, error_rate=settings.GATEWAY_BREAKER_ERROR_RATE,
                   window_seconds=settings.GATEWAY_BREAKER_WINDOW_SECONDS,
                   min_requests=settings.GATEWAY_BREAKER_MIN_REQUESTS,
                   cooldown_seconds=settings.GATEWAY_BREAKER_COOLDOWN_SECONDS)


@dataclass(slots=True)
class DeploymentHealth:
    """What one process knows of a deployment (shared view plus its own unsynced outcomes).
    HealthBoard.health() hands out its live record: read it, do not keep or change it."""

    state: BreakerState = "closed"
    in_flight: int = 0  # across all processes (as of the last sync) plus this process's change since
    ttfb_ms: float | None = None  # moving average of time to first byte
    total_ms: float | None = None  # moving average of total time
    minute_requests: int = 0  # requests started in the last minute, across processes
    minute_tokens: int = 0
    last_error: str = ""
    opened_at: float | None = None  # unix seconds the circuit last opened


# One deployment's sync. KEYS: its health hash, its probe key, the events stream.
# ARGV: now (ms), process id, this process's requests in flight, then what it saw since its
# last sync: requests started, tokens, ok, fail, failures since its last ok, the probe's
# outcome ('', 'ok', 'fail'), the last error, ttfb sum and count, total-time sum and count,
# whether it wants the probe ('0'; '1': take it if free; '2': keep it if still its own); then
# the policy: failures, error rate, minimum requests, cell length (ms), cells, cooldown (ms),
# latency alpha, process TTL (ms), events cap; then the deployment's id and name (for the events).
# The hash: state, fails (in a row), opened (ms), error, ttfb, total, m/r/t/pr/pt (this
# minute's number, requests and tokens, the previous minute's), c<n> = '<cell> <ok> <fail>',
# f:<process> = '<in flight> <ms of its last sync>'.
SYNC = """
local h, probe_key, events = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local me = 'f:' .. ARGV[2]
local mine = tonumber(ARGV[3])
local requests, tokens = tonumber(ARGV[4]), tonumber(ARGV[5])
local ok, fail, tail = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local probe, err = ARGV[9], ARGV[10]
local ttfb_sum, ttfb_n = tonumber(ARGV[11]), tonumber(ARGV[12])
local total_sum, total_n = tonumber(ARGV[13]), tonumber(ARGV[14])
local want_probe = ARGV[15]
local max_fails, max_rate, min_requests = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local cell_ms, cells, cooldown = tonumber(ARGV[19]), tonumber(ARGV[20]), tonumber(ARGV[21])
local alpha, process_ttl = tonumber(ARGV[22]), tonumber(ARGV[23])

local flat = redis.call('HGETALL', h)
local s = {}
for i = 1, #flat, 2 do s[flat[i]] = flat[i + 1] end
local out, gone = {}, {}
local function put(name, value)  -- only what changed is written
  value = tostring(value)
  if s[name] ~= value then out[#out + 1] = name; out[#out + 1] = value end
end

-- requests in flight: each process's own count, stamped with its last sync
local others = 0
for k, v in pairs(s) do
  if string.sub(k, 1, 2) == 'f:' and k ~= me then
    local sp = string.find(v, ' ', 1, true)
    if tonumber(string.sub(v, sp + 1)) < now - process_ttl then gone[#gone + 1] = k
    else others = others + tonumber(string.sub(v, 1, sp - 1)) end
  end
end
if mine > 0 then out[#out + 1] = me; out[#out + 1] = ARGV[3] .. ' ' .. ARGV[1]
elseif s[me] then gone[#gone + 1] = me end

-- this minute's requests and tokens (and the previous minute's, for a sliding estimate)
local minute = math.floor(now / 60000)
local r, t = tonumber(s.r or '0'), tonumber(s.t or '0')
local pr, pt = tonumber(s.pr or '0'), tonumber(s.pt or '0')
local m = tonumber(s.m or '-1')
if m ~= minute then
  if m == minute - 1 then pr, pt = r, t else pr, pt = 0, 0 end
  r, t = 0, 0
end
r = r + requests; t = t + tokens

-- the breaker
local state = s.state or 'closed'
local fails = tonumber(s.fails or '0')
local opened = s.opened or '0'
local last_error = s.error or ''
if err ~= '' then last_error = err end
local transition = ''
local win_ok, win_fail = 0, 0
if state == 'open' then
  if probe == 'ok' then
    state = 'closed'; fails = 0; transition = 'up'
    redis.call('DEL', probe_key)
  elseif probe == 'fail' then
    opened = ARGV[1]
  end
else
  local cell = math.floor(now / cell_ms)
  if ok + fail > 0 then
    local name = 'c' .. (cell % cells)
    local c_ok, c_fail = 0, 0
    local v = s[name]
    if v then
      local a, b, c = string.match(v, '(%S+) (%S+) (%S+)')
      if tonumber(a) == cell then c_ok, c_fail = tonumber(b), tonumber(c) end
    end
    s[name] = cell .. ' ' .. (c_ok + ok) .. ' ' .. (c_fail + fail)
    out[#out + 1] = name; out[#out + 1] = s[name]
  end
  for i = 0, cells - 1 do
    local v = s['c' .. i]
    if v then
      local a, b, c = string.match(v, '(%S+) (%S+) (%S+)')
      a = tonumber(a)
      if a > cell - cells and a <= cell then win_ok = win_ok + tonumber(b); win_fail = win_fail + tonumber(c) end
    end
  end
  if ok > 0 then fails = tail else fails = fails + tail end
  local seen = win_ok + win_fail
  if fails >= max_fails or (seen >= min_requests and win_fail >= max_rate * seen) then
    state = 'open'; opened = ARGV[1]; transition = 'down'
  end
end
if transition ~= '' then
  for i = 0, cells - 1 do gone[#gone + 1] = 'c' .. i end
  win_ok, win_fail = 0, 0
  redis.call('XADD', events, 'MAXLEN', '~', ARGV[24], '*', 'id', ARGV[25], 'name', ARGV[26],
             'state', transition, 'error', last_error, 'at', ARGV[1])
end

-- latency moving averages: a batch of n samples moves the average as n samples of its mean would
local function average(old, sum, n)
  if n == 0 then return old end
  local mean = sum / n
  if not old then return tostring(mean) end
  local keep = (1 - alpha) ^ n
  return tostring(tonumber(old) * keep + mean * (1 - keep))
end
local ttfb = average(s.ttfb, ttfb_sum, ttfb_n)
local total = average(s.total, total_sum, total_n)
if ttfb then put('ttfb', ttfb) end
if total then put('total', total) end

-- half-open: one process at a time holds the probe key (it expires after a cooldown)
local granted = 0
if want_probe ~= '0' and state == 'open' and now - tonumber(opened) >= cooldown then
  local holder = redis.call('GET', probe_key)
  if holder == ARGV[2] then granted = 1
  elseif not holder and want_probe == '1' then redis.call('SET', probe_key, ARGV[2], 'PX', cooldown); granted = 1 end
end

put('state', state); put('fails', fails); put('opened', opened); put('error', last_error)
put('m', minute); put('r', r); put('t', t); put('pr', pr); put('pt', pt)
if #out > 0 then redis.call('HSET', h, unpack(out)) end
if #gone > 0 then redis.call('HDEL', h, unpack(gone)) end
redis.call('PEXPIRE', h, """ + str(HEALTH_TTL_MS) + """)
return {state, opened, last_error, tostring(fails), tostring(win_ok), tostring(win_fail), ttfb or '', total or '',
        tostring(others), tostring(r), tostring(t), tostring(pr), tostring(pt), transition, granted}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float_or_none(value: Any) -> float | None:
    text = _text(value) if value is not None else ""
    return float(text) if text else None


def minute_estimate(current: float, previous: float, now_ms: int) -> int:
    """Requests (or tokens) in the last 60 s: this minute's count plus the part of the
    previous minute's that is still inside the last 60 s, assuming it was spread evenly."""
    return int(current + previous * (1 - (now_ms % 60000) / 60000))


def health_fields_read(fields: Mapping[Any, Any], *, probe_held: bool, now_ms: int | None = None) -> dict[str, Any]:
    """A deployment's shared health as its hash (HGETALL) holds it, for readers outside the
    gateway (the admin): state ("half_open" while a probe holds it), last_error, ttfb_ms,
    total_ms, in_flight (the live processes' counts), opened_at (unix seconds or None)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    data = {_text(k): _text(v) for k, v in fields.items()}
    state = data.get("state", "closed")
    in_flight = 0
    for name, value in data.items():
        if name.startswith("f:"):
            count, stamp = value.split(" ")
            if int(float(stamp)) >= now_ms - PROCESS_TTL_MS:
                in_flight += int(count)
    return {
        "state": "half_open" if state == "open" and probe_held else state,
        "last_error": data.get("error", ""),
        "ttfb_ms": _float_or_none(data.get("ttfb")),
        "total_ms": _float_or_none(data.get("total")),
        "in_flight": in_flight,
        "opened_at": int(data["opened"]) / 1000 if state == "open" and data.get("opened") else None,
    }


class _Slot:
    """A deployment as this process tracks it: its live view, the shared figures it was
    built from, and the outcomes queued for the next sync."""

    __slots__ = ("deployment", "health", "window_ok", "window_fail", "mine", "streak", "probing", "granted",
                 "touched", "idle_syncs", "requests", "tokens", "ok", "fail", "tail", "error", "probe", "ttfb_sum",
                 "ttfb_n", "total_sum", "total_n")

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.health = DeploymentHealth()
        self.window_ok = self.window_fail = 0  # the shared window, as of the last sync
        self.mine = 0  # this process's requests in flight
        self.streak = 0  # failures in a row: the shared count plus this process's since
        self.probing = False  # this process's request is the half-open probe
        self.granted = False  # a sync gave this process the probe: its next request on it is the probe
        self.touched = True
        self.idle_syncs = 0
        self.batch_clear()

    def batch_clear(self) -> None:
        self.requests = self.tokens = self.ok = self.fail = self.tail = 0
        self.error = self.probe = ""
        self.ttfb_sum = self.total_sum = 0.0
        self.ttfb_n = self.total_n = 0


class HealthBoard:
    """Per-process (per event loop) mirror of every deployment's health.

    `client` is the hot path's WireRedis: a sync pipelines one EVALSHA per deployment on
    its one connection, and probe() is one SET."""

    def __init__(self, client: WireRedis, policy: BreakerPolicy | None = None) -> None:
        self.client = client
        self.policy = policy or BreakerPolicy.from_settings()
        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.granted_ids: set[int] = set()  # deployments whose probe a sync gave to this process
        self._slots: dict[int, _Slot] = {}
        self._script = client.register_script(SYNC)
        p = self.policy
        self._policy_args = (p.failures, repr(float(p.error_rate)), p.min_requests,
                             int(p.window_seconds * 1000 / WINDOW_CELLS), WINDOW_CELLS,
                             int(p.cooldown_seconds * 1000), repr(LATENCY_ALPHA), PROCESS_TTL_MS, HEALTH_EVENTS_MAXLEN)
        self._task: asyncio.Task[None] | None = None
        self._logged_at = 0.0

    # --- per request: no I/O ---------------------------------------------------------

    def _slot(self, deployment: Deployment) -> _Slot:
        slot = self._slots.get(deployment.deployment_id)
        if slot is None:
            slot = self._slots[deployment.deployment_id] = _Slot(deployment)
        return slot

    def health(self, deployment: Deployment) -> DeploymentHealth:
        return self._slot(deployment).health

    def usable(self, deployment: Deployment) -> bool:
        """Closed circuit, under its max in flight and its rpm/tpm (as far as this process
        knows: the other processes' requests of the last sync interval, 0.25 s plus a round
        trip, are not counted yet). An open circuit whose cooldown has passed is usable only
        when a sync gave this process its probe (see the module's docstring); otherwise see
        probe()."""
        slot = self._slots.get(deployment.deployment_id) or self._slot(deployment)
        slot.touched = True
        slot.deployment = deployment  # the catalog's latest: its name goes with the events
        health = slot.health
        if health.state != "closed" and not slot.granted:
            return False
        limit = deployment.max_in_flight
        if limit is not None and health.in_flight >= limit:
            return False
        limits = deployment.deployment_limits
        if limits:
            rpm = limits.get("rpm")
            if rpm and health.minute_requests >= rpm:
                return False
            tpm = limits.get("tpm")
            if tpm and health.minute_tokens >= tpm:
                return False
        return True

    def begin(self, deployment: Deployment) -> None:
        """An attempt on `deployment` starts (in flight +1, minute requests +1)."""
        slot = self._slots.get(deployment.deployment_id) or self._slot(deployment)
        slot.mine += 1
        slot.requests += 1
        health = slot.health
        health.in_flight += 1
        health.minute_requests += 1
        if slot.granted:
            self._probe_take(slot)

    def end(self, deployment: Deployment, outcome: Outcome, *, ttfb_ms: float | None = None,
            total_ms: float | None = None, tokens: int = 0, error: str = "") -> None:
        """The attempt ended: in flight -1; the outcome feeds the breaker (a "fail" is a
        connect error, a timeout, a 429, 500-504 or 529: the upstream's fault, never the
        client's; see outcome_of), the latency averages (successes only: a fast error is no
        sign of a fast deployment) and the minute's tokens. "cancel" (the client went away,
        the attempt was cancelled) feeds nothing: after a cancelled probe the circuit stays
        open and this process's next request may probe it (while it holds the probe key). Call it in a
        `finally`, so an attempt that raised or was cancelled still leaves the count."""
        slot = self._slots.get(deployment.deployment_id) or self._slot(deployment)
        health = slot.health
        if slot.mine > 0:
            slot.mine -= 1
            health.in_flight -= 1
        if tokens:
            slot.tokens += tokens
            health.minute_tokens += tokens
        if outcome == "ok":
            slot.ok += 1
            slot.tail = slot.streak = 0
            if ttfb_ms is not None:
                slot.ttfb_sum += ttfb_ms
                slot.ttfb_n += 1
                old = health.ttfb_ms
                health.ttfb_ms = ttfb_ms if old is None else old + LATENCY_ALPHA * (ttfb_ms - old)
            if total_ms is not None:
                slot.total_sum += total_ms
                slot.total_n += 1
                old = health.total_ms
                health.total_ms = total_ms if old is None else old + LATENCY_ALPHA * (total_ms - old)
            if slot.probing:
                slot.probing = False
                slot.probe = "ok"
                slot.window_ok = slot.window_fail = 0
                health.state, health.opened_at = "closed", None
            return
        if outcome != "fail":
            if slot.probing:  # the probe key is still this process's: its next request may probe
                slot.probing = False
                slot.granted = True
                self.granted_ids.add(deployment.deployment_id)
                health.state = "open"
            return
        slot.fail += 1
        slot.tail += 1
        slot.streak += 1
        if error:
            slot.error = health.last_error = error[:ERROR_CHARS]
        if slot.probing:
            slot.probing = False
            slot.probe = "fail"
            health.state, health.opened_at = "open", time.time()
        elif health.state == "closed" and self._tripped(slot):
            health.state, health.opened_at = "open", time.time()

    def _tripped(self, slot: _Slot) -> bool:
        """Whether this process's view says the circuit should open."""
        policy = self.policy
        if slot.streak >= policy.failures:
            return True
        failed = slot.window_fail + slot.fail
        seen = slot.window_ok + slot.ok + failed
        return seen >= policy.min_requests and failed >= policy.error_rate * seen

    def _probe_take(self, slot: _Slot) -> None:
        slot.granted = False
        self.granted_ids.discard(slot.deployment.deployment_id)
        slot.probing = True
        slot.health.state = "half_open"

    # --- the one per-request Redis call, only for an open circuit past its cooldown -----

    async def probe(self, deployment: Deployment) -> bool:
        """For an open circuit past its cooldown: True for the one request (across all
        processes) that may try it (half-open); False otherwise. The caller then begin()s it
        at once: end() with its outcome closes or reopens the circuit. With Redis
        unavailable, each process allows its own one probe per cooldown."""
        slot = self._slot(deployment)
        health = slot.health
        if health.state != "open":
            return False
        if slot.granted:
            self._probe_take(slot)
            return True
        if health.opened_at is not None and time.time() - health.opened_at < self.policy.cooldown_seconds:
            return False
        try:
            won = await self.client.execute("SET", deployment_probe_key(deployment.deployment_id), self.process_id,
                                            "NX", "PX", int(self.policy.cooldown_seconds * 1000))
        except RedisError:  # Redis unavailable: this process decides alone (one probe per cooldown here)
            won = True
        if won is None or health.state != "open" or slot.probing:
            return False
        self._probe_take(slot)
        return True

    async def watch(self, deployments: tuple[Deployment, ...]) -> None:
        """Read the shared health of deployments this process has not routed to yet: one
        round trip, once per deployment per process (a dictionary check otherwise), so a
        circuit another process opened holds from this process's first request on. With
        Redis unavailable the deployments start from this process's own view."""
        if all(d.deployment_id in self._slots for d in deployments):
            return
        now_ms = int(time.time() * 1000)
        calls: list[tuple[_Slot, list[str], list[Any]]] = []
        for deployment in deployments:
            if deployment.deployment_id in self._slots:
                continue
            slot = self._slot(deployment)
            keys = [deployment_health_key(deployment.deployment_id), deployment_probe_key(deployment.deployment_id),
                    HEALTH_EVENTS_STREAM]
            calls.append((slot, keys, self._sync_args(slot, now_ms)))
            slot.batch_clear()
        try:
            replies = await self._eval_all([(keys, args) for _, keys, args in calls])
        except (RedisError, OSError):
            return
        for (slot, _, _), reply in zip(calls, replies, strict=True):
            if not isinstance(reply, BaseException):
                self._apply(slot, reply, now_ms)

    # --- the background sync -----------------------------------------------------------

    def _sync_args(self, slot: _Slot, now_ms: int) -> list[Any]:
        health = slot.health
        # '1': take the probe if free; asked only while routed to, so a process with no traffic
        # for the deployment does not sit on it. '2': a probe granted and not used yet is kept
        # while the key is still this process's (it is not taken again once it expired).
        want_probe = "0"
        if (slot.touched and health.state == "open" and health.opened_at is not None
                and now_ms / 1000 - health.opened_at >= self.policy.cooldown_seconds):
            want_probe = "1"
        elif slot.granted:
            want_probe = "2"
        deployment = slot.deployment
        return [now_ms, self.process_id, slot.mine, slot.requests, slot.tokens, slot.ok, slot.fail, slot.tail,
                slot.probe, slot.error, repr(slot.ttfb_sum), slot.ttfb_n, repr(slot.total_sum), slot.total_n,
                want_probe, *self._policy_args, deployment.deployment_id,
                f"{deployment.public_name}/{deployment.name or deployment.deployment_id}"]

    async def sync(self) -> None:
        """Send queued outcomes and read the shared view (one Redis round trip). A
        deployment whose script fails loses the outcomes it carried (this process's view
        had them already); the next sync reads the shared view again."""
        now_ms = int(time.time() * 1000)
        calls: list[tuple[_Slot, list[str], list[Any]]] = []
        for deployment_id, slot in list(self._slots.items()):
            if not slot.touched and slot.mine == 0 and not slot.probing:
                slot.idle_syncs += 1
                if slot.idle_syncs > IDLE_SYNCS:
                    del self._slots[deployment_id]
                    self.granted_ids.discard(deployment_id)
                    continue
            else:
                slot.idle_syncs = 0
            keys = [deployment_health_key(deployment_id), deployment_probe_key(deployment_id), HEALTH_EVENTS_STREAM]
            calls.append((slot, keys, self._sync_args(slot, now_ms)))
            slot.touched = False
            slot.batch_clear()
        if not calls:
            return
        replies = await self._eval_all([(keys, args) for _, keys, args in calls])
        failed = None
        for (slot, _, _), reply in zip(calls, replies, strict=True):
            if isinstance(reply, BaseException):
                failed = reply
            else:
                self._apply(slot, reply, now_ms)
        if failed is not None:
            raise failed

    async def _eval_all(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Every call's EVALSHA written before any reply is read: one round trip."""
        if not self.client.connected():
            await self.client.execute("PING")
        replies = await self._send_all(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.client.execute("SCRIPT", "LOAD", SYNC)
            for i, reply in zip(missing, await self._send_all([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        return replies

    async def _send_all(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = []
        for keys, args in calls:
            future = self._script.send_now(keys, args)
            if future is None:
                future = loop.create_future()
                future.set_exception(RedisConnectionError("Connection to Redis lost"))
            futures.append(future)
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _apply(self, slot: _Slot, reply: list[Any], now_ms: int) -> None:
        """The shared view, plus what this process saw since the sync was sent."""
        (state, opened, last_error, fails, window_ok, window_fail, ttfb, total, others, requests, tokens,
         previous_requests, previous_tokens, _transition, granted) = reply
        health = slot.health
        health.in_flight = int(others) + slot.mine
        health.minute_requests = minute_estimate(float(requests), float(previous_requests), now_ms) + slot.requests
        health.minute_tokens = minute_estimate(float(tokens), float(previous_tokens), now_ms) + slot.tokens
        health.ttfb_ms = _float_or_none(ttfb)
        health.total_ms = _float_or_none(total)
        health.last_error = slot.error or _text(last_error)
        slot.window_ok, slot.window_fail = int(window_ok), int(window_fail)
        slot.streak = slot.tail if slot.ok else int(fails) + slot.tail
        shared_state = _text(state)
        if slot.probing:
            health.state = "half_open"
        elif slot.probe == "ok":
            health.state, health.opened_at = "closed", None
        elif slot.probe == "fail":
            health.state = "open"
        elif shared_state == "open":
            health.state, health.opened_at = "open", int(opened) / 1000
        else:
            health.state, health.opened_at = "closed", None
            if self._tripped(slot):
                health.state, health.opened_at = "open", time.time()
        slot.granted = bool(granted) and health.state == "open"
        if slot.granted:
            self.granted_ids.add(slot.deployment.deployment_id)
        else:
            self.granted_ids.discard(slot.deployment.deployment_id)

    def start(self) -> None:
        """Start the background sync task on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            try:
                await self.sync()
            except Exception:  # Redis down: keep routing on this process's view; log now and then
                now = time.monotonic()
                if now - self._logged_at >= LOG_EVERY_S:
                    self._logged_at = now
                    logger.warning("deployment health sync failed; routing on this process's view", exc_info=True)

    async def close(self) -> None:
        """Stop the background task after a last sync."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            await self.sync()
        except RedisError:
            pass
