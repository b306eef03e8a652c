"""gateway.record.usage_event_begin: the usage command leaves for Redis before the answer
does; its reply is collected after, and a failure still ends in the spool."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import redis
from django.conf import settings

from gateway.record import USAGE_STREAM, UsageEvent, usage_event_begin, usage_spool
from gateway.rediswire import WireRedis


def _event() -> UsageEvent:
    return UsageEvent(schema="ws_record_test", key_id=1, key_name="k", endpoint="chat.completions",
                      model="m", event_id=uuid.uuid4().hex)


def _queued(sync: redis.Redis, event_id: str) -> bool:
    entries: Any = sync.xrevrange(USAGE_STREAM, count=200)
    return any(orjson.loads(fields[b"e"])["event_id"] == event_id for _, fields in entries)


def test_the_command_is_with_redis_before_the_reply_is_collected() -> None:
    sync = redis.Redis.from_url(settings.REDIS_URL)
    event = _event()

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await client.execute("PING")  # connected: the fast path
            collect = await usage_event_begin(client, event)
            assert collect is not None
            for _ in range(100):  # nothing awaited the reply yet: Redis ran it anyway
                if _queued(sync, event.event_id):
                    break
                await asyncio.sleep(0.01)
            assert _queued(sync, event.event_id)
            await collect
        finally:
            await client.aclose()

    asyncio.run(run())


def test_without_a_connection_the_whole_round_trip_happens_first() -> None:
    sync = redis.Redis.from_url(settings.REDIS_URL)
    event = _event()

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)  # never used: not connected yet
        try:
            assert await usage_event_begin(client, event) is None
            assert _queued(sync, event.event_id)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_failed_command_is_spooled_when_collected() -> None:
    event = _event()
    spool = usage_spool()
    bad_settle = (["aip:spend:ws_record_test:x"], ["not-a-slot"])  # the script fails on it

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await client.execute("PING")
            collect = await usage_event_begin(client, event, bad_settle)
            assert collect is not None
            await collect  # no exception: the failure went to the spool
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
        lines = spool.path.read_bytes().splitlines()
        assert any(orjson.loads(line)["event"]["event_id"] == event.event_id for line in lines)
    finally:
        spool.path.unlink(missing_ok=True)  # the bad entry would fail on every replay
        spool.pending = False
