"""The gateway bounds every usage event to the usage table's columns before it is queued, so
what a client sends (a model name of any length or content) cannot make the insert fail."""

from __future__ import annotations

import asyncio
import math
import uuid
from decimal import Decimal
from typing import Any

import orjson
import redis
from django.conf import settings

from analytics.models import UsageEvent as Row
from gateway.hotpath.record import (
    USAGE_INT_FIELDS,
    USAGE_STREAM,
    USAGE_TEXT_LIMITS,
    UsageRecord,
    usage_event_begin,
    usage_event_bound,
)
from gateway.hotpath.rediswire import WireRedis

HOSTILE: dict[str, Any] = {
    "model": "gpt-4o" + "\x00" * 3 + "x" * 400,
    "key_name": "k" * 101,
    "endpoint": "\x00" * 70,
    "provider": "\ud800p" * 90,
    "cache_status": "hit-but-very-long-status",
    "error_type": "e" * 65,
    "input_tokens": 2**40,
    "output_tokens": -1,
    "latency_ms": 1e300,
    "status_code": "404",
    "cost": "123456789.5",
    "cost_saved": "NaN",
}


def test_the_bounds_are_the_usage_tables_column_sizes() -> None:
    for name, limit in USAGE_TEXT_LIMITS:
        assert Row._meta.get_field(name).max_length == limit  # type: ignore[union-attr]
    for name in USAGE_INT_FIELDS:
        assert Row._meta.get_field(name).get_internal_type() == "IntegerField"
    for name in ("cost", "cost_saved"):
        field = Row._meta.get_field(name)
        assert (field.max_digits, field.decimal_places) == (14, 8)  # type: ignore[union-attr]


def _fits(event: dict[str, Any]) -> None:
    for name, limit in USAGE_TEXT_LIMITS:
        value = event[name]
        assert isinstance(value, str) and len(value) <= limit and "\x00" not in value, name
        value.encode()  # valid UTF-8: no lone surrogates
    for name in USAGE_INT_FIELDS:
        assert isinstance(event[name], int) and 0 <= event[name] <= 2**31 - 1, name
    for name in ("cost", "cost_saved"):
        amount = Decimal(event[name])
        assert amount.is_finite() and abs(amount) < 10**6 and -amount.as_tuple().exponent <= 8, name  # type: ignore[operator]


def test_a_hostile_event_is_bounded_before_it_is_queued() -> None:
    event = UsageRecord(schema="ws_bounds", key_id=1, event_id=uuid.uuid4().hex, **HOSTILE)

    async def queue() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await client.execute("PING")
            reply = await usage_event_begin(client, event)
            if reply is not None:
                await reply
        finally:
            await client.aclose()

    asyncio.run(queue())
    entries: Any = redis.Redis.from_url(settings.REDIS_URL).xrevrange(USAGE_STREAM, count=500)
    queued = next(e for _, f in entries if (e := orjson.loads(f[b"e"]))["event_id"] == event.event_id)
    _fits(queued)
    assert queued["model"] == ("gpt-4o" + "\ufffd" * 3 + "x" * 400)[:128], "the model keeps what can be kept"
    assert queued["input_tokens"] == 2**31 - 1 and queued["output_tokens"] == 0 and queued["status_code"] == 404
    assert queued["cost"] == "999999.99999999"


def test_a_usual_event_is_left_as_it_is() -> None:
    event = UsageRecord(
        schema="ws_bounds",
        key_id=1,
        key_name="production",
        endpoint="chat.completions",
        model="gpt-4o-mini",
        provider="openai-main",
        input_tokens=1200,
        output_tokens=300,
        cost="0.00045000",
        latency_ms=412,
        error_type="",
    )
    before = orjson.dumps(event)
    assert orjson.dumps(usage_event_bound(event)) == before


def test_any_values_end_within_the_columns() -> None:
    values: list[Any] = [
        None,
        3,
        -3,
        1.5,
        math.inf,
        math.nan,
        "",
        "x" * 1000,
        "\x00",
        "\ud800",
        "é" * 200,
        [1],
        {"a": 1},
        True,
        2**100,
        "12",
        "1e400",
        "-1e400",
        "Infinity",
    ]
    for value in values:
        event = UsageRecord(schema="ws_bounds", key_id=1, key_name="k", endpoint="e")
        for name, _ in USAGE_TEXT_LIMITS:
            setattr(event, name, value)
        for name in (*USAGE_INT_FIELDS, "cost", "cost_saved"):
            setattr(event, name, value)
        _fits(orjson.loads(orjson.dumps(usage_event_bound(event))))


def test_each_text_field_is_cut_at_its_column_size_and_no_sooner() -> None:
    for name, limit in USAGE_TEXT_LIMITS:
        for size in (limit, limit + 1):
            event = UsageRecord(schema="ws_bounds", key_id=1, key_name="k", endpoint="e")
            setattr(event, name, "a" * size)
            assert getattr(usage_event_bound(event), name) == "a" * limit, (name, size)
