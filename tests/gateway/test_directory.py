"""gateway.hotpath.directory's key records: however many requests find a record expired at once,
the process reads it from Redis once, and a request that is cancelled while waiting does
not cancel the read for the others. (A read per request, every 0.5 s, stalled every
request in flight for 100-200 ms at 500 requests/s: README "Hot path and benchmarks".)"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.hotpath import directory
from gateway.hotpath.directory import Directory, KeyRecord

RECORD = {"workspace_id": 7, "schema": "ws_seven", "slug": "seven", "key_id": 3, "key_name": "ci", "revoked": False,
          "policy": {}}


class SlowRedis:
    """Answers GET after a delay, counting the reads."""

    def __init__(self) -> None:
        self.reads = 0

    async def get(self, name: str) -> Any:
        self.reads += 1
        await asyncio.sleep(0.05)
        return orjson.dumps({**RECORD, "key_name": f"ci-{self.reads}"})


def test_concurrent_lookups_of_an_expired_key_read_redis_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(directory, "KEY_TTL", 0.2)

    async def run() -> None:
        redis = SlowRedis()
        d = Directory(redis)  # type: ignore[arg-type]
        first = await asyncio.gather(*[d.key_lookup("hash") for _ in range(50)])
        assert redis.reads == 1 and {r.key_name for r in first if r} == {"ci-1"}
        cached = await asyncio.gather(*[d.key_lookup("hash") for _ in range(50)])
        assert redis.reads == 1 and all(r is first[0] for r in cached)
        await asyncio.sleep(0.25)  # expired: read again, once
        second = await asyncio.gather(*[d.key_lookup("hash") for _ in range(50)])
        assert redis.reads == 2 and {r.key_name for r in second if r} == {"ci-2"}

    asyncio.run(run())


def test_a_cancelled_request_does_not_cancel_the_read_for_the_others() -> None:
    async def run() -> None:
        redis = SlowRedis()
        d = Directory(redis)  # type: ignore[arg-type]
        leaving = asyncio.ensure_future(d.key_lookup("hash"))
        staying = asyncio.ensure_future(d.key_lookup("hash"))
        await asyncio.sleep(0.01)
        leaving.cancel()
        record = await staying
        assert record is not None and record.key_name == "ci-1" and redis.reads == 1
        assert leaving.cancelled()

    asyncio.run(run())


class EmptyRedis:
    """Holds no record (a cold start, or Redis flushed)."""

    async def get(self, name: str) -> Any:
        return None


def test_a_key_redis_does_not_hold_is_asked_of_the_key_loader() -> None:
    asked: list[str] = []

    def loader(key_hash: str) -> KeyRecord | None:
        asked.append(key_hash)
        return KeyRecord.from_wire(key_hash, RECORD) if key_hash == "known" else None

    async def run() -> None:
        d = Directory(EmptyRedis(), key_loader=loader)  # type: ignore[arg-type]
        found, unknown = await d.key_lookup("known"), await d.key_lookup("unknown")
        assert found is not None and found.key_name == "ci" and found.schema == "ws_seven"
        assert unknown is None and asked == ["known", "unknown"]

    asyncio.run(run())


def loader_from_settings(key_hash: str) -> KeyRecord | None:
    return KeyRecord.from_wire(key_hash, {**RECORD, "key_name": "from settings"})


def test_the_default_key_loader_is_the_one_settings_name(settings) -> None:  # type: ignore[no-untyped-def]
    settings.GATEWAY_KEY_LOADER = f"{__name__}.loader_from_settings"

    async def run() -> KeyRecord | None:
        return await Directory(EmptyRedis()).key_lookup("any")  # type: ignore[arg-type]

    record = asyncio.run(run())
    assert record is not None and record.key_name == "from settings"


def test_a_record_published_with_fields_this_process_does_not_know_still_loads() -> None:
    record = KeyRecord.from_wire("h", {**RECORD, "added_by_a_newer_release": [1, 2]})
    assert record.key_id == 3 and KeyRecord.from_wire("h", record.to_wire()) == record
