"""Step 6b: relay stream events to the client, watching for a disconnect.

The events arrive already in the client's format (passed through untouched, or
translated by an inbound encoder). If the client goes away the upstream request is
cancelled; the caller still counts what was streamed so far."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import upstream
from .errors import GatewayError

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class StreamOutcome:
    client_disconnected: bool = False
    upstream_failed: bool = False


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def stream_interrupted() -> GatewayError:
    return GatewayError(502, "The upstream stream was interrupted.", type="api_error", code="upstream_stream_error")


async def sse_relay(
    send: Send,
    receive: Receive,
    events: AsyncIterator[bytes],
    *,
    extra_headers: list[tuple[bytes, bytes]],
    error_event: Callable[[GatewayError], bytes],
) -> StreamOutcome:
    outcome = StreamOutcome()

    async def pump() -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + extra_headers})
        try:
            async for event in events:
                if event:
                    await send({"type": "http.response.body", "body": event, "more_body": True})
        except GatewayError as error:
            outcome.upstream_failed = True
            await send({"type": "http.response.body", "body": error_event(error), "more_body": True})
        except (TimeoutError, OSError, upstream.ClientError):
            outcome.upstream_failed = True
            await send({"type": "http.response.body", "body": error_event(stream_interrupted()), "more_body": True})
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
