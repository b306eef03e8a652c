"""The request context: what one proxied request carries from step to step, and how it
is recorded (step 7) exactly once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .directory import Deployment, KeyRecord
from .inbound import InboundApi
from .limits import Reservation, settle_args
from .record import FinishReply, UsageRecord, usage_cost, usage_event_begin
from .response_cache import CachePlan
from .state import GatewayState
from .stream import Receive, Send

logger = logging.getLogger("aiproxy.gateway")

JSON_HEADERS = [(b"content-type", b"application/json")]
Headers = list[tuple[bytes, bytes]]


async def respond(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    length = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS + length + (headers or [])})
    await send({"type": "http.response.body", "body": body})


@dataclass(slots=True)
class RequestContext:
    """One request on the hot path. Whole answers are recorded (the command written to
    Redis) before they are sent, so a client that got its answer is always billed, even
    if the process dies right after."""

    state: GatewayState
    inbound: InboundApi
    key: KeyRecord
    scope: dict[str, Any]
    receive: Receive
    send: Send
    headers: dict[bytes, bytes]
    event: UsageRecord
    started: float = field(default_factory=time.perf_counter)
    reservation: Reservation | None = None
    cache: CachePlan | None = None
    extra: Headers = field(default_factory=list)  # response headers every answer carries
    done: bool = False

    def settle(self, deployment: Deployment, input_tokens: int, output_tokens: int) -> None:
        """The answer's usage and its cost at the prices of the deployment that served it."""
        event = self.event
        event.input_tokens = input_tokens
        event.output_tokens = output_tokens
        event.cost = usage_cost(input_tokens, output_tokens, deployment.input_price_per_mtok,
                                deployment.output_price_per_mtok)

    async def _start(self) -> FinishReply | None:
        if self.done:
            return None
        self.done = True
        write = self.cache.write if self.cache is not None else None
        return await _record(self.state, self.event, self.started, self.key, self.reservation, write)

    async def record(self) -> None:
        """Record (an error, or a stream that has ended): the command is on its way to Redis
        when this returns; its reply is handled when it comes, without this request."""
        reply = await self._start()
        if reply is not None:
            reply.detach()

    async def answer(self, body: bytes, headers: Headers) -> None:
        """Record, then send a whole 200 answer: the usage is written to Redis before the
        answer leaves, and Redis's reply is not waited for (one round trip off the latency,
        and no wake-up of the request for it)."""
        reply = await self._start()
        try:
            await respond(self.send, 200, body, headers)
        finally:
            if reply is not None:
                reply.detach()


async def _record(state: GatewayState, event: UsageRecord, started: float, key: KeyRecord,
                  reservation: Reservation | None = None, write: Any = None) -> FinishReply | None:
    """Step 7: settle the reservation, queue the usage event and store the answer in the
    exact cache, in one round trip. Returns once the command is on its way to Redis, with
    what collects the reply (None if there is nothing left to wait for)."""
    event.latency_ms = int((time.perf_counter() - started) * 1000)
    settle = None
    if (reservation is not None and reservation.active) or event.status_code == 200:
        settle = settle_args(reservation, key, model=event.model, tokens_used=event.input_tokens + event.output_tokens,
                             cost=event.cost, counted=event.status_code == 200)
    try:
        return await usage_event_begin(state.wire, event, settle, write)  # writes at once, or shields the round trip
    except Exception:
        logger.exception("usage event could not be recorded (event_id=%s)", event.event_id)
    return None
