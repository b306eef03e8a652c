"""The gateway: a small ASGI app mounted in front of Django for /v1/*.

Read it top to bottom: inbound parse -> auth -> route -> limits (one Redis round trip that
also reads the exact cache) -> semantic cache -> provider adapter -> stream -> record. No
Django ORM call and no blocking call once warm: keys and the catalog come from the hot
directory.

Two paths through the adapters:
- native: the client speaks the upstream's own wire format (OpenAI client -> OpenAI-
  compatible upstream, Anthropic client -> Anthropic upstream). The request goes up
  with only the model name changed and the answer's bytes come back untouched; usage
  is read from them on the way.
- translated: the inbound API's request becomes the internal OpenAI-shaped request,
  the adapter speaks the upstream's format, and the inbound module encodes the answer
  (and each stream chunk) back into the client's format.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from .adapters import adapter_for
from .adapters import openai as openai_upstream
from .adapters.interface import Usage, body_read, sse_events, sse_parse, upstream_invalid, usage_dict
from .auth import key_authenticate
from .bounds import chat_bounds_check, embeddings_bounds_check
from .directory import Deployment, Directory, KeyRecord, ModelGroup
from .errors import GatewayError, invalid_request, not_found
from .inbound import anthropic as anthropic_inbound
from .inbound import inbound_for
from .inbound import openai as openai_inbound
from .limits import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    Reservation,
    limits_reserve,
    needs_cost_estimate,
    request_budget_scopes,
    settle_args,
)
from .record import FinishReply, UsageRecord, usage_cost, usage_event_begin, usage_replies_wait
from .rediswire import WireRedis
from .response_cache import (
    CachePlan,
    CacheWrite,
    cache_lookup,
    cache_plan,
    cache_stage,
    completion_assemble,
    replay_chunks,
)
from .route import models_visible, route_group, route_select
from .semantic import SemanticCache
from .stream import SSE_HEADERS, Receive, Send, sse_relay
from .token_count import count_message_tokens, count_text_tokens
from .upstream import Pool
from .upstream import Response as UpstreamResponse

logger = logging.getLogger("aiproxy.gateway")

JSON_HEADERS = [(b"content-type", b"application/json")]
FORWARDED_ANTHROPIC_HEADERS = (b"anthropic-version", b"anthropic-beta")


class GatewayState:
    """Per-process (per event loop) clients: Redis, the upstream HTTP pool, the directory."""

    def __init__(self) -> None:
        # bounded waits: an unavailable Redis fails a request fast instead of hanging it
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL, max_connections=256, socket_timeout=2,
                                             socket_connect_timeout=2)
        # the two round trips of every request (limits, then record) go over this one
        self.wire = WireRedis(settings.REDIS_URL, timeout=2, connect_timeout=2)
        self.directory = Directory(self.redis)
        # one pool serves every workspace (it keeps no cookies); gateway/hotpath/upstream.py says why not aiohttp
        self.session = Pool(connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT,
                            read_timeout=settings.GATEWAY_UPSTREAM_TIMEOUT)
        self.semantic = SemanticCache()
        # behind a trusted proxy the workspace host is X-Forwarded-Host (as the web side's get_host reads it)
        self.trusted_proxy = bool(settings.TRUSTED_PROXY)


_states: dict[int, GatewayState] = {}


def _state() -> GatewayState:
    loop_id = id(asyncio.get_running_loop())
    state = _states.get(loop_id)
    if state is None:
        state = _states[loop_id] = GatewayState()
    return state


async def gateway_shutdown() -> None:
    """Close this event loop's upstream pool and Redis client (server shutdown, tests)."""
    state = _states.pop(id(asyncio.get_running_loop()), None)
    if state is not None:
        await usage_replies_wait()
        await state.semantic.close()
        await state.session.close()
        await state.wire.aclose()
        await state.redis.aclose()


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS + length + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: dict[str, Any], receive: Receive) -> bytes:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    for name, value in scope["headers"]:
        # a length past 18 digits is over any limit (and int() refuses one past 4300 digits)
        if name == b"content-length" and value.isdigit() and (len(value) > 18 or int(value) > limit):
            raise GatewayError(413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"The request body is larger than the limit of {limit} bytes.", code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _gemini_target(path: str) -> tuple[str, str] | None:
    """(model, method) of a Gemini URL: /v1beta/models/{model}:{method} (or /v1/...)."""
    for prefix in ("/v1beta/models/", "/v1/models/"):
        if path.startswith(prefix) and ":" in path:
            model, _, method = path[len(prefix):].rpartition(":")
            return model, method
    return None


POST_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v2/chat", "/v1/messages/count_tokens", "/v1/embeddings",
                        "/v2/embed"})
GEMINI_METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"})


def _methods_allowed(path: str, gemini: tuple[str, str] | None) -> str | None:
    """The HTTP method a known gateway URL answers to (None for an unknown URL: a Gemini
    `:method` the gateway does not serve is unknown for every HTTP method)."""
    if gemini is not None:
        return "POST" if gemini[1] in GEMINI_METHODS else None
    if path in POST_PATHS:
        return "POST"
    if path in ("/v1/models", "/v1beta/models") or path.startswith(("/v1/models/", "/v1beta/models/")):
        return "GET"
    return None


def method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(405, f"Method {method} is not allowed on {path}; use {allowed}.", code="method_not_allowed",
                        headers={"allow": allowed})


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    state = _state()
    headers = dict(scope["headers"])
    path = scope["path"].rstrip("/")
    method = scope["method"]
    gemini = _gemini_target(path)
    if gemini is not None or path.startswith("/v1beta/"):
        inbound = inbound_for("gemini")
    elif path.startswith("/v2/"):
        inbound = inbound_for("cohere")
    elif path.startswith("/v1/messages") or (path.startswith("/v1/models") and b"anthropic-version" in headers):
        inbound = anthropic_inbound
    else:
        inbound = openai_inbound
    started = False
    raw_send = send

    async def tracked_send(message: dict[str, Any]) -> None:
        nonlocal started
        started = True
        await raw_send(message)

    send = tracked_send
    try:
        allowed = _methods_allowed(path, gemini)
        if allowed is not None and method != allowed:  # a known URL: the method is wrong, whoever asks
            raise method_not_allowed(method, scope["path"], allowed)
        key = await key_authenticate(state.directory, headers, trusted_proxy=state.trusted_proxy)
        if method == "POST" and path in ("/v1/chat/completions", "/v1/messages", "/v2/chat"):
            await chat(state, inbound, scope, receive, send, key)
        elif method == "POST" and gemini is not None and gemini[1] in ("generateContent", "streamGenerateContent"):
            await chat(state, inbound, scope, receive, send, key, model=gemini[0], stream=gemini[1] == "streamGenerateContent")
        elif method == "POST" and path == "/v1/messages/count_tokens":
            await count_tokens(state, inbound, scope, receive, send, key)
        elif method == "POST" and gemini is not None and gemini[1] == "countTokens":
            await count_tokens(state, inbound, scope, receive, send, key, model=gemini[0])
        elif method == "POST" and path in ("/v1/embeddings", "/v2/embed"):
            await embeddings(state, inbound, scope, receive, send, key)
        elif method == "POST" and gemini is not None and gemini[1] in ("embedContent", "batchEmbedContents"):
            await embeddings(state, inbound, scope, receive, send, key, model=gemini[0])
        elif method == "GET" and path in ("/v1/models", "/v1beta/models"):
            await models_list(state, inbound, send, key)
        elif method == "GET" and (path.startswith("/v1/models/") or path.startswith("/v1beta/models/")):
            await model_retrieve(state, inbound, send, key, path.split("/models/", 1)[1])
        else:
            raise not_found(f"Unknown request URL: {method} {scope['path']}.", code="unknown_url")
    except GatewayError as error:
        status, body = inbound.error_response(error)
        await _respond(send, status, body, [(k.encode(), v.encode()) for k, v in error.headers.items()])
    except Exception:
        # a bug, not the client's fault: log it (never the request body) and answer in the
        # client's error format rather than the server's HTML page, if nothing was sent yet
        logger.exception("gateway error on %s %s", method, path)
        if not started:
            failure = GatewayError(500, "The gateway failed to handle this request.", type="api_error", code="internal_error")
            status, body = inbound.error_response(failure)
            await _respond(send, status, body)


# --- models ----------------------------------------------------------------------------------

def _model_object(g: ModelGroup, inbound: ModuleType) -> dict[str, Any]:
    d = g.deployments[0]
    if hasattr(inbound, "model_object"):
        return inbound.model_object(d)  # type: ignore[no-any-return]
    if inbound is anthropic_inbound:
        created = datetime.fromtimestamp(d.created, UTC).isoformat().replace("+00:00", "Z")
        return {"type": "model", "id": d.public_name, "display_name": d.public_name, "created_at": created}
    return {"id": d.public_name, "object": "model", "created": d.created, "owned_by": d.provider_name}


async def models_list(state: GatewayState, inbound: ModuleType, send: Send, key: KeyRecord) -> None:
    catalog = await state.directory.catalog()
    data = [_model_object(d, inbound) for d in models_visible(catalog, key)]
    if hasattr(inbound, "models_page"):
        await _respond(send, 200, inbound.models_page(data))
    elif inbound is anthropic_inbound:
        page = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
        await _respond(send, 200, orjson.dumps(page))
    else:
        await _respond(send, 200, orjson.dumps({"object": "list", "data": data}))


async def model_retrieve(state: GatewayState, inbound: ModuleType, send: Send, key: KeyRecord, model: str) -> None:
    group = route_group(await state.directory.catalog(), model, key)
    await _respond(send, 200, orjson.dumps(_model_object(group, inbound)))


# --- chat ------------------------------------------------------------------------------------

@dataclass(slots=True)
class StreamTally:
    """What a stream carried, for usage when the upstream reports none (or the client left)."""

    usage: Usage | None = None
    text: list[str] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)


async def _context_check(deployment: Deployment, raw_size: int, messages: list[dict[str, Any]], tools: Any) -> None:
    """A prompt longer than the model's context window is refused before any upstream call.
    Tokens never outnumber bytes, so only bodies larger than the window are counted (in a
    thread: tiktoken releases the GIL, and counting stops once past the window)."""
    window = deployment.context_window
    if not window or raw_size <= window:
        return
    tokens = await asyncio.to_thread(count_message_tokens, messages, tools=tools, limit=window)
    if tokens > window:
        raise invalid_request(
            f"This model's maximum context length is {window} tokens, but the messages are longer "
            f"(more than {window} tokens). Shorten the messages.",
            param="messages", code="context_length_exceeded",
        )


def _ignored_header(adapter: ModuleType, payload: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Names of request parameters the upstream has no use for (best-effort hints such as
    `seed`), so leaving them out is never silent."""
    ignored = payload.pop("_ignored", None) or []
    ignored += [name for name in getattr(adapter, "IGNORED_PARAMS", ()) if payload.get(name) is not None]
    return [(b"x-aiproxy-ignored-params", ",".join(ignored).encode())] if ignored else []


async def chat(state: GatewayState, inbound: ModuleType, scope: dict[str, Any], receive: Receive, send: Send, key: KeyRecord,
               *, model: str | None = None, stream: bool | None = None) -> None:
    started = time.perf_counter()
    event = UsageRecord(schema=key.schema, key_id=key.key_id, key_name=key.key_name, endpoint=inbound.CHAT_ENDPOINT)
    recorder = Recorder(state, event, started, key)
    headers = dict(scope["headers"])
    try:
        raw = await _read_body(scope, receive)
        request = inbound.chat_request_parse(raw, model=model, stream=stream)
        event.model, event.stream = request.model, request.stream
        deployment = route_select(await state.directory.catalog(), request.model, key)
        event.provider = deployment.provider_name
        chat_bounds_check(inbound.WIRE, request.native, deployment)
        adapter = adapter_for(deployment.provider_kind)
        payload: dict[str, Any] | None
        if inbound.WIRE == adapter.WIRE == "anthropic":
            native = request.native
            messages, tools, max_output = anthropic_inbound.messages_for_count(native), native.get("tools"), native.get("max_tokens")
            payload = _cache_key_payload(inbound, request, key, headers)
        else:
            payload = inbound.to_internal(request)
            messages, tools = payload["messages"], payload.get("tools")
            max_output = payload.get("max_completion_tokens") or payload.get("max_tokens")
        await _context_check(deployment, len(raw), messages, tools)
        plan = recorder.cache = cache_plan(key, payload, headers) if payload is not None else None
        # the exact-cache entry is read in the limits' round trip
        reading = plan is not None and plan.key is not None and plan.lookup
        recorder.reservation = await _limits_reserve(state, key, deployment, messages, tools, max_output,
                                                     plan.key if reading and plan is not None else None)
        extra = recorder.reservation.headers if recorder.reservation else []
        if plan is None:
            extra = extra + [(b"x-aiproxy-cache", b"bypass")]
        else:
            assert payload is not None
            exact = recorder.reservation.cached if recorder.reservation is not None else None
            cached = await cache_lookup(state.redis, state.semantic, plan, exact)
            if cached is not None:
                await _cache_hit(inbound, send, payload, cached, recorder, extra, deployment)
                return
            extra = extra + [(b"x-aiproxy-cache", plan.status.encode())]
        if inbound.WIRE == adapter.WIRE == "anthropic":
            await _anthropic_native(state, scope, receive, send, native, messages, deployment, recorder, extra)
        elif inbound.WIRE == adapter.WIRE == "openai":
            assert payload is not None
            await _openai_native(state, receive, send, payload, deployment, recorder, extra)
        else:
            assert payload is not None
            await _translated(state, inbound, adapter, receive, send, payload, deployment, recorder, extra)
    except GatewayError as error:
        event.status_code = error.status
        event.error_type = error.code or error.type
        if event.model:
            await recorder()
        raise
    await recorder()


class Recorder:
    """Settles and records a request once. Whole answers are recorded (the command written
    to Redis) before they are sent, so a client that got its answer is always billed, even
    if the process dies right after."""

    def __init__(self, state: GatewayState, event: UsageRecord, started: float, key: KeyRecord) -> None:
        self.state, self.event, self.started, self.key = state, event, started, key
        self.reservation: Reservation | None = None
        self.cache: CachePlan | None = None
        self.done = False

    async def _start(self) -> FinishReply | None:
        if self.done:
            return None
        self.done = True
        write = self.cache.write if self.cache is not None else None
        return await _record(self.state, self.event, self.started, self.key, self.reservation, write)

    async def __call__(self) -> None:
        """Record (an error, or a stream that has ended): the command is on its way to Redis
        when this returns; its reply is handled when it comes, without this request."""
        reply = await self._start()
        if reply is not None:
            reply.detach()

    async def answer(self, send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        """Record, then send a whole 200 answer: the usage is written to Redis before the
        answer leaves, and Redis's reply is not waited for (one round trip off the latency,
        and no wake-up of the request for it)."""
        reply = await self._start()
        try:
            await _respond(send, 200, body, headers)
        finally:
            if reply is not None:
                reply.detach()


def _cache_key_payload(inbound: ModuleType, request: Any, key: KeyRecord,
                       headers: dict[bytes, bytes]) -> dict[str, Any] | None:
    """On the native Anthropic path the request goes up untouched; its internal form is
    only the cache's key. None when the key has no cache or the request has no internal
    form (a parameter only Anthropic understands): then it is not cached."""
    if not (key.policy or {}).get("cache"):
        return None
    try:
        payload: dict[str, Any] = inbound.to_internal(request)
    except GatewayError:
        return None
    # forwarded untouched, these headers can change the answer: part of the key
    forwarded = {name.decode(): headers[name].decode("latin-1") for name in FORWARDED_ANTHROPIC_HEADERS if name in headers}
    if forwarded:
        payload["_anthropic_headers"] = forwarded
    return payload


async def _cache_hit(inbound: ModuleType, send: Send, payload: dict[str, Any], cached: dict[str, Any],
                     recorder: Recorder, extra: list[tuple[bytes, bytes]], deployment: Deployment) -> None:
    """Answer from the cache, in the client's format (a stream if it asked for one). The
    usage event records the cost the hit avoided at the model's current prices."""
    event, plan = recorder.event, recorder.cache
    assert plan is not None
    event.cache_status = plan.status
    usage = cached.get("usage") or {}
    event.cost_saved = usage_cost(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                                  deployment.input_price_per_mtok, deployment.output_price_per_mtok)
    model = payload["model"]
    headers = extra + [(b"x-aiproxy-cache", plan.status.encode())]
    if plan.similarity is not None:
        event.cache_similarity = round(plan.similarity, 4)
        headers.append((b"x-aiproxy-cache-similarity", f"{plan.similarity:.4f}".encode()))
    if not event.stream:  # nothing spent: the reservation settles at zero
        await recorder.answer(send, inbound.completion_encode(cached, model), headers)
        return
    await recorder()
    wants_usage = inbound.WIRE != "openai" or bool((payload.get("stream_options") or {}).get("include_usage"))
    encoder = inbound.StreamEncoder(model, include_usage=wants_usage)
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    body = b"".join(encoder.encode(chunk) for chunk in replay_chunks(cached)) + encoder.finish()
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _limits_reserve(state: GatewayState, key: KeyRecord, deployment: Deployment, messages: list[dict[str, Any]],
                          tools: Any, max_output: int | None, cache_key: str | None = None) -> Reservation | None:
    """Step 2: one Redis round trip for every rate limit, the plan quota and the budgets,
    which also reads the exact-cache entry `cache_key` (step 3). The prompt is counted only
    when a tokens limit or a budget needs it. None when Redis is down (and no hard budget
    forbids serving): no limits, and a cache miss."""
    prompt_tokens, output_tokens = 0, 0
    if needs_cost_estimate(key, deployment, state.directory.global_limits):
        prompt_tokens = count_message_tokens(messages, tools=tools)
        output_tokens = max_output if max_output is not None else min(
            DEFAULT_MAX_OUTPUT_TOKENS, max(1, (deployment.context_window or DEFAULT_MAX_OUTPUT_TOKENS) - prompt_tokens))
    try:
        return await limits_reserve(state.wire, key, deployment, state.directory.global_limits,
                                    prompt_tokens=prompt_tokens, max_output_tokens=output_tokens, cache_key=cache_key)
    except RedisError:
        workspace = (key.policy or {}).get("workspace") or {}
        hard = any(budget.get("hard") for _, _, budget in request_budget_scopes(key))
        if hard and not workspace.get("fail_open"):
            raise GatewayError(
                503, "Spend limits cannot be checked right now, and this key has a hard budget, so the request is "
                "refused rather than risk overspending. Try again shortly.", type="api_error", code="limits_unavailable",
            ) from None
        logger.warning("limits store unavailable; serving workspace %s without limits", key.workspace_id)
        return None


def _estimate(event: UsageRecord, deployment: Deployment, messages: list[dict[str, Any]], tools: Any,
              usage: Usage | None, text: str, *, disconnected: bool) -> None:
    """Settle with the upstream's usage; count with tiktoken when it reported none, or
    when the client left before the upstream's final count (tokens streamed are billed)."""
    output = count_text_tokens(text) if (usage is None or disconnected) else 0
    if usage is None:
        event.usage_estimated = True
        usage = Usage(count_message_tokens(messages, tools=tools), output)
    elif disconnected and output > usage.output_tokens:
        event.usage_estimated = True
        usage = Usage(usage.input_tokens, output)
    _settle(event, deployment, usage.input_tokens, usage.output_tokens)


async def _openai_native(state: GatewayState, receive: Receive, send: Send, payload: dict[str, Any],
                         deployment: Deployment, recorder: Recorder, extra: list[tuple[bytes, bytes]]) -> None:
    event = recorder.event
    upstream = await openai_upstream.chat_send(state.session, deployment, payload, stream=event.stream)
    if not event.stream:
        body, data, usage = await openai_upstream.chat_read_raw(upstream, deployment)
        _estimate(event, deployment, payload["messages"], payload.get("tools"), usage,
                  _completion_text(data) if usage is None else "", disconnected=False)
        cache_stage(state.semantic, recorder.cache, data, event.cost)
        await recorder.answer(send, body, extra)
        return
    wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    tally = StreamTally()

    async def events() -> AsyncIterator[bytes]:
        async for item in openai_upstream.chat_events(upstream):
            usage = openai_upstream.event_usage(item)
            if usage is not None:
                tally.usage = usage
                if not wants_usage and openai_upstream.event_is_usage_only(item):
                    continue
            tally.raw.append(item)
            yield item

    await _relay(receive, send, events(), upstream, openai_inbound.StreamEncoder(payload["model"], include_usage=wants_usage),
                 extra, event)
    text = _openai_events_text(tally.raw) if (tally.usage is None or event.client_disconnected) else ""
    _estimate(event, deployment, payload["messages"], payload.get("tools"), tally.usage, text,
              disconnected=event.client_disconnected)
    if _stream_storable(recorder):
        completion = _with_usage(completion_assemble(_openai_chunks(tally.raw)), tally.usage)
        cache_stage(state.semantic, recorder.cache, completion, event.cost)


async def _anthropic_native(state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send,
                            native: dict[str, Any], messages: list[dict[str, Any]], deployment: Deployment,
                            recorder: Recorder, extra: list[tuple[bytes, bytes]]) -> None:
    event = recorder.event
    adapter = adapter_for(deployment.provider_kind)
    forwarded = {name.decode(): value.decode("latin-1") for name, value in scope["headers"] if name in FORWARDED_ANTHROPIC_HEADERS}
    upstream = await adapter.messages_send(state.session, deployment, native, stream=event.stream, headers=forwarded)
    if not event.stream:
        data = await body_read(upstream, deployment)
        usage = adapter.message_usage(data) if isinstance(data, dict) else None
        text = "" if usage is not None else "".join(b.get("text", "") for b in data.get("content") or [] if isinstance(b, dict))
        _estimate(event, deployment, messages, native.get("tools"), usage, text, disconnected=False)
        if recorder.cache is not None and recorder.cache.store and isinstance(data, dict):
            completion = adapter.completion_from_message(data, native["model"], as_json=False)
            cache_stage(state.semantic, recorder.cache, completion, event.cost)
        await recorder.answer(send, orjson.dumps(data), extra)
        return
    tally = StreamTally()
    keep_all = _stream_storable(recorder)  # a cached stream needs every event, not only the text

    async def events() -> AsyncIterator[bytes]:
        async for item in sse_events(upstream):
            tally.usage = adapter.event_usage(item, tally.usage)
            if keep_all or b"text_delta" in item or b"input_json_delta" in item:
                tally.raw.append(item)
            yield item

    await _relay(receive, send, events(), upstream, anthropic_inbound.StreamEncoder(native["model"]), extra, event)
    finished = tally.usage is not None and not event.client_disconnected and not event.error_type
    text = "" if finished else _anthropic_events_text(tally.raw)
    _estimate(event, deployment, messages, native.get("tools"), tally.usage, text,
              disconnected=event.client_disconnected or bool(event.error_type))
    if keep_all and _stream_storable(recorder):
        message = adapter.message_from_events(tally.raw)
        if message is not None:
            completion = adapter.completion_from_message(message, native["model"], as_json=False)
            cache_stage(state.semantic, recorder.cache, completion, event.cost)


async def _translated(state: GatewayState, inbound: ModuleType, adapter: ModuleType, receive: Receive, send: Send,
                      payload: dict[str, Any], deployment: Deployment, recorder: Recorder,
                      extra: list[tuple[bytes, bytes]]) -> None:
    event = recorder.event
    extra = extra + _ignored_header(adapter, payload)
    upstream = await adapter.chat_send(state.session, deployment, payload, stream=event.stream)
    model = payload["model"]
    if not event.stream:
        body, usage = await adapter.chat_read(upstream, deployment, payload)
        _estimate(event, deployment, payload["messages"], payload.get("tools"), usage,
                  _completion_text(body) if usage is None else "", disconnected=False)
        if usage is not None and "usage" not in body:
            body["usage"] = {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                             "total_tokens": usage.input_tokens + usage.output_tokens}
        cache_stage(state.semantic, recorder.cache, body, event.cost)
        out = inbound.completion_encode(body, model)
        await recorder.answer(send, out, extra)
        return
    wants_usage = inbound.WIRE != "openai" or bool((payload.get("stream_options") or {}).get("include_usage"))
    encoder = inbound.StreamEncoder(model, include_usage=wants_usage)
    tally = StreamTally()
    chunks: list[dict[str, Any]] | None = [] if _stream_storable(recorder) else None

    async def events() -> AsyncIterator[bytes]:
        async for chunk in adapter.chat_chunks(upstream, deployment, payload):
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                tally.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            tally.text.append(_generated_text(chunk, "delta"))
            if chunks is not None:
                chunks.append(chunk)
            yield encoder.encode(chunk)
        yield encoder.finish()

    await _relay(receive, send, events(), upstream, encoder, extra, event)
    _estimate(event, deployment, payload["messages"], payload.get("tools"), tally.usage, "".join(tally.text),
              disconnected=event.client_disconnected or bool(event.error_type))
    if chunks is not None and _stream_storable(recorder):
        completion = _with_usage(completion_assemble(chunks), tally.usage)
        cache_stage(state.semantic, recorder.cache, completion, event.cost)


async def _relay(receive: Receive, send: Send, events: AsyncIterator[bytes], upstream: UpstreamResponse,
                 encoder: Any, extra: list[tuple[bytes, bytes]], event: UsageRecord) -> None:
    try:
        outcome = await sse_relay(send, receive, events, extra_headers=extra, error_event=encoder.error)
    finally:
        upstream.release()
    event.client_disconnected = outcome.client_disconnected
    if outcome.upstream_failed:
        event.error_type = "upstream_stream_error"


def _stream_storable(recorder: Recorder) -> bool:
    """Whether a stream's answer may go into the cache: the plan stores, and (once it ran)
    the client stayed to the end and the upstream did not fail mid-way."""
    plan, event = recorder.cache, recorder.event
    return (plan is not None and plan.key is not None and plan.store and bool(plan.ttl)
            and not event.client_disconnected and not event.error_type)


def _with_usage(completion: dict[str, Any] | None, usage: Usage | None) -> dict[str, Any] | None:
    """A cached answer keeps its token counts, for the savings its hits record."""
    if completion is not None and "usage" not in completion and usage is not None:
        completion["usage"] = usage_dict(usage)
    return completion


def _openai_chunks(events: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for item in events:
        _, data = sse_parse(item)
        if data and data != b"[DONE]":
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                return []
            if isinstance(chunk, dict):
                out.append(chunk)
    return out


def _generated_text(body: Any, field: str) -> str:
    """The text a completion (field "message") or a chunk (field "delta") carries: content
    and tool-call arguments, what output tokens are counted from."""
    parts = []
    for choice in (body.get("choices") if isinstance(body, dict) else None) or []:
        message = choice.get(field) or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or []:
            parts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(parts)


def _completion_text(body: Any) -> str:
    return _generated_text(body, "message")


def _openai_events_text(events: list[bytes]) -> str:
    parts = []
    for item in events:
        _, data = sse_parse(item)
        if not data or data == b"[DONE]":
            continue
        try:
            parts.append(_generated_text(orjson.loads(data), "delta"))
        except orjson.JSONDecodeError:
            continue
    return "".join(parts)


def _anthropic_events_text(events: list[bytes]) -> str:
    parts = []
    for item in events:
        _, data = sse_parse(item)
        try:
            delta = orjson.loads(data).get("delta") or {}
        except (orjson.JSONDecodeError, AttributeError):
            continue
        parts.append(delta.get("text") or delta.get("partial_json") or "")
    return "".join(parts)


# --- count_tokens, embeddings -------------------------------------------------------------------

async def count_tokens(state: GatewayState, inbound: ModuleType, scope: dict[str, Any], receive: Receive, send: Send,
                       key: KeyRecord, *, model: str | None = None) -> None:
    """Token counting (Anthropic's count_tokens, Gemini's countTokens): the upstream's own
    count when client and upstream are both Anthropic, else an estimate with tiktoken,
    marked with x-aiproxy-tokens-estimated."""
    raw = await _read_body(scope, receive)
    request = inbound.count_tokens_parse(raw, model=model)
    deployment = route_select(await state.directory.catalog(), request.model, key)
    adapter = adapter_for(deployment.provider_kind)
    if inbound.WIRE == adapter.WIRE == "anthropic":
        forwarded = {n.decode(): v.decode("latin-1") for n, v in scope["headers"] if n in FORWARDED_ANTHROPIC_HEADERS}
        upstream = await adapter.messages_send(state.session, deployment, request.native, stream=False, headers=forwarded,
                                               operation="messages/count_tokens")
        await _respond(send, 200, orjson.dumps(await body_read(upstream, deployment)))
        return
    payload = inbound.to_internal(request)
    tokens = await asyncio.to_thread(count_message_tokens, payload["messages"], tools=payload.get("tools"))
    await _respond(send, 200, inbound.count_tokens_encode(tokens), [(b"x-aiproxy-tokens-estimated", b"true")])


def _token_array(value: Any) -> bool:
    """A list of integers (JSON true/false are not tokens)."""
    return isinstance(value, list) and all(type(t) is int for t in value)


def _embeddings_validate(payload: dict[str, Any]) -> list[str] | None:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    value = payload.get("input")
    if value is None:
        raise invalid_request("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    if isinstance(value, str):
        texts: list[str] | None = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        texts = value
    elif isinstance(value, list) and value and (_token_array(value) or all(_token_array(v) and v for v in value)):
        texts = None  # one token array, or a list of them (never a mix): only OpenAI-format upstreams take them
    else:
        raise invalid_request("Invalid value for 'input': expected a non-empty string, array of strings, token array "
                              "(array of integers) or array of token arrays.", param="input")
    if texts is not None and any(not t for t in texts):
        raise invalid_request("Invalid value for 'input': strings must not be empty.", param="input")
    if payload.get("encoding_format") not in (None, "float", "base64"):
        raise invalid_request("Invalid value for 'encoding_format': expected 'float' or 'base64'.", param="encoding_format")
    dimensions = payload.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise invalid_request("Invalid value for 'dimensions': expected a positive integer.", param="dimensions")
    return texts


def _embeddings_pack(data: dict[str, Any], deployment: Deployment) -> None:
    """Float-list embeddings as base64 little-endian float32, as OpenAI answers encoding_format "base64"."""
    for item in data.get("data") or []:
        values = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(values, list):
            try:
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            except (struct.error, OverflowError) as exc:
                raise upstream_invalid(deployment) from exc


async def embeddings(state: GatewayState, inbound: ModuleType, scope: dict[str, Any], receive: Receive, send: Send,
                     key: KeyRecord, *, model: str | None = None) -> None:
    started = time.perf_counter()
    event = UsageRecord(schema=key.schema, key_id=key.key_id, key_name=key.key_name, endpoint="embeddings")
    recorder = Recorder(state, event, started, key)
    try:
        request = inbound.embeddings_request_parse(await _read_body(scope, receive), model=model)
        payload = inbound.embeddings_to_internal(request)
        ignored = payload.pop("_ignored", None) or []
        texts = _embeddings_validate(payload)
        event.model = payload["model"]
        deployment = route_select(await state.directory.catalog(), payload["model"], key)
        event.provider = deployment.provider_name
        embeddings_bounds_check(inbound.WIRE, request.native, deployment)
        adapter = adapter_for(deployment.provider_kind)
        if texts is None and adapter.WIRE != "openai":
            raise invalid_request(f"Token-array 'input' is not supported by model '{deployment.public_name}'; send strings.",
                                  param="input", code="unsupported_parameter")
        counted = [{"content": text} for text in texts] if texts is not None else [{"content": str(payload["input"])}]
        recorder.reservation = await _limits_reserve(state, key, deployment, counted, None, 0)
        # base64 is the openai SDKs' default: other upstream kinds send floats, and an OpenAI-compatible
        # one (a local server) may ignore encoding_format; any float list is packed here, never passed on
        wants_base64 = payload.get("encoding_format") == "base64"
        if wants_base64 and adapter.WIRE != "openai":
            payload = {**payload, "encoding_format": "float"}
        data, usage = await adapter.embeddings_create(state.session, deployment, payload)
        if wants_base64:
            _embeddings_pack(data, deployment)
        if usage is None:
            event.usage_estimated = True
            usage = Usage(sum(count_text_tokens(t) for t in texts or []), 0)
            data["usage"] = {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}
        _settle(event, deployment, usage.input_tokens, 0)
        headers = (recorder.reservation.headers if recorder.reservation else []) + _ignored_header(
            adapter, {**payload, "_ignored": ignored})
        out = inbound.embeddings_encode(data, request)
        await recorder.answer(send, out, headers)
    except GatewayError as error:
        event.status_code = error.status
        event.error_type = error.code or error.type
        if event.model:
            await recorder()
        raise
    await recorder()


# --- record ----------------------------------------------------------------------------------------

def _settle(event: UsageRecord, deployment: Deployment, input_tokens: int, output_tokens: int) -> None:
    event.input_tokens = input_tokens
    event.output_tokens = output_tokens
    event.cost = usage_cost(input_tokens, output_tokens, deployment.input_price_per_mtok, deployment.output_price_per_mtok)


async def _record(state: GatewayState, event: UsageRecord, started: float, key: KeyRecord,
                  reservation: Reservation | None = None, write: CacheWrite | None = None) -> FinishReply | None:
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
