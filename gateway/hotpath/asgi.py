"""The gateway: a small ASGI app mounted in front of Django for /v1/* (and Gemini's and
Cohere's paths).

Read `chat()` top to bottom: auth, route, cache plan, reserve, lookup, forward (with
attempts), record. No Django ORM call and no blocking call once warm: keys and the
catalog come from the hot directory. The seams are typed: an inbound API
(inbound.InboundApi), an upstream adapter (adapters.UpstreamAdapter), the request
context (context.RequestContext), the key's policy (directory.KeyRecord) and one
forward() (forward.py) that every path goes through, whether native pass-through or
translated (exchange.py), streamed or whole.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
import time
from typing import Any

import orjson
from django.conf import settings
from redis.exceptions import RedisError

from .adapters import UpstreamAdapter, adapter_for
from .adapters import anthropic as anthropic_upstream
from .adapters.interface import Usage, body_read, upstream_invalid
from .auth import key_authenticate
from .bounds import chat_bounds_check, embeddings_bounds_check
from .context import RequestContext, respond
from .directory import Deployment, KeyRecord, ModelGroup
from .errors import GatewayError, invalid_request, not_found
from .exchange import AnthropicNative, Exchange, OpenAINative, Translated
from .forward import Route, attempts_bound, attempts_run, forward, overrides_check, overrides_parse
from .inbound import InboundApi, InboundChat, inbound_for
from .inbound import anthropic as anthropic_inbound
from .limits import DEFAULT_MAX_OUTPUT_TOKENS, Reservation, limits_reserve, needs_cost_estimate
from .record import UsageRecord, usage_cost
from .response_cache import cache_lookup, cache_plan, replay_chunks
from .route import models_visible, route_group, route_select
from .state import GatewayState, gateway_shutdown, state_current
from .stream import SSE_HEADERS, Receive, Send
from .token_count import count_message_tokens, count_text_tokens

__all__ = ["application", "gateway_shutdown", "GatewayState"]

logger = logging.getLogger("aiproxy.gateway")

FORWARDED_ANTHROPIC_HEADERS = (b"anthropic-version", b"anthropic-beta")


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
    state = state_current()
    headers = dict(scope["headers"])
    path = scope["path"].rstrip("/")
    method = scope["method"]
    gemini = _gemini_target(path)
    if gemini is not None or path.startswith("/v1beta/"):
        inbound = inbound_for("gemini")
    elif path.startswith("/v2/"):
        inbound = inbound_for("cohere")
    elif path.startswith("/v1/messages") or (path.startswith("/v1/models") and b"anthropic-version" in headers):
        inbound = inbound_for("anthropic")
    else:
        inbound = inbound_for("openai")
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
        await respond(send, status, body, [(k.encode(), v.encode()) for k, v in error.headers.items()])
    except Exception:
        # a bug, not the client's fault: log it (never the request body) and answer in the
        # client's error format rather than the server's HTML page, if nothing was sent yet
        logger.exception("gateway error on %s %s", method, path)
        if not started:
            failure = GatewayError(500, "The gateway failed to handle this request.", type="api_error", code="internal_error")
            status, body = inbound.error_response(failure)
            await respond(send, status, body)


# --- models ----------------------------------------------------------------------------------

async def models_list(state: GatewayState, inbound: InboundApi, send: Send, key: KeyRecord) -> None:
    catalog = await state.directory.catalog()
    await respond(send, 200, inbound.models_page([inbound.model_object(g) for g in models_visible(catalog, key)]))


async def model_retrieve(state: GatewayState, inbound: InboundApi, send: Send, key: KeyRecord, model: str) -> None:
    group = route_group(await state.directory.catalog(), model, key)
    await respond(send, 200, orjson.dumps(inbound.model_object(group)))


# --- chat ------------------------------------------------------------------------------------

async def chat(state: GatewayState, inbound: InboundApi, scope: dict[str, Any], receive: Receive, send: Send,
               key: KeyRecord, *, model: str | None = None, stream: bool | None = None) -> None:
    headers = dict(scope["headers"])
    event = UsageRecord(schema=key.schema, key_id=key.key_id, key_name=key.key_name, endpoint=inbound.CHAT_ENDPOINT)
    ctx = RequestContext(state, inbound, key, scope, receive, send, headers, event)
    try:
        raw = await _read_body(scope, receive)
        request = inbound.chat_request_parse(raw, model=model, stream=stream)
        event.model, event.stream = request.model, request.stream
        # route: the group, and the first deployment its strategy picks (limits count against it)
        overrides = overrides_parse(headers)
        route = await _route(state, key, request.model, overrides)
        group = route.group
        deployment = _first_choice(route)
        event.provider = deployment.provider_name
        chat_bounds_check(inbound.WIRE, request.native, deployment)
        native = inbound.WIRE == adapter_for(deployment.provider_kind).WIRE == "anthropic"
        if native:
            payload = _cache_key_payload(inbound, request, key, headers)
            messages, tools = anthropic_inbound.messages_for_count(request.native), request.native.get("tools")
            max_output = request.native.get("max_tokens")
        else:
            payload = inbound.to_internal(request)
            messages, tools = payload["messages"], payload.get("tools")
            max_output = payload.get("max_completion_tokens") or payload.get("max_tokens")
        await _context_route(route, len(raw), messages, tools)
        if route.group is not group:  # a prompt too long for the group's window goes to its context fallback
            deployment = _first_choice(route)
        # cache plan, then reserve (the limits' round trip also reads the exact-cache entry)
        plan = ctx.cache = cache_plan(key, payload, headers) if payload is not None else None
        reading = plan is not None and plan.key is not None and plan.lookup
        ctx.reservation = await _limits_reserve(state, key, deployment, messages, tools, max_output,
                                                plan.key if reading and plan is not None else None)
        ctx.extra = list(ctx.reservation.headers) if ctx.reservation else []
        # lookup
        if plan is None:
            ctx.extra.append((b"x-aiproxy-cache", b"bypass"))
        else:
            assert payload is not None
            exact = ctx.reservation.cached if ctx.reservation is not None else None
            cached = await cache_lookup(state.redis, state.semantic, plan, exact)
            if cached is not None:
                await _cache_hit(ctx, payload, cached, deployment)
                return
            ctx.extra.append((b"x-aiproxy-cache", plan.status.encode()))
        # forward, with attempts
        exchange_for = _exchanges(ctx, request, payload, messages, tools)
        await forward(ctx, route, exchange_for, overrides.timeouts if overrides else None)
    except GatewayError as error:
        event.status_code = error.status
        event.error_type = error.code or error.type
        if event.model:
            await ctx.record()
        raise
    # record
    await ctx.record()


async def _route(state: GatewayState, key: KeyRecord, model: str, overrides: Any) -> Route:
    catalog = await state.directory.catalog()
    group = route_group(catalog, model, key)
    await state.board.watch(group.deployments)
    overrides_check(overrides, allowed=key.policy.overrides_allowed)
    max_attempts = attempts_bound(group.max_attempts, overrides.max_attempts if overrides else None,
                                  key.policy.max_attempts_cap)
    fallbacks = list(group.fallbacks)
    if overrides is not None:
        if overrides.fallbacks is not None:
            for name in overrides.fallbacks:
                route_group(catalog, name, key)  # a name the key cannot use is a 404, as in `model`
            fallbacks = list(overrides.fallbacks)
    return Route(state.board, catalog, group, key.workspace_id, max_attempts, time.monotonic() + group.retry_deadline,
                 fallbacks)


def _first_choice(route: Route) -> Deployment:
    """The deployment the request is planned for (its limits and prices): the group's
    first usable one, else its first (forward() then fails fast or probes)."""
    from .balance import candidates

    usable = candidates(route.group, route.board)
    if usable:
        return usable[0]
    if not route.group.deployments:
        raise GatewayError(503, f"The model '{route.group.name}' has no deployment enabled.", type="api_error",
                           code="deployments_unavailable")
    return route.group.deployments[0]


def _exchanges(ctx: RequestContext, request: InboundChat, payload: dict[str, Any] | None,
               messages: list[dict[str, Any]], tools: Any) -> Any:
    """How the request reaches a deployment, by the pair of formats (built per attempt:
    a fallback group may speak another format than the first)."""
    inbound = ctx.inbound
    ignored: list[str] = (payload.pop("_ignored", None) or []) if payload is not None else []
    internal: dict[str, Any] | None = payload

    def exchange_for(deployment: Deployment) -> Exchange:
        nonlocal internal
        adapter = adapter_for(deployment.provider_kind)
        chat_bounds_check(inbound.WIRE, request.native, deployment)
        if inbound.WIRE == adapter.WIRE == "anthropic":
            forwarded = {n.decode(): ctx.headers[n].decode("latin-1") for n in FORWARDED_ANTHROPIC_HEADERS if n in ctx.headers}
            return AnthropicNative(request.native, forwarded, messages, tools, request.model)
        if internal is None or "_anthropic_headers" in internal:  # the native Anthropic request, translated
            internal = inbound.to_internal(request)
            internal.pop("_ignored", None)
        if inbound.WIRE == adapter.WIRE == "openai":
            return OpenAINative(internal, internal["messages"], internal.get("tools"), request.model)
        return Translated(inbound, adapter, internal, ignored, internal["messages"], internal.get("tools"), request.model)

    return exchange_for


async def _context_route(route: Route, raw_size: int, messages: list[dict[str, Any]], tools: Any) -> None:
    """A prompt longer than the group's context window goes to its context fallback (a
    group with a larger window), else it is refused before any upstream call."""
    while True:
        try:
            await _context_check(route.group, raw_size, messages, tools)
            return
        except GatewayError:
            if not route.switch(route.group.context_fallback):
                raise


async def _context_check(group: ModelGroup, raw_size: int, messages: list[dict[str, Any]], tools: Any) -> None:
    """A prompt longer than the model's context window is refused before any upstream call.
    Tokens never outnumber bytes, so only bodies larger than the window are counted (in a
    thread: tiktoken releases the GIL, and counting stops once past the window)."""
    window = group.context_window
    if not window or raw_size <= window:
        return
    tokens = await asyncio.to_thread(count_message_tokens, messages, tools=tools, limit=window)
    if tokens > window:
        raise invalid_request(
            f"This model's maximum context length is {window} tokens, but the messages are longer "
            f"(more than {window} tokens). Shorten the messages.",
            param="messages", code="context_length_exceeded",
        )


def _cache_key_payload(inbound: InboundApi, request: InboundChat, key: KeyRecord,
                       headers: dict[bytes, bytes]) -> dict[str, Any] | None:
    """On the native Anthropic path the request goes up untouched; its internal form is
    only the cache's key. None when the key has no cache or the request has no internal
    form (a parameter only Anthropic understands): then it is not cached."""
    if not key.policy.cache_enabled:
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


async def _cache_hit(ctx: RequestContext, payload: dict[str, Any], cached: dict[str, Any], deployment: Deployment) -> None:
    """Answer from the cache, in the client's format (a stream if it asked for one). The
    usage event records the cost the hit avoided at the model's current prices."""
    event, plan, inbound = ctx.event, ctx.cache, ctx.inbound
    assert plan is not None
    event.cache_status = plan.status
    usage = cached.get("usage") or {}
    event.cost_saved = usage_cost(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                                  deployment.input_price_per_mtok, deployment.output_price_per_mtok)
    model = payload["model"]
    headers = ctx.extra + [(b"x-aiproxy-cache", plan.status.encode())]
    if plan.similarity is not None:
        event.cache_similarity = round(plan.similarity, 4)
        headers.append((b"x-aiproxy-cache-similarity", f"{plan.similarity:.4f}".encode()))
    if not event.stream:  # nothing spent: the reservation settles at zero
        await ctx.answer(inbound.completion_encode(cached, model), headers)
        return
    await ctx.record()
    wants_usage = inbound.WIRE != "openai" or bool((payload.get("stream_options") or {}).get("include_usage"))
    encoder = inbound.stream_encoder(model, include_usage=wants_usage)
    await ctx.send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    body = b"".join(encoder.encode(chunk) for chunk in replay_chunks(cached)) + encoder.finish()
    await ctx.send({"type": "http.response.body", "body": body, "more_body": False})


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
        if key.policy.hard_budget and not key.policy.fail_open:
            raise GatewayError(
                503, "Spend limits cannot be checked right now, and this key has a hard budget, so the request is "
                "refused rather than risk overspending. Try again shortly.", type="api_error", code="limits_unavailable",
            ) from None
        logger.warning("limits store unavailable; serving workspace %s without limits", key.workspace_id)
        return None


# --- count_tokens, embeddings -------------------------------------------------------------------

async def count_tokens(state: GatewayState, inbound: InboundApi, scope: dict[str, Any], receive: Receive, send: Send,
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
        upstream = await anthropic_upstream.messages_send(state.session, deployment, request.native, stream=False, headers=forwarded,
                                               operation="messages/count_tokens")
        await respond(send, 200, orjson.dumps(await body_read(upstream, deployment)))
        return
    payload = inbound.to_internal(request)
    tokens = await asyncio.to_thread(count_message_tokens, payload["messages"], tools=payload.get("tools"))
    await respond(send, 200, inbound.count_tokens_encode(tokens), [(b"x-aiproxy-tokens-estimated", b"true")])


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


async def embeddings(state: GatewayState, inbound: InboundApi, scope: dict[str, Any], receive: Receive, send: Send,
                     key: KeyRecord, *, model: str | None = None) -> None:
    headers = dict(scope["headers"])
    event = UsageRecord(schema=key.schema, key_id=key.key_id, key_name=key.key_name, endpoint="embeddings")
    ctx = RequestContext(state, inbound, key, scope, receive, send, headers, event)
    try:
        request = inbound.embeddings_request_parse(await _read_body(scope, receive), model=model)
        payload = inbound.embeddings_to_internal(request)
        ignored = payload.pop("_ignored", None) or []
        texts = _embeddings_validate(payload)
        event.model = payload["model"]
        overrides = overrides_parse(headers)
        route = await _route(state, key, payload["model"], overrides)
        deployment = _first_choice(route)
        event.provider = deployment.provider_name
        embeddings_bounds_check(inbound.WIRE, request.native, deployment)
        counted = [{"content": text} for text in texts] if texts is not None else [{"content": str(payload["input"])}]
        ctx.reservation = await _limits_reserve(state, key, deployment, counted, None, 0)
        ctx.extra = list(ctx.reservation.headers) if ctx.reservation else []
        await forward_embeddings(ctx, route, request, payload, texts, ignored, overrides.timeouts if overrides else None)
    except GatewayError as error:
        event.status_code = error.status
        event.error_type = error.code or error.type
        if event.model:
            await ctx.record()
        raise
    await ctx.record()


async def forward_embeddings(ctx: RequestContext, route: Route, request: InboundChat, payload: dict[str, Any],
                             texts: list[str] | None, ignored: list[str], timeouts: Any) -> None:
    """Embeddings through the same attempts as chat (forward.attempts_run): a failing
    deployment's request goes to the group's next one."""
    inbound = ctx.inbound
    # base64 is the openai SDKs' default: other upstream kinds send floats, and an OpenAI-compatible
    # one (a local server) may ignore encoding_format; any float list is packed here, never passed on
    wants_base64 = payload.get("encoding_format") == "base64"

    def prepare(deployment: Deployment) -> tuple[UpstreamAdapter, dict[str, Any]]:
        adapter = adapter_for(deployment.provider_kind)
        if texts is None and adapter.WIRE != "openai":
            raise invalid_request(f"Token-array 'input' is not supported by model '{deployment.public_name}'; send strings.",
                                  param="input", code="unsupported_parameter")
        embeddings_bounds_check(inbound.WIRE, request.native, deployment)
        return adapter, {**payload, "encoding_format": "float"} if wants_base64 and adapter.WIRE != "openai" else payload

    async def call(deployment: Deployment, prepared: tuple[UpstreamAdapter, dict[str, Any]]) -> tuple[dict[str, Any], Usage | None]:
        adapter, sent = prepared
        return await adapter.embeddings_create(ctx.state.session, deployment, sent)

    deployment, (adapter, sent), (data, usage), served, started = await attempts_run(ctx, route, prepare, call, timeouts)
    dropped = ignored + [name for name in adapter.IGNORED_PARAMS if sent.get(name) is not None]
    took = (time.perf_counter() - started) * 1000
    try:
        if wants_base64:
            _embeddings_pack(data, deployment)
        if usage is None:
            ctx.event.usage_estimated = True
            usage = Usage(sum(count_text_tokens(t) for t in texts or []), 0)
            data["usage"] = {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}
        ctx.settle(deployment, usage.input_tokens, 0)
    finally:
        ctx.state.board.end(deployment, "ok", ttfb_ms=took, total_ms=took, tokens=ctx.event.input_tokens)
    headers = ctx.extra + served + ([(b"x-aiproxy-ignored-params", ",".join(dropped).encode())] if dropped else [])
    await ctx.answer(inbound.embeddings_encode(data, request), headers)


