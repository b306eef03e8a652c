"""Step 2 of the pipeline: rate limits, the plan's request quota and budgets, checked and
reserved in one Redis round trip (a Lua script), settled when the answer is complete.

- Rate limits are token buckets (capacity = the per-minute limit, refilled evenly over a
  minute) for requests and for tokens, per key, member, workspace, model, provider and
  globally. A request takes 1 from each requests bucket and its estimated tokens (prompt
  plus maximum output) from each tokens bucket; settling gives back what it did not use.
- Budgets (per key and per workspace, daily/weekly/monthly/lifetime) reserve the
  request's maximum cost (prompt tokens plus maximum output tokens at catalog prices). A
  hard budget refuses a request whose reservation could pass it, so concurrent requests
  never overshoot. Reservations carry an expiry: one that a killed process never settled
  stops counting after 15-16 minutes, so nothing leaks (see RESERVE's time-slot cells).
- Redis work per request is kept small, as every gateway worker shares one Redis: a bucket
  is one string (all read by one MGET), a budget one hash with its spend and a fixed set of
  reservation cells (one HMGET), so a request costs about 30 Redis calls inside its two
  scripts where it took 60.
- Money is counted in integer units of 1e-8 USD (the precision of stored costs), so the
  Redis counters add up to the database's sums exactly.
- Real-time spend: settling also adds the cost to per-day counters for the workspace, the
  key and the model (redis_keys.spend_day_key).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import redis.asyncio as aioredis

from billing.money import usd_format

from .directory import Deployment, KeyRecord
from .errors import GatewayError
from .key_policy import BudgetPolicy
from .redis_keys import (
    GLOBAL_IDENT,
    bucket_key,
    budget_key,
    key_ident,
    member_ident,
    model_ident,
    provider_ident,
    quota_key,
    spend_day_key,
    workspace_ident,
)
from .rediswire import WireRedis

UNITS_PER_USD = 10**8
RESERVATION_TTL_MS = 15 * 60 * 1000  # longer than any request the gateway lets run
SPEND_DAY_TTL_S = 40 * 24 * 3600
DEFAULT_MAX_OUTPUT_TOKENS = 4096

# Reservations in flight are kept per budget in RESERVATION_CELLS cells of its hash, one per
# time slot (RESERVATION_TTL_MS / RESERVATION_SLOTS long) in rotation: field 'c<n>' holds
# "<slot> <units>". A check counts the cells of the last RESERVATION_SLOTS + 1 slots, so a
# reservation that no process settles (one killed mid-request) stops counting after 15-16
# minutes with nothing to clean up, and the hash never grows.
RESERVATION_SLOTS = 15
RESERVATION_CELLS = RESERVATION_SLOTS + 2

RESERVE = """
local now = tonumber(ARGV[1])
local slot = math.floor(now / tonumber(ARGV[2]))
local nb = tonumber(ARGV[3])
local nbud = tonumber(ARGV[4])
local nq = tonumber(ARGV[5])
local fetch = ARGV[6] == '1'  -- the last key is an exact-cache entry, read once every check passed
local a = 7
local tokens = {}
if nb > 0 then
  -- every bucket in one read; a bucket is the string '<tokens> <ms of last update>'
  local states = redis.call('MGET', unpack(KEYS, 1, nb))
  for i = 1, nb do
    local limit = tonumber(ARGV[a]); local cost = tonumber(ARGV[a + 1])
    local t = limit
    local v = states[i]
    if v then
      local sp = string.find(v, ' ', 1, true)
      local last = sp and tonumber(string.sub(v, 1, sp - 1)); local ts = sp and tonumber(string.sub(v, sp + 1))
      if last and ts then t = math.min(limit, last + (now - ts) * limit / 60000) end
    end
    if t < cost then
      return {0, 'bucket', i, tostring(t)}
    end
    tokens[i] = t
    a = a + 2
  end
end
local k = nb + 1
local fields = {'spent', """ + ", ".join(f"'c{c}'" for c in range(RESERVATION_CELLS)) + """}
local mine_at = slot % """ + str(RESERVATION_CELLS) + """ + 2  -- this slot's cell in `fields`
local cell = fields[mine_at]
local held = {}
for i = 1, nbud do
  local limit = tonumber(ARGV[a]); local cost = tonumber(ARGV[a + 1]); local hard = ARGV[a + 2]
  local st = redis.call('HMGET', KEYS[k], unpack(fields))
  local s = tonumber(st[1] or '0')
  local r, mine = 0, 0
  for c = 2, #st do
    local v = st[c]
    if v then
      local sp = string.find(v, ' ', 1, true)
      local at = tonumber(string.sub(v, 1, sp - 1)); local units = tonumber(string.sub(v, sp + 1))
      if at > slot - """ + str(RESERVATION_SLOTS + 1) + """ and at <= slot then r = r + units end
      if at == slot and c == mine_at then mine = units end
    end
  end
  if hard == '1' and s + r + cost > limit then
    return {0, 'budget', i, tostring(s), tostring(r)}
  end
  held[i] = mine
  a = a + 4; k = k + 1
end
for i = 1, nq do
  local limit = tonumber(ARGV[a])
  local used = tonumber(redis.call('GET', KEYS[k]) or '0')
  if used + 1 > limit then
    return {0, 'quota', i, tostring(used)}
  end
  a = a + 1; k = k + 1
end
-- every check passed: take from the buckets, reserve the budgets, count the request
a = 7; k = 1
local remaining = {}
for i = 1, nb do
  local left = tostring(tokens[i] - tonumber(ARGV[a + 1]))
  redis.call('SET', KEYS[k], left .. ' ' .. now, 'PX', 120000)
  remaining[i] = left
  a = a + 2; k = k + 1
end
for i = 1, nbud do
  local cost = tonumber(ARGV[a + 1]); local expire_s = tonumber(ARGV[a + 3])
  redis.call('HSET', KEYS[k], cell, slot .. ' ' .. (held[i] + cost))
  if expire_s > 0 then redis.call('EXPIRE', KEYS[k], expire_s) end
  a = a + 4; k = k + 1
end
for i = 1, nq do
  if redis.call('INCR', KEYS[k]) == 1 then redis.call('EXPIRE', KEYS[k], 3456000) end
  a = a + 1; k = k + 1
end
local cached = false
if fetch then cached = redis.call('GET', KEYS[#KEYS]) end
return {1, remaining, cached, slot}
"""

SETTLE_FUNCTION = """
local function settle(keys, argv)
  local slot = argv[1]
  local nb = tonumber(argv[2])
  local nbud = tonumber(argv[3])
  local day_ttl = tonumber(argv[4])
  local a = 5
  local k = 1
  -- give back unused tokens (only buckets with something to give back are passed)
  if nb > 0 then
    local states = redis.call('MGET', unpack(keys, 1, nb))
    for i = 1, nb do
      local v = states[i]
      local sp = v and string.find(v, ' ', 1, true)
      if sp then
        local limit = tonumber(argv[a]); local refund = tonumber(argv[a + 1])
        local t = tonumber(string.sub(v, 1, sp - 1))
        redis.call('SET', keys[i], tostring(math.min(limit, t + refund)) .. string.sub(v, sp), 'KEEPTTL')
      end
      a = a + 2
    end
    k = nb + 1
  end
  local cell = 'c' .. (tonumber(slot) % """ + str(RESERVATION_CELLS) + """)
  local spent = {}
  for i = 1, nbud do
    local held = tonumber(argv[a]); local cost = tonumber(argv[a + 1])
    local h = keys[k]
    local v = redis.call('HGET', h, cell)
    if v then
      local sp = string.find(v, ' ', 1, true)
      if string.sub(v, 1, sp - 1) == slot then
        local left = tonumber(string.sub(v, sp + 1)) - held
        if left > 0 then redis.call('HSET', h, cell, slot .. ' ' .. left) else redis.call('HDEL', h, cell) end
      end
    end
    spent[i] = redis.call('HINCRBY', h, 'spent', cost)
    a = a + 2; k = k + 1
  end
  local day = keys[k]
  local cost = tonumber(argv[a])
  if cost > 0 or argv[a + 1] == '1' then
    for j = a + 2, #argv do
      redis.call('HINCRBY', day, argv[j], cost)
      redis.call('HINCRBY', day, argv[j] .. ':requests', 1)
    end
    redis.call('EXPIRE', day, day_ttl)
  end
  return spent
end
"""

# settle alone (the usage recorder runs SETTLE_FUNCTION inside its own script, gateway/hotpath/record.py)
SETTLE = SETTLE_FUNCTION + "return settle(KEYS, ARGV)\n"


_scripts: dict[tuple[int, str], Any] = {}


def script_for(client: aioredis.Redis | WireRedis, source: str) -> Any:
    """The script bound to this client; runs by EVALSHA (the source is sent once, not per request)."""
    cache_key = (id(client), source)
    script = _scripts.get(cache_key)
    if script is None:
        script = _scripts[cache_key] = client.register_script(source)
    return script


def usd_units(amount: str | Decimal) -> int:
    return int((Decimal(amount) * UNITS_PER_USD).to_integral_value())


def units_usd(units: int) -> str:
    return usd_format(Decimal(units) / UNITS_PER_USD)


@dataclass(slots=True)
class Bucket:
    scope: str  # "key 'ci'", "workspace", ...
    kind: str  # "requests" | "tokens"
    key: str
    limit: int
    cost: int


@dataclass(slots=True)
class BudgetLine:
    scope: str
    key: str
    limit: int  # units
    cost: int  # units reserved
    hard: bool
    period: str
    reset_at: datetime | None


@dataclass(slots=True)
class Reservation:
    buckets: list[Bucket]
    budgets: list[BudgetLine]
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    active: bool = True
    # the exact-cache entry asked for with `cache_key`, read in the same round trip (None: no entry)
    cached: bytes | None = None
    slot: int = 0  # the time slot whose cell holds the budgets' reservations (RESERVE)


def _period(period: str, now: datetime) -> tuple[str, datetime | None]:
    """The period's key and when it resets (UTC)."""
    return _period_of_day(period, now.date())


@functools.lru_cache(maxsize=64)
def _period_of_day(period: str, today: date) -> tuple[str, datetime | None]:
    day = datetime(today.year, today.month, today.day, tzinfo=UTC)
    if period == "daily":
        return day.strftime("d%Y-%m-%d"), day + timedelta(days=1)
    if period == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday.strftime("w%Y-%m-%d"), monday + timedelta(days=7)
    if period == "monthly":
        first = day.replace(day=1)
        return first.strftime("m%Y-%m"), (first + timedelta(days=32)).replace(day=1)
    return "lifetime", None


def _month(now: datetime) -> tuple[str, datetime]:
    key, reset = _period("monthly", now)
    assert reset is not None
    return key, reset


def _duration(seconds: float) -> str:
    """OpenAI's reset format: '1s', '6m0s', '150ms'."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:.0f}s" if minutes >= 1 else f"{secs:.3g}s"


def request_budget_scopes(key: KeyRecord) -> list[tuple[str, str, BudgetPolicy]]:
    """The budgets a request of this key spends from: (label, ident, budget)."""
    policy = key.policy
    out = []
    if policy.key is not None and policy.key.budget is not None:
        out.append((f"key '{key.key_name}'", key_ident(key.schema, key.key_id), policy.key.budget))
    if policy.workspace is not None and policy.workspace.budget is not None:
        out.append(("workspace", workspace_ident(key.workspace_id), policy.workspace.budget))
    return out


@dataclass(frozen=True, slots=True)
class Scopes:
    """What limits a key on a deployment, apart from the size of the request: its buckets
    (scope label, kind, Redis key, limit), budgets (label, id, limit in units, hard, period),
    the plan's quota and the prices. Worked out once per key record and deployment."""

    buckets: tuple[tuple[str, str, str, int], ...]
    budgets: tuple[tuple[str, str, int, bool, str], ...]
    quota: int
    needs_estimate: bool
    input_price: Decimal
    output_price: Decimal


_scopes_memo: dict[tuple[int, int, int], tuple[KeyRecord, Deployment, dict[str, int], Scopes]] = {}


def limit_scopes(key: KeyRecord, deployment: Deployment, global_limits: dict[str, int]) -> Scopes:
    """Scopes of (key, deployment), remembered while the directory hands out the same
    objects (a key record lives 0.5 s, a deployment until the catalog changes); the memo
    holds the objects themselves, so an id is never reused while remembered."""
    memo_key = (id(key), id(deployment), id(global_limits))
    hit = _scopes_memo.get(memo_key)
    if hit is not None and hit[0] is key and hit[1] is deployment and hit[2] is global_limits:
        return hit[3]
    policy = key.policy
    user, workspace = policy.user, policy.workspace
    # (label, ident, requests per minute, tokens per minute), the key's scopes then the catalog's
    sources: list[tuple[str, str, int | None, int | None]] = [
        (label, ident, scope.rpm, scope.tpm) for label, ident, scope in (
            (f"key '{key.key_name}'", key_ident(key.schema, key.key_id), policy.key),
            ("member", member_ident(key.workspace_id, user.user_id if user is not None else None), user),
            ("workspace", workspace_ident(key.workspace_id), workspace),
        ) if scope is not None
    ]
    for label, ident, limits in (
        (f"model '{deployment.public_name}'", model_ident(deployment.public_name), deployment.model_limits or {}),
        (f"provider '{deployment.provider_name}'", provider_ident(deployment.provider_name), deployment.provider_limits or {}),
        ("gateway", GLOBAL_IDENT, global_limits),
    ):
        sources.append((label, ident, limits.get("rpm"), limits.get("tpm")))
    buckets = []
    for label, ident, rpm, tpm in sources:
        if rpm:
            buckets.append((label, "requests", bucket_key(ident, "rpm"), int(rpm)))
        if tpm:
            buckets.append((label, "tokens", bucket_key(ident, "tpm"), int(tpm)))
    budgets = tuple((label, ident, usd_units(budget.amount), budget.hard, budget.period)
                    for label, ident, budget in request_budget_scopes(key))
    scopes = Scopes(tuple(buckets), budgets, (workspace.quota or 0) if workspace is not None else 0,
                    any(kind == "tokens" for _, kind, _, _ in buckets) or bool(budgets),
                    Decimal(str(deployment.input_price_per_mtok)), Decimal(str(deployment.output_price_per_mtok)))
    if len(_scopes_memo) > 4096:
        _scopes_memo.clear()
    _scopes_memo[memo_key] = (key, deployment, global_limits, scopes)
    return scopes


def needs_cost_estimate(key: KeyRecord, deployment: Deployment, global_limits: dict[str, int]) -> bool:
    """Whether a tokens limit or a budget applies (only then is the prompt counted)."""
    return limit_scopes(key, deployment, global_limits).needs_estimate


_HEADER_NAMES = {kind: (f"x-ratelimit-limit-{kind}".encode(), f"x-ratelimit-remaining-{kind}".encode(),
                        f"x-ratelimit-reset-{kind}".encode()) for kind in ("requests", "tokens")}


def _limit_headers(buckets: list[Bucket], remaining: list[float]) -> list[tuple[bytes, bytes]]:
    """OpenAI's x-ratelimit-* headers for the tightest requests and tokens buckets."""
    tightest: dict[str, tuple[Bucket, float]] = {}
    for bucket, left in zip(buckets, remaining, strict=True):
        seen = tightest.get(bucket.kind)
        if seen is None or left < seen[1]:
            tightest[bucket.kind] = (bucket, left)
    headers = []
    for kind in ("requests", "tokens"):
        if kind not in tightest:
            continue
        bucket, left = tightest[kind]
        names = _HEADER_NAMES[kind]
        reset = (bucket.limit - left) * 60 / bucket.limit
        headers += [(names[0], b"%d" % bucket.limit), (names[1], b"%d" % max(0, math.floor(left))),
                    (names[2], _duration(reset).encode())]
    return headers


async def limits_reserve(
    client: aioredis.Redis | WireRedis,
    key: KeyRecord,
    deployment: Deployment,
    global_limits: dict[str, int],
    *,
    prompt_tokens: int,
    max_output_tokens: int,
    cache_key: str | None = None,
) -> Reservation:
    """Check every limit that applies and reserve; raises a 429 naming the one that is
    exhausted. With `cache_key`, the exact-cache entry is read in the same round trip
    (Reservation.cached), once every check passed."""
    now_dt = datetime.now(UTC)
    scopes = limit_scopes(key, deployment, global_limits)
    tokens = prompt_tokens + max_output_tokens
    buckets = [Bucket(label, kind, name, limit, tokens if kind == "tokens" else 1)
               for label, kind, name, limit in scopes.buckets]
    budgets = []
    if scopes.budgets:
        max_cost = usd_units(
            Decimal(prompt_tokens) * scopes.input_price / 1_000_000
            + Decimal(max_output_tokens) * scopes.output_price / 1_000_000
        )
        for label, ident, amount, hard, period in scopes.budgets:
            period_key, reset_at = _period(period, now_dt)
            budgets.append(BudgetLine(label, budget_key(ident, period_key), amount, max_cost, hard, period, reset_at))
    quota = scopes.quota
    month_key, month_reset = _month(now_dt)
    reservation = Reservation(buckets, budgets)
    if not buckets and not budgets and not quota:
        reservation.active = False
        if cache_key is not None:
            reservation.cached = cast("bytes | None", await client.get(cache_key))
        return reservation
    keys: list[str] = [b.key for b in buckets]
    args: list[Any] = [int(time.time() * 1000), RESERVATION_TTL_MS / RESERVATION_SLOTS, len(buckets), len(budgets),
                       1 if quota else 0, 1 if cache_key is not None else 0]
    for b in buckets:
        args += [b.limit, b.cost]
    for line in budgets:
        keys.append(line.key)
        ttl = int((line.reset_at - now_dt).total_seconds()) + 7 * 86400 if line.reset_at else 0
        args += [line.limit, line.cost, "1" if line.hard else "0", ttl]
    if quota:
        keys.append(quota_key(key.workspace_id, month_key))
        args.append(int(quota))
    if cache_key is not None:
        keys.append(cache_key)
    result = await script_for(client, RESERVE)(keys=keys, args=args)
    if int(result[0]) == 1:
        reservation.headers = _limit_headers(buckets, [float(r) for r in result[1]]) if buckets else []
        reservation.cached = result[2] or None
        reservation.slot = int(result[3])
        return reservation
    kind, index = _text(result[1]), int(result[2]) - 1
    if kind == "bucket":
        bucket = buckets[index]
        available = float(_text(result[3]))
        wait = max(0.0, (bucket.cost - available) * 60 / bucket.limit)
        unit = "requests" if bucket.kind == "requests" else "tokens"
        too_big = bucket.cost > bucket.limit
        message = (f"Rate limit reached for {unit} per minute ({bucket.scope}): limit {bucket.limit}, "
                   + (f"this request needs {bucket.cost}, more than the whole limit." if too_big
                      else f"available {max(0, math.floor(available))}, requested {bucket.cost}. "
                      f"Try again in {_duration(wait)}."))
        headers = {"retry-after": str(max(1, math.ceil(wait)))}
        for name, value in _limit_headers([bucket], [available]):
            headers[name.decode()] = value.decode()
        raise GatewayError(429, message, type=unit, code="rate_limit_exceeded", headers=headers)
    if kind == "budget":
        line = budgets[index]
        spent, reserved = int(_text(result[3])), int(_text(result[4]))
        resets = f" It resets at {line.reset_at:%Y-%m-%dT%H:%M:%SZ}." if line.reset_at else " It does not reset (lifetime budget)."
        in_flight = f", {units_usd(reserved)} reserved by requests in flight" if reserved else ""
        message = (f"The {line.scope} has reached its {line.period} budget of {units_usd(line.limit)} "
                   f"(spent {units_usd(spent)}{in_flight}; this request could cost up to {units_usd(line.cost)})."
                   + resets)
        headers = {"retry-after": str(int((line.reset_at - now_dt).total_seconds()) + 1)} if line.reset_at else {}
        raise GatewayError(429, message, type="insufficient_quota", code="budget_exceeded", headers=headers)
    used = int(_text(result[3]))
    raise GatewayError(
        429,
        f"The workspace has used its monthly quota of {int(quota or 0):,} requests ({used:,} used). "
        f"It resets at {month_reset:%Y-%m-%dT%H:%M:%SZ}.",
        type="insufficient_quota", code="quota_exceeded",
        headers={"retry-after": str(int((month_reset - now_dt).total_seconds()) + 1)},
    )


def _today() -> str:
    """Today's UTC date, YYYY-MM-DD (the spend counters' day)."""
    return _day_text(int(time.time() // 86400))


@functools.lru_cache(maxsize=4)
def _day_text(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86400, UTC).strftime("%Y-%m-%d")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def settle_args(
    reservation: Reservation | None, key: KeyRecord, *, model: str, tokens_used: int, cost: str, counted: bool
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV for SETTLE: give back unused tokens, replace reservations by the real
    cost, add it to today's spend counters (run in the same round trip as the usage event)."""
    refunds: list[tuple[Bucket, int]] = []
    budgets: list[BudgetLine] = []
    if reservation is not None and reservation.active:
        # only the buckets with tokens to give back (a requests bucket keeps the request it took)
        refunds = [(b, b.cost - tokens_used) for b in reservation.buckets if b.kind == "tokens" and b.cost != tokens_used]
        budgets = reservation.budgets
    keys = [b.key for b, _ in refunds]
    units = usd_units(cost)
    args: list[Any] = [reservation.slot if reservation is not None else 0, len(refunds), len(budgets), SPEND_DAY_TTL_S]
    for b, refund in refunds:
        args += [b.limit, refund]
    for line in budgets:
        keys.append(line.key)
        args += [line.cost, units]
    keys.append(spend_day_key(key.schema, _today()))
    args += [units, "1" if counted else "0", "workspace", f"key:{key.key_id}", f"model:{model}"]
    return keys, args


def budget_reserved(state: Mapping[Any, Any], now_ms: int | None = None) -> int:
    """Units a budget's hash (as HGETALL returns it) holds for requests in flight, counted
    as RESERVE counts them."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    slot = math.floor(now_ms / (RESERVATION_TTL_MS / RESERVATION_SLOTS))
    total = 0
    for name, value in state.items():
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name.startswith("c") and name[1:].isdigit():
            at, units = (value.decode() if isinstance(value, bytes) else str(value)).split(" ")
            if slot - RESERVATION_SLOTS - 1 < int(at) <= slot:
                total += int(units)
    return total


def settle_args_upgrade(settle: tuple[list[str], list[Any]] | list[Any] | None) -> tuple[list[str], list[Any]] | None:
    """A settlement spooled before the reservation cells (its first argument a request id,
    two keys per budget) in today's layout: the spend is still counted; the old
    reservation is left to expire."""
    if settle is None:
        return None
    keys, args = list(settle[0]), list(settle[1])
    if isinstance(args[0], int):  # today's first argument is the slot, a number; it was an id string
        return keys, args
    nb, nbud = int(args[1]), int(args[2])
    refunds = [(keys[i], args[4 + 2 * i], args[5 + 2 * i]) for i in range(nb) if int(args[5 + 2 * i]) != 0]
    budget_keys = [keys[nb + 2 * i] for i in range(nbud)]
    costs = args[4 + 2 * nb: 4 + 2 * nb + nbud]
    new_keys = [k for k, _, _ in refunds] + budget_keys + keys[nb + 2 * nbud:]
    new_args: list[Any] = [0, len(refunds), nbud, args[3]]
    for _, limit, refund in refunds:
        new_args += [limit, refund]
    for cost in costs:
        new_args += [0, cost]
    return new_keys, new_args + args[4 + 2 * nb + nbud:]
