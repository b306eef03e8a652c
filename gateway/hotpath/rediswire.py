"""The hot path's Redis client: one connection per event loop, every command pipelined on it.

The gateway talks to Redis twice per request (gateway/hotpath/limits.py reserves, gateway/hotpath/record.py
settles and records), each time with one EVALSHA. redis-py spends about 110 µs of CPU on
such a call (connection pool, retries, observability hooks, a timer per read); this client
spends about 20-30 µs (benchmarks: README "Hot path"), and concurrent requests share one
socket, so one write and one read syscall carry many commands. It does only what the hot
path needs: commands in, RESP2 replies out (parsed by hiredis), URL parsing by redis-py,
errors as redis-py's exception classes so callers keep `except RedisError`.

- Replies come back in the order the commands were sent: a FIFO of futures.
- A command unanswered after `timeout` seconds fails, with every other command on that
  connection (it is closed); the next command reconnects. So does a lost connection.
- Everything else (the Django side, the directory's occasional reads, Celery) uses redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections import deque
from typing import Any

import hiredis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def _encode(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: an array of bulk strings (hiredis's C encoder; this one for the
    types it refuses, such as bool and str or int subclasses)."""
    try:
        return hiredis.pack_command(args)  # type: ignore[no-any-return]
    except TypeError:
        return _encode_py(args)


def _encode_py(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)  # the common types first, by identity: this runs for every argument
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int:
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        elif isinstance(arg, int | str | bytes):  # subclasses (bool, enums)
            data = arg.encode() if isinstance(arg, str) else (b"%d" % arg if isinstance(arg, int) else bytes(arg))
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """One connection, with the commands waiting on it (their own queue: replies on a new
    connection can never be matched with commands sent on an old one)."""

    def __init__(self, owner: WireRedis) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiters = self.waiters
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not waiters:  # a reply nobody waits for: the stream is out of step
                self.owner.fail(RedisConnectionError("Redis sent a reply to no command"), self)
                return
            future, _ = waiters.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                future.set_exception(NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.fail(RedisConnectionError("Connection to Redis lost"), self)


class WireRedis:
    """A Redis client for one event loop (see the module's docstring)."""

    def __init__(self, url: str, *, timeout: float = 2.0, connect_timeout: float = 2.0) -> None:
        self.options = parse_url(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.transport: asyncio.Transport | None = None
        self.protocol: _Protocol | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            async with asyncio.timeout(self.connect_timeout):
                if options.get("connection_class") is UnixDomainSocketConnection:
                    transport, protocol = await loop.create_unix_connection(lambda: _Protocol(self), options["path"])
                else:
                    context = ssl.create_default_context() if options.get("connection_class") is SSLConnection else None
                    transport, protocol = await loop.create_connection(
                        lambda: _Protocol(self), options.get("host", "localhost"), int(options.get("port", 6379)),
                        ssl=context)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"Cannot connect to Redis: {type(exc).__name__}") from None
        self.transport, self.protocol = transport, protocol
        setup = []
        if options.get("password"):
            user = options.get("username")
            setup.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if int(options.get("db") or 0):
            setup.append(("SELECT", int(options["db"])))
        for command in setup:
            await self._send(command)

    async def _ready(self) -> None:
        if self.connected():
            return
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    def _send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        assert self.transport is not None and self.protocol is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.protocol.waiters.append((future, time.monotonic()))
        self.transport.write(_encode(args))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout / 4, self._check)
        return future

    def connected(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def execute(self, *args: Any) -> Any:
        if not self.connected():
            await self._ready()
        return await self._send(args)

    def _check(self) -> None:
        """Fail the connection when its oldest command has waited longer than the timeout."""
        self._watchdog = None
        protocol = self.protocol
        if protocol is None or not protocol.waiters:
            return
        if time.monotonic() - protocol.waiters[0][1] > self.timeout:
            self.fail(RedisTimeoutError("Timeout reading from Redis"), protocol)
            return
        self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)

    def fail(self, error: Exception, protocol: _Protocol | None = None) -> None:
        """Close a connection (by default the current one) and fail every command waiting on it."""
        protocol = protocol or self.protocol
        if protocol is None:
            return
        if protocol is self.protocol:
            self.transport, self.protocol = None, None
        if protocol.transport is not None and not protocol.transport.is_closing():
            protocol.transport.abort()
        waiters, protocol.waiters = protocol.waiters, deque()
        for future, _ in waiters:
            if not future.done():
                future.set_exception(error)

    async def get(self, key: str) -> bytes | None:
        return await self.execute("GET", key)  # type: ignore[no-any-return]

    def register_script(self, source: str) -> WireScript:
        return WireScript(self, source)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.fail(RedisConnectionError("Client closed"))


class WireScript:
    """A Lua script run by EVALSHA, loaded once when Redis does not know it yet."""

    def __init__(self, client: WireRedis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def send_now(self, keys: list[Any], args: list[Any]) -> asyncio.Future[Any] | None:
        """Write EVALSHA to Redis at once and return the future of its reply (NoScriptError if
        Redis does not know the script); None when the connection is not up."""
        client = self.client
        if not client.connected():
            return None
        return client._send(("EVALSHA", self.sha, len(keys), *keys, *args))

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.execute("SCRIPT", "LOAD", self.source)
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
