"""The gateway: a small ASGI app mounted in front of Django for /v1/*.

Read it top to bottom: auth -> (limits, cache: later issues) -> route -> provider
adapter -> stream -> record. No Django ORM call and no blocking call once warm:
keys and the catalog come from the hot directory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from django.conf import settings

from .adapters import adapter_for
from .auth import key_authenticate
from .directory import Deployment, Directory, KeyRecord
from .errors import GatewayError, not_found
from .record import UsageEvent, usage_cost, usage_event_record
from .route import models_visible, route_select
from .stream import Receive, Send, sse_relay
from .tokens import count_message_tokens, count_text_tokens
from .validate import chat_request_validate, json_body

logger = logging.getLogger("aiproxy.gateway")

JSON_HEADERS = [(b"content-type", b"application/json")]


class GatewayState:
    """Per-process (per event loop) clients: Redis, the upstream HTTP pool, the directory."""

    def __init__(self) -> None:
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL, max_connections=256)
        self.directory = Directory(self.redis)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT,
                sock_read=settings.GATEWAY_UPSTREAM_TIMEOUT,
            ),
            auto_decompress=True,
        )


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
        await state.session.close()
        await state.redis.aclose()


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def _respond_error(send: Send, error: GatewayError) -> None:
    extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await _respond(send, error.status, error.body(), extra)


async def _read_body(scope: dict[str, Any], receive: Receive) -> bytes:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
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


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    state = _state()
    headers = dict(scope["headers"])
    path = scope["path"].rstrip("/")
    method = scope["method"]
    try:
        key = await key_authenticate(state.directory, headers)
        if path == "/v1/chat/completions" and method == "POST":
            await chat_completions(state, scope, receive, send, key)
        elif path == "/v1/models" and method == "GET":
            await models_list(state, send, key)
        elif path.startswith("/v1/models/") and method == "GET":
            await model_retrieve(state, send, key, path[len("/v1/models/"):])
        else:
            raise not_found(f"Unknown request URL: {method} {scope['path']}.", code="unknown_url")
    except GatewayError as error:
        await _respond_error(send, error)


async def models_list(state: GatewayState, send: Send, key: KeyRecord) -> None:
    catalog = await state.directory.catalog()
    data = [_model_object(d) for d in models_visible(catalog, key)]
    await _respond(send, 200, orjson.dumps({"object": "list", "data": data}))


async def model_retrieve(state: GatewayState, send: Send, key: KeyRecord, model: str) -> None:
    catalog = await state.directory.catalog()
    deployment = route_select(catalog, model, key)
    await _respond(send, 200, orjson.dumps(_model_object(deployment)))


def _model_object(d: Deployment) -> dict[str, Any]:
    return {"id": d.public_name, "object": "model", "created": d.created, "owned_by": d.provider_name}


async def chat_completions(state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send, key: KeyRecord) -> None:
    started = time.perf_counter()
    event = UsageEvent(schema=key.schema, key_id=key.key_id, key_name=key.key_name, endpoint="chat.completions")
    try:
        payload = json_body(await _read_body(scope, receive))
        chat_request_validate(payload)
        event.model = payload["model"]
        event.stream = bool(payload.get("stream"))
        deployment = route_select(await state.directory.catalog(), payload["model"], key)
        event.provider = deployment.provider_name
        adapter = adapter_for(deployment.provider_kind)
        upstream = await adapter.chat_send(state.session, deployment, payload, stream=event.stream)
        if event.stream:
            await _chat_stream(state, receive, send, payload, deployment, adapter, upstream, event)
        else:
            body, usage = await adapter.chat_read(upstream, deployment)
            if usage is None:
                usage = adapter.Usage(count_message_tokens(payload["messages"]), 0)
                event.usage_estimated = True
            _settle(event, deployment, usage.input_tokens, usage.output_tokens)
            await _respond(send, 200, body)
    except GatewayError as error:
        event.status_code = error.status
        event.error_type = error.code or error.type
        if event.model:
            await _record(state, event, started)
        raise
    await _record(state, event, started)


async def _chat_stream(state, receive, send, payload, deployment, adapter, upstream, event) -> None:  # type: ignore[no-untyped-def]
    wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    try:
        outcome = await sse_relay(
            send,
            receive,
            adapter.chat_events(upstream),
            extra_headers=[],
            event_usage=adapter.event_usage,
            drop_usage_event=None if wants_usage else adapter.event_is_usage_only,
        )
    finally:
        upstream.release()
    event.client_disconnected = outcome.client_disconnected
    if outcome.upstream_failed:
        event.error_type = "upstream_stream_error"
    usage = outcome.usage
    if usage is None:
        event.usage_estimated = True
        usage = adapter.Usage(
            count_message_tokens(payload["messages"]), count_text_tokens(adapter.events_text(outcome.events))
        )
    _settle(event, deployment, usage.input_tokens, usage.output_tokens)


def _settle(event: UsageEvent, deployment: Deployment, input_tokens: int, output_tokens: int) -> None:
    event.input_tokens = input_tokens
    event.output_tokens = output_tokens
    event.cost = usage_cost(input_tokens, output_tokens, deployment.input_price_per_mtok, deployment.output_price_per_mtok)


async def _record(state: GatewayState, event: UsageEvent, started: float) -> None:
    event.latency_ms = int((time.perf_counter() - started) * 1000)
    try:
        await asyncio.shield(usage_event_record(state.redis, event))
    except Exception:
        logger.exception("usage event could not be recorded (event_id=%s)", event.event_id)
