"""gateway.limits against the tests' real Redis: reservations that are never settled
(a killed gateway process) expire instead of holding budget forever."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from gateway import limits
from gateway.directory import Deployment, KeyRecord
from gateway.errors import GatewayError

DEPLOYMENT = Deployment(
    public_name="m", upstream_name="m", provider_name="p", provider_kind="fake", base_url="http://127.0.0.1:1",
    credential="", api_version="", input_price_per_mtok=1000.0, output_price_per_mtok=1000.0, context_window=None,
    workspace_ids=frozenset(), created=0,
)


def _key(budget: str) -> KeyRecord:
    unique = 10**6 + uuid.uuid4().int % 10**6  # budgets are keyed by workspace and key: one of each per test
    return KeyRecord(key_hash="h", workspace_id=unique, schema="ws_unit", slug="unit",
                     key_id=unique, key_name="unit", revoked=False,
                     policy={"key": {"budget": {"amount": budget, "period": "lifetime", "hard": True, "thresholds": []}}})


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
            assert int(await client.hget(budget_key, "reserved") or 0) == 3_000_000
            keys, args = limits.settle_args(second, key, model="m", tokens_used=16, cost="0.016", counted=True)
            await limits.script_for(client, limits.SETTLE)(keys=keys, args=args)
            state = await client.hgetall(budget_key)
            assert int(state[b"reserved"]) == 0 and int(state[b"spent"]) == 1_600_000
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
            assert int(state[b"reserved"]) == 0 and int(state[b"spent"]) == 1_600_000
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
