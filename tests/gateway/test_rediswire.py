"""gateway.hotpath.rediswire against the tests' real Redis: replies in order under concurrency,
scripts loaded on demand, Redis errors as redis-py's exceptions, and a connection that
times out or is killed fails its commands and is replaced on the next one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.hotpath.rediswire import WireRedis, _encode


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_concurrent_commands_get_their_own_replies() -> None:
    prefix = f"wire-test:{uuid.uuid4().hex}"

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await asyncio.gather(*[client.execute("SET", f"{prefix}:{i}", f"value-{i}") for i in range(300)])
            values = await asyncio.gather(*[client.get(f"{prefix}:{i}") for i in range(300)])
            assert values == [f"value-{i}".encode() for i in range(300)]
            assert await client.get(f"{prefix}:missing") is None
            assert await client.execute("INCRBY", f"{prefix}:n", 5) == 5
            assert await client.execute("MGET", f"{prefix}:0", f"{prefix}:missing") == [b"value-0", None]
        finally:
            await client.execute("DEL", *[f"{prefix}:{i}" for i in range(300)], f"{prefix}:n")
            await client.aclose()

    _run(run())


def test_scripts_are_loaded_when_redis_does_not_know_them() -> None:
    source = f"-- {uuid.uuid4().hex}\nreturn {{tonumber(ARGV[1]) + 1, KEYS[1], false}}"

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            script = client.register_script(source)
            assert await script(keys=["k"], args=[41]) == [42, b"k", None]  # NOSCRIPT, then loaded and run
            assert await script(keys=["k"], args=[1]) == [2, b"k", None]
        finally:
            await client.aclose()

    _run(run())


def test_a_redis_error_is_a_response_error_and_the_connection_stays_usable() -> None:
    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            with pytest.raises(ResponseError, match="unknown command"):
                await client.execute("NO-SUCH-COMMAND")
            assert await client.execute("PING") == b"PONG"
        finally:
            await client.aclose()

    _run(run())


def test_a_command_that_waits_too_long_fails_and_the_next_one_reconnects() -> None:
    async def run() -> None:
        client = WireRedis(settings.REDIS_URL, timeout=0.3)
        try:
            with pytest.raises(RedisTimeoutError):
                await client.execute("BLPOP", f"wire-test:{uuid.uuid4().hex}", 5)
            assert await client.execute("PING") == b"PONG"
        finally:
            await client.aclose()

    _run(run())


def test_a_killed_connection_fails_its_commands_and_is_replaced() -> None:
    name = f"wire-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        client = WireRedis(settings.REDIS_URL)
        try:
            await client.execute("CLIENT", "SETNAME", name)
            blocked = asyncio.ensure_future(client.execute("BLPOP", f"wire-test:{uuid.uuid4().hex}", 5))
            await asyncio.sleep(0.1)
            admin = redis.Redis.from_url(settings.REDIS_URL)
            ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
            assert ids
            admin.execute_command("CLIENT", "KILL", "ID", ids[0])
            with pytest.raises(RedisConnectionError):
                await blocked
            assert await client.execute("PING") == b"PONG"
        finally:
            await client.aclose()

    _run(run())


def test_an_unreachable_redis_is_a_connection_error() -> None:
    async def run() -> None:
        client = WireRedis("redis://127.0.0.1:1/0", connect_timeout=0.5)
        with pytest.raises(RedisConnectionError):
            await client.execute("PING")

    _run(run())


def test_commands_are_encoded_as_resp_whatever_the_argument_types() -> None:
    expected = b"*6\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n$2\r\n-5\r\n$3\r\n1.5\r\n$2\r\n\x00x\r\n$1\r\n1\r\n"
    assert _encode(("SET", "é", -5, 1.5, b"\x00x", True)) == expected  # a bool: the Python encoder
    assert _encode(("SET", "é", -5, 1.5, b"\x00x", 1)) == expected  # hiredis's
    with pytest.raises(TypeError):
        _encode(("SET", None))
