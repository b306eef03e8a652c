"""Step 6b: stream upstream SSE events to the client, watching for a disconnect.

If the client goes away, the upstream request is cancelled and what was streamed so
far is still counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .adapters.interface import Usage

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class StreamOutcome:
    usage: Usage | None = None
    events: list[bytes] = field(default_factory=list)
    client_disconnected: bool = False
    upstream_failed: bool = False


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def sse_relay(
    send: Send,
    receive: Receive,
    events: AsyncIterator[bytes],
    *,
    extra_headers: list[tuple[bytes, bytes]],
    event_usage: Callable[[bytes], Usage | None],
    drop_usage_event: Callable[[bytes], bool] | None,
) -> StreamOutcome:
    outcome = StreamOutcome()

    async def pump() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + extra_headers})
        try:
            async for event in events:
                usage = event_usage(event)
                if usage is not None:
                    outcome.usage = usage
                    if drop_usage_event is not None and drop_usage_event(event):
                        continue
                outcome.events.append(event)
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except (TimeoutError, OSError, ConnectionError) as exc:
            outcome.upstream_failed = True
            message = b'data: {"error":{"message":"The upstream stream was interrupted.","type":"api_error","code":"upstream_stream_error"}}\n\n'
            await send({"type": "http.response.body", "body": message, "more_body": True})
            del exc
        except Exception:
            outcome.upstream_failed = True
            raise
        finally:
            if not outcome.client_disconnected:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        if watch_task.done() and not pump_task.done():
            outcome.client_disconnected = True
            pump_task.cancel()
        try:
            await pump_task
        except asyncio.CancelledError:
            if not outcome.client_disconnected:
                raise
    finally:
        watch_task.cancel()
        if not pump_task.done():
            outcome.client_disconnected = True
            pump_task.cancel()
    return outcome
