"""gateway.hotpath.record.usage_event_begin: the usage command leaves for Redis before the answer
does; its reply is collected after (awaited, or detached: nobody waits), and a failure
still ends in the spool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis
from django.conf import settings

from gateway.hotpath.record import (
    USAGE_STREAM,
    UsageRecord,
    _detached,
    _recovering,
    usage_event_begin,
    usage_replies_wait,
    usage_spool,
)
from gateway.hotpath.rediswire import WireRedis


def _event() -> UsageRecord:
    return UsageRecord(schema="ws_record_test", key_id=1, key_name="k", endpoint="chat.completions",
                      model="m", event_id=uuid.uuid4().hex)


def _queued(sync: redis.Redis, event_id: str) -> bool:
    entries: Any = sync.xrevrange(USAGE_STREAM, count=200)
    return any(orjson.loads(fields[b"e"])["event_id"] == event_id for _, fields in entries)


def _connected(body: Callable[[WireRedis], Awaitable[None]]) -> None:
    """Run `body` with a WireRedis already connected to the suite's Redis (the fast path)."""
    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await client.execute("PING")
            await body(client)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_the_command_is_with_redis_before_the_reply_is_collected() -> None:
    sync = redis.Redis.from_url(settings.REDIS_URL)
    event = _event()

    async def body(client: WireRedis) -> None:
        # a Redis that has not run the script yet answers NOSCRIPT, and the retry waits for that
        # reply: load it first, as any earlier request of the process would have
        warm = await usage_event_begin(client, _event())
        assert warm is not None
        await warm
        collect = await usage_event_begin(client, event)
        assert collect is not None
        for _ in range(100):  # nothing awaited the reply yet: Redis ran it anyway
            if _queued(sync, event.event_id):
                break
            await asyncio.sleep(0.01)
        assert _queued(sync, event.event_id)
        await collect

    _connected(body)


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


@pytest.mark.parametrize("detached", [False, True], ids=["awaited", "detached"])
def test_a_failed_command_is_spooled(detached: bool) -> None:
    event = _event()
    spool = usage_spool()
    bad_settle = (["aip:spend:ws_record_test:x"], ["not-a-slot"])  # the script fails on it

    async def body(client: WireRedis) -> None:
        reply = await usage_event_begin(client, event, bad_settle)
        assert reply is not None
        if detached:
            reply.detach()
            await usage_replies_wait()  # what gateway_shutdown does: the failure is handled, not dropped
            assert not _detached and not _recovering
        else:
            await reply  # no exception: the failure went to the spool

    try:
        _connected(body)
        lines = spool.path.read_bytes().splitlines()
        assert any(orjson.loads(line)["event"]["event_id"] == event.event_id for line in lines)
    finally:
        spool.path.unlink(missing_ok=True)  # the bad entry would fail on every replay
        spool.pending = False


def test_a_detached_reply_needs_no_task_when_it_succeeds() -> None:
    sync = redis.Redis.from_url(settings.REDIS_URL)
    event = _event()

    async def body(client: WireRedis) -> None:
        reply = await usage_event_begin(client, event)
        assert reply is not None
        reply.detach()
        assert reply.future in _detached  # shutdown would wait for it
        await asyncio.wait_for(asyncio.shield(reply.future), 5)
        await asyncio.sleep(0)  # the done callback runs
        assert reply.future not in _detached
        assert not _recovering  # the usual case: no task
        assert _queued(sync, event.event_id)

    _connected(body)


def test_a_detached_reply_runs_the_script_again_when_redis_lost_it() -> None:
    sync = redis.Redis.from_url(settings.REDIS_URL)
    event = _event()

    async def body(client: WireRedis) -> None:
        await client.execute("SCRIPT", "FLUSH")  # as after a Redis restart
        reply = await usage_event_begin(client, event)
        assert reply is not None
        reply.detach()
        await usage_replies_wait()
        assert _queued(sync, event.event_id)  # loaded and run by the recovery task

    _connected(body)
