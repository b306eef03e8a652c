"""gateway.hotpath.limits against the tests' real Redis: reservations that are never settled
(a killed gateway process) expire instead of holding budget forever."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from gateway.hotpath import limits
from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.errors import GatewayError
from gateway.hotpath.key_policy import BudgetPolicy, KeyPolicy, LimitScope
from tests.gateway.deployments import deployment_make

DEPLOYMENT = deployment_make(input_price_per_mtok=1000.0, output_price_per_mtok=1000.0)


def _key(budget: str) -> KeyRecord:
    unique = 10**6 + uuid.uuid4().int % 10**6  # budgets are keyed by workspace and key: one of each per test
    return KeyRecord(key_hash="h", workspace_id=unique, schema="ws_unit", slug="unit",
                     key_id=unique, key_name="unit", revoked=False,
                     policy=KeyPolicy(key=LimitScope(budget=BudgetPolicy(amount=Decimal(budget), period="lifetime"))))


async def _reserve(client: aioredis.Redis, key: KeyRecord) -> limits.Reservation:
    return await limits.limits_reserve(client, key, DEPLOYMENT, {}, prompt_tokens=10, max_output_tokens=20)


def test_unsettled_reservation_expires_and_frees_the_budget(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(limits, "RESERVATION_TTL_MS", 200)
    key = _key("0.05")  # one reservation of 30 tokens x $0.001 = $0.03 fits, two do not

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            await _reserve(client, key)  # the process that made it "dies": never settled
            with pytest.raises(GatewayError) as err:
                await _reserve(client, key)
            assert err.value.code == "budget_exceeded" and "$0.03 reserved by requests in flight" in err.value.message
            await asyncio.sleep(0.3)
            second = await _reserve(client, key)  # the first reservation has expired
            budget_key = second.budgets[0].key
            assert limits.budget_reserved(await client.hgetall(budget_key)) == 3_000_000
            keys, args = limits.settle_args(second, key, model="m", tokens_used=16, cost="0.016", counted=True)
            await limits.script_for(client, limits.SETTLE)(keys=keys, args=args)
            state = await client.hgetall(budget_key)
            assert limits.budget_reserved(state) == 0 and int(state[b"spent"]) == 1_600_000
        finally:
            await client.aclose()

    asyncio.run(run())


def test_settling_releases_the_reservation_and_adds_real_spend_to_today():  # type: ignore[no-untyped-def]
    key = _key("1.00")

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            reservation = await _reserve(client, key)
            keys, args = limits.settle_args(reservation, key, model="m", tokens_used=16, cost="0.016", counted=True)
            await limits.script_for(client, limits.SETTLE)(keys=keys, args=args)
            state = await client.hgetall(reservation.budgets[0].key)
            assert limits.budget_reserved(state) == 0 and int(state[b"spent"]) == 1_600_000
            day = await client.hgetall(keys[-1])
            assert int(day[f"key:{key.key_id}".encode()]) == 1_600_000 and int(day[b"model:m:requests"]) >= 1
        finally:
            await client.aclose()

    asyncio.run(run())


def test_period_keys_and_resets() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)  # a Sunday
    assert limits._period("daily", now) == ("d2026-11-29", datetime(2026, 11, 30, tzinfo=UTC))
    assert limits._period("weekly", now) == ("w2026-11-23", datetime(2026, 11, 30, tzinfo=UTC))
    assert limits._period("monthly", now) == ("m2026-11", datetime(2026, 12, 1, tzinfo=UTC))
    assert limits._period("monthly", datetime(2026, 12, 31, tzinfo=UTC))[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert limits._period("lifetime", now) == ("lifetime", None)


def _tokens_key(tpm: int) -> KeyRecord:
    unique = 10**6 + uuid.uuid4().int % 10**6
    return KeyRecord(key_hash="h", workspace_id=unique, schema="ws_unit", slug="unit", key_id=unique, key_name="unit",
                     revoked=False, policy=KeyPolicy(key=LimitScope(tpm=tpm, rpm=100, budget=BudgetPolicy(amount=Decimal("1.00")))))


def test_reservations_share_a_cell_and_settle_one_by_one():  # type: ignore[no-untyped-def]
    key = _tokens_key(10_000)

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            first, second = await _reserve(client, key), await _reserve(client, key)
            budget_key = first.budgets[0].key
            state: Any = await client.hgetall(budget_key)
            assert limits.budget_reserved(state) == 6_000_000  # two requests of up to $0.03 in flight
            assert len([name for name in state if name.startswith(b"c")]) <= 2  # one cell per time slot
            tokens_key = next(b.key for b in first.buckets if b.kind == "tokens")
            left, _ = cast("bytes", await client.get(tokens_key)).decode().split(" ")
            assert 10_000 - 60 <= float(left) < 10_000 - 30  # each took 30 tokens (the bucket refills 167 a second)
            assert 0 < await client.pttl(tokens_key) <= 120_000
            keys, args = limits.settle_args(first, key, model="m", tokens_used=16, cost="0.016", counted=True)
            assert tokens_key in keys and not any(k.endswith(":rpm") for k in keys)  # only refunds are passed
            await limits.script_for(client, limits.SETTLE)(keys=keys, args=args)
            state = await client.hgetall(budget_key)
            assert limits.budget_reserved(state) == 3_000_000 and int(state[b"spent"]) == 1_600_000
            left_after, _ = cast("bytes", await client.get(tokens_key)).decode().split(" ")
            assert 14 <= float(left_after) - float(left) < 14 + 30  # 30 reserved, 16 used: 14 given back
            keys, args = limits.settle_args(second, key, model="m", tokens_used=30, cost="0.03", counted=True)
            await limits.script_for(client, limits.SETTLE)(keys=keys, args=args)
            state = await client.hgetall(budget_key)
            assert limits.budget_reserved(state) == 0 and int(state[b"spent"]) == 4_600_000
            assert not [name for name in state if name.startswith(b"c")]  # an emptied cell is removed
        finally:
            await client.aclose()

    asyncio.run(run())


def test_buckets_left_by_the_previous_format_do_not_break_a_request():  # type: ignore[no-untyped-def]
    key = _tokens_key(10_000)

    async def run() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            scopes = limits.limit_scopes(key, DEPLOYMENT, {})
            for _, _, name, _ in scopes.buckets:  # a hash, as buckets were stored before
                await client.hset(name, mapping={"t": "5", "ts": "1"})
            reservation = await _reserve(client, key)  # read as a full bucket, then overwritten
            assert reservation.active
            assert [await client.type(b.key) for b in reservation.buckets] == [b"string"] * len(reservation.buckets)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_settlement_spooled_in_the_previous_layout_still_counts_its_spend():  # type: ignore[no-untyped-def]
    old = (["aip:rl:k:rpm", "aip:rl:k:tpm", "aip:bud:key:s:1:lifetime", "aip:bud:key:s:1:lifetime:r", "aip:spend:s:d"],
           ["0f" * 16, 2, 1, 3456000, 100, 0, 1000, 14, 1_600_000, 1_600_000, "1", "workspace", "key:1", "model:m"])
    keys, args = limits.settle_args_upgrade(old)  # type: ignore[misc]
    assert keys == ["aip:rl:k:tpm", "aip:bud:key:s:1:lifetime", "aip:spend:s:d"]
    assert args == [0, 1, 1, 3456000, 1000, 14, 0, 1_600_000, 1_600_000, "1", "workspace", "key:1", "model:m"]
    assert limits.settle_args_upgrade((keys, args)) == (keys, args)  # today's layout passes through
    assert limits.settle_args_upgrade(None) is None
