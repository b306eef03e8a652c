"""Step 5-6 of the pipeline: choose a deployment, call it, and on failure try the next,
until one answers, the attempts run out or the deadline passes.

The order: the group's usable deployments as its strategy ranks them (balance.py), then
each fallback group's; a deployment whose circuit is open gets no traffic (health.py)
unless its cooldown has passed and this request wins the one probe. When no deployment
of any group in the chain can be tried, the request fails at once with a 503 naming the
group, not after a timeout.

What is retried: a connect error, a timeout, 429, 500-504 and 529, and a rejected
credential (the client cannot fix any of them). A 4xx that is the request's own fault
goes back to the client at once, except a prompt too long for the window (to the group's
context fallback) and a content-policy refusal (to its content-policy fallback).
A stream is retried only until its first byte has gone to the client; after that a
failure is reported inside the stream, in the client's format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from . import upstream
from .adapters.interface import Usage
from .balance import candidates
from .context import RequestContext
from .directory import Deployment, ModelGroup, Timeouts
from .errors import GatewayError, invalid_request, upstream_timeout
from .exchange import Exchange, Headers, Relay, Whole
from .health import HealthBoard
from .response_cache import cache_stage
from .stream import sse_relay, stream_interrupted
from .token_count import count_message_tokens, count_text_tokens

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
RETRY_CODES = frozenset({"upstream_auth_failed", "upstream_unreachable", "upstream_timeout", "upstream_invalid",
                         "upstream_stream_error"})
CONTEXT_CODES = frozenset({"context_length_exceeded"})
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})
BACKOFF_BASE = 0.1  # seconds before the second try of the same deployment; doubles after each
BACKOFF_CAP = 5.0
RETRY_AFTER_CAP = 30.0  # a Retry-After longer than this is not waited for (another deployment may serve)
MAX_ATTEMPTS_CAP = 10  # x-aiproxy-max-attempts may ask for at most this many
MAX_FALLBACKS = 5  # names in x-aiproxy-fallbacks
MAX_TIMEOUT = 600.0  # seconds, for x-aiproxy-timeout


def failover_worthy(error: GatewayError) -> bool:
    """The upstream's fault (or the deployment's configuration), not the request's."""
    return error.status in RETRY_STATUSES or error.code in RETRY_CODES


@dataclass(slots=True)
class Overrides:
    """What the client asked for in x-aiproxy-* headers (bounded by the gateway's caps)."""

    fallbacks: tuple[str, ...] | None = None
    max_attempts: int | None = None
    timeouts: Timeouts | None = None


def overrides_parse(headers: dict[bytes, bytes]) -> Overrides | None:
    """The x-aiproxy-fallbacks, -max-attempts and -timeout headers (None: none sent, the
    usual request, parsed in one dictionary check each)."""
    raw_fallbacks = headers.get(b"x-aiproxy-fallbacks")
    raw_attempts = headers.get(b"x-aiproxy-max-attempts")
    raw_timeout = headers.get(b"x-aiproxy-timeout")
    if raw_fallbacks is None and raw_attempts is None and raw_timeout is None:
        return None
    out = Overrides()
    if raw_fallbacks is not None:
        names = tuple(n.strip() for n in raw_fallbacks.decode("latin-1").split(",") if n.strip())
        if len(names) > MAX_FALLBACKS or any(len(n) > 128 for n in names):
            raise invalid_request(f"Invalid x-aiproxy-fallbacks: at most {MAX_FALLBACKS} comma-separated model names.",
                                  code="invalid_header")
        out.fallbacks = names
    if raw_attempts is not None:
        if not (raw_attempts.isdigit() and raw_attempts.isascii() and 1 <= int(raw_attempts) <= MAX_ATTEMPTS_CAP):
            raise invalid_request(f"Invalid x-aiproxy-max-attempts: expected a whole number from 1 to {MAX_ATTEMPTS_CAP}.",
                                  code="invalid_header")
        out.max_attempts = int(raw_attempts)
    if raw_timeout is not None:
        out.timeouts = _timeouts_parse(raw_timeout.decode("latin-1"))
    return out


def overrides_check(overrides: Overrides | None, *, allowed: bool) -> None:
    """Refuse x-aiproxy-fallbacks and x-aiproxy-max-attempts when the workspace turned them
    off (a 400, so the client learns why its header had no effect); x-aiproxy-timeout stays
    allowed, as it can only shorten the operator's timeouts."""
    if allowed or overrides is None:
        return
    for header, value in (("x-aiproxy-fallbacks", overrides.fallbacks), ("x-aiproxy-max-attempts", overrides.max_attempts)):
        if value is not None:
            raise invalid_request(f"The {header} header is not allowed: this workspace turned routing overrides off.",
                                  code="overrides_not_allowed")


def attempts_bound(group_max: int, requested: int | None, cap: int | None) -> int:
    """A request's attempts: what it asked for in x-aiproxy-max-attempts, else its group's
    setting, never more than the workspace's cap (None: no cap of the workspace's)."""
    wanted = group_max if requested is None else requested
    return wanted if cap is None else min(wanted, cap)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 < value <= MAX_TIMEOUT) or not (text.isascii() and text.strip().replace(".", "", 1).isdigit()):
        raise invalid_request(
            "Invalid x-aiproxy-timeout: expected seconds (e.g. 30), or connect=, first_byte= and total= "
            f"seconds separated by commas (e.g. connect=2,first_byte=10,total=60), each above 0 and at most {MAX_TIMEOUT:g}.",
            code="invalid_header")
    return value


def _timeouts_parse(text: str) -> Timeouts:
    if "=" not in text:
        return Timeouts(total=_seconds(text))
    values: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in ("connect", "first_byte", "total") or name in values:
            raise invalid_request("Invalid x-aiproxy-timeout: the names are connect, first_byte and total, once each.",
                                  code="invalid_header")
        values[name] = _seconds(value)
    return Timeouts(**values)


def _tighter(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def timeouts_apply(deployment: Deployment, requested: Timeouts | None) -> Deployment:
    """The deployment with the request's timeouts where they are shorter (a client may
    shorten the operator's timeouts, never lengthen them)."""
    if requested is None:
        return deployment
    own = deployment.timeouts
    merged = Timeouts(_tighter(own.connect, requested.connect), _tighter(own.first_byte, requested.first_byte),
                      _tighter(own.total, requested.total))
    return dataclasses.replace(deployment, timeouts=merged)


@dataclass(slots=True)
class Attempt:
    """One try, as the usage record keeps it."""

    deployment: Deployment
    outcome: str  # "ok", or the error's status and code
    ms: int


@dataclass(slots=True)
class Route:
    """The request's way through its group and the fallback chain."""

    board: HealthBoard
    catalog: dict[str, ModelGroup]
    group: ModelGroup
    workspace_id: int
    max_attempts: int
    deadline: float  # time.monotonic() after which no attempt starts
    fallbacks: list[str] = field(default_factory=list)
    tried: set[int] = field(default_factory=set)
    attempts: list[Attempt] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)  # deployment id -> failed attempts
    retry_at: dict[int, float] = field(default_factory=dict)  # deployment id -> Retry-After (monotonic)
    last_error: GatewayError | None = None
    tries: int = 0  # upstream calls made (a fallback skipped before any call is not one)

    def switch(self, name: str | None) -> bool:
        """Go on with group `name` (a fallback): False if there is no such group for this workspace."""
        group = self.catalog.get(name) if name else None
        if group is None or not group.visible_to(self.workspace_id):
            return False
        self.group = group
        return True

    async def next(self) -> Deployment | None:
        """The next deployment to try, or None when the attempts, the deadline or the chain ran out."""
        if self.tries >= self.max_attempts or time.monotonic() >= self.deadline:
            return None
        while True:
            choice = await self._in_group()
            if choice is not None:
                return choice
            if not self.fallbacks:
                return await self._again()
            self.switch(self.fallbacks.pop(0))

    async def _in_group(self) -> Deployment | None:
        await self.board.watch(self.group.deployments)
        usable = candidates(self.group, self.board, self.tried)
        if usable:
            return usable[0]
        for deployment in self.group.deployments:  # open circuits past their cooldown: one probe each
            if deployment.deployment_id not in self.tried and await self.board.probe(deployment):
                return deployment
        return None

    async def _again(self) -> Deployment | None:
        """Every deployment of the chain was tried once: the same group's usable ones again,
        after an exponential backoff with jitter (or the upstream's Retry-After)."""
        if not self.tried:
            return None
        usable = candidates(self.group, self.board)
        if not usable:
            return None
        choice = usable[0]
        failures = self.failures.get(choice.deployment_id, 0)
        wait = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)
        wait = max(wait, self.retry_at.get(choice.deployment_id, 0.0) - time.monotonic())
        if wait > RETRY_AFTER_CAP or time.monotonic() + wait >= self.deadline:
            return None
        await asyncio.sleep(wait)
        return choice

    def skipped(self, deployment: Deployment, error: GatewayError) -> None:
        """A fallback that cannot take this request (another format without its feature):
        logged, never called, and not the error the client gets if nothing answers."""
        self.tried.add(deployment.deployment_id)
        self.attempts.append(Attempt(deployment, f"skipped {error.code or error.type}", 0))

    def served(self, deployment: Deployment, ms: int) -> None:
        self.tries += 1
        self.attempts.append(Attempt(deployment, "ok", ms))

    def failed(self, deployment: Deployment, error: GatewayError, ms: int) -> None:
        self.tries += 1
        self.tried.add(deployment.deployment_id)
        self.failures[deployment.deployment_id] = self.failures.get(deployment.deployment_id, 0) + 1
        self.attempts.append(Attempt(deployment, f"{error.status} {error.code or error.type}", ms))
        self.last_error = error
        retry_after = error.headers.get("retry-after", "")
        if retry_after.isdigit():
            self.retry_at[deployment.deployment_id] = time.monotonic() + int(retry_after)

    def unavailable(self) -> GatewayError:
        """Nothing could be tried: the last upstream error, or a 503 naming the group."""
        if self.last_error is not None:
            return self.last_error
        return GatewayError(
            503, f"No deployment of model '{self.group.name}' can take the request right now: each has its circuit open "
            "(it is failing) or is at its rate or concurrency limit. The request was not sent; try again shortly.",
            type="api_error", code="deployments_unavailable",
            headers={"retry-after": "5"})

    def log(self) -> str:
        """The attempts, as the usage record keeps them: "1 group/name 503 upstream_error; 2 group/name ok"."""
        return "; ".join(f"{n} {a.deployment.public_name}/{a.deployment.name} {a.outcome}"
                         for n, a in enumerate(self.attempts, 1))


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


async def attempt_whole(session: upstream.Pool, exchange: Exchange, deployment: Deployment, *, keep: bool) -> Whole:
    """One whole-answer attempt, within the deployment's total timeout."""
    total = deployment.timeouts.total
    if total is None:
        return await exchange.whole(session, deployment, keep=keep)
    try:
        async with asyncio.timeout(total):
            return await exchange.whole(session, deployment, keep=keep)
    except TimeoutError:
        raise upstream_timeout(deployment.provider_name) from None


async def attempt_stream(session: upstream.Pool, exchange: Exchange, deployment: Deployment,
                         *, keep: bool) -> tuple[Relay, bytes | None, AsyncIterator[bytes]]:
    """Open a stream and wait for its first event (within the first-byte timeout): until
    then nothing has reached the client and a failure can still go to another deployment."""
    timeouts = deployment.timeouts
    first_byte = _tighter(timeouts.first_byte, timeouts.total)
    relay = await exchange.stream(session, deployment, keep=keep)
    events = relay.events()
    try:
        if first_byte is None:
            first: bytes | None = await anext(events, b"\0")
        else:
            async with asyncio.timeout(first_byte):
                first = await anext(events, b"\0")
        if first == b"\0":
            first = None
    except TimeoutError:
        relay.release()
        raise upstream_timeout(deployment.provider_name) from None
    except (OSError, upstream.ClientError):
        relay.release()
        raise stream_interrupted() from None
    except BaseException:
        relay.release()
        raise
    return relay, first, events


async def stream_rest(first: bytes | None, events: AsyncIterator[bytes], total: float | None,
                      started: float) -> AsyncIterator[bytes]:
    """The stream as the client gets it: the first event, then the rest, cut with an
    in-stream timeout error once the deployment's total time has passed."""
    if first is not None:
        yield first
    if total is None:
        async for event in events:
            yield event
        return
    deadline = started + total
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise GatewayError(504, "The upstream did not finish the answer in time.", type="api_error",
                               code="upstream_timeout")
        try:
            async with asyncio.timeout(remaining):
                item = await anext(events, b"\0")  # the sentinel: the stream ended
        except TimeoutError:
            raise GatewayError(504, "The upstream did not finish the answer in time.", type="api_error",
                               code="upstream_timeout") from None
        if item == b"\0":
            return
        yield item


def deployment_label(deployment: Deployment) -> str:
    """How answers and usage name a deployment: "<group>/<deployment>"."""
    return f"{deployment.public_name}/{deployment.name or deployment.provider_name}"


ExchangeFor = Callable[[Deployment], Exchange]
P = TypeVar("P")
T = TypeVar("T")


async def attempts_run(ctx: RequestContext, route: Route, prepare: Callable[[Deployment], P],
                       call: Callable[[Deployment, P], Awaitable[T]],
                       timeouts: Timeouts | None) -> tuple[Deployment, P, T, Headers, float]:
    """Try deployments (see the module's docstring) until `call` succeeds on one. `prepare`
    readies the request for a deployment without calling it (a 400 there, on a fallback in
    another format, skips that fallback). Returns the deployment, what `prepare` and `call`
    returned, the headers naming it and when its attempt started. The caller reports the
    successful attempt's end to the health board."""
    board, event = ctx.state.board, ctx.event
    while True:
        deployment = await route.next()
        if deployment is None:
            raise route.unavailable()
        deployment = timeouts_apply(deployment, timeouts)
        try:
            prepared = prepare(deployment)
        except GatewayError as error:
            if not route.attempts or error.status != 400:
                raise
            route.skipped(deployment, error)
            continue
        started = time.perf_counter()
        board.begin(deployment)
        try:
            result = await call(deployment, prepared)
        except GatewayError as error:
            worthy = failover_worthy(error)
            board.end(deployment, "fail" if worthy else "ok", error=f"{error.status} {error.code or error.type}"[:200])
            route.failed(deployment, error, _ms(started))
            if worthy:
                continue
            group = route.group
            if error.code in CONTEXT_CODES and route.switch(group.context_fallback):
                continue
            if error.code in CONTENT_POLICY_CODES and route.switch(group.content_policy_fallback):
                continue
            raise
        except BaseException:
            board.end(deployment, "cancel")  # cancelled (the client left) or a bug: no verdict on the upstream
            raise
        route.served(deployment, _ms(started))
        event.model, event.provider = deployment.public_name, deployment.provider_name
        event.deployment, event.attempts, event.attempt_log = deployment_label(deployment), route.tries, route.log()
        served = [(b"x-aiproxy-deployment", event.deployment.encode()), (b"x-aiproxy-attempts", b"%d" % event.attempts)]
        return deployment, prepared, result, served, started


async def forward(ctx: RequestContext, route: Route, exchange_for: ExchangeFor, timeouts: Timeouts | None) -> None:
    """Steps 5-6: try deployments until one answers, then send its answer (whole, or
    streamed) and settle the request's usage at the answering deployment's prices."""
    board, event, session = ctx.state.board, ctx.event, ctx.state.session
    if not event.stream:
        async def whole(deployment: Deployment, exchange: Exchange) -> Whole:
            return await attempt_whole(session, exchange, deployment, keep=_storable(ctx))

        deployment, exchange, answer, served, started = await attempts_run(ctx, route, exchange_for, whole, timeouts)
        ttfb = _ms(started)
        try:
            estimate(ctx, deployment, exchange, answer.usage, answer.text, disconnected=False)
        finally:
            board.end(deployment, "ok", ttfb_ms=ttfb, total_ms=ttfb, tokens=event.input_tokens + event.output_tokens)
        cache_stage(ctx.state.semantic, ctx.cache, answer.completion, event.cost)
        await ctx.answer(answer.body, ctx.extra + answer.headers + served)
        return

    async def opened(deployment: Deployment, exchange: Exchange) -> tuple[Relay, bytes | None, AsyncIterator[bytes]]:
        return await attempt_stream(session, exchange, deployment, keep=stream_storable(ctx))

    deployment, exchange, (relay, first, events), served, started = await attempts_run(
        ctx, route, exchange_for, opened, timeouts)
    ttfb = _ms(started)
    try:
        outcome = await sse_relay(ctx.send, ctx.receive, stream_rest(first, events, deployment.timeouts.total, started),
                                  extra_headers=ctx.extra + relay.headers + served, error_event=relay.error)
    except BaseException:
        board.end(deployment, "cancel")
        raise
    finally:
        relay.release()
    event.client_disconnected = outcome.client_disconnected
    if outcome.upstream_failed:
        event.error_type = "upstream_stream_error"
    cut = event.client_disconnected or outcome.upstream_failed
    estimate(ctx, deployment, exchange, relay.usage, relay.text() if (relay.usage is None or cut) else "",
             disconnected=cut)
    board.end(deployment, "fail" if outcome.upstream_failed else "ok", ttfb_ms=ttfb, total_ms=_ms(started),
              tokens=event.input_tokens + event.output_tokens,
              error="upstream_stream_error" if outcome.upstream_failed else "")
    if stream_storable(ctx):
        cache_stage(ctx.state.semantic, ctx.cache, relay.completion(), event.cost)


def _storable(ctx: RequestContext) -> bool:
    plan = ctx.cache
    return plan is not None and plan.store


def stream_storable(ctx: RequestContext) -> bool:
    """Whether a stream's answer may go into the cache: the plan stores, and (once it ran)
    the client stayed to the end and the upstream did not fail mid-way."""
    plan, event = ctx.cache, ctx.event
    return (plan is not None and plan.key is not None and plan.store and bool(plan.ttl)
            and not event.client_disconnected and not event.error_type)


def estimate(ctx: RequestContext, deployment: Deployment, exchange: Exchange, usage: Usage | None, text: str,
             *, disconnected: bool) -> None:
    """Settle with the upstream's usage; count with tiktoken when it reported none, or
    when the client left before the upstream's final count (tokens streamed are billed)."""
    output = count_text_tokens(text) if (usage is None or disconnected) else 0
    if usage is None:
        ctx.event.usage_estimated = True
        usage = Usage(count_message_tokens(exchange.messages, tools=exchange.tools), output)
    elif disconnected and output > usage.output_tokens:
        ctx.event.usage_estimated = True
        usage = Usage(usage.input_tokens, output)
    ctx.settle(deployment, usage.input_tokens, usage.output_tokens)
