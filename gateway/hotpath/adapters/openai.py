"""OpenAI Chat Completions upstreams: OpenAI, Azure OpenAI, any OpenAI-compatible
server (vLLM, Ollama, llama.cpp server, LM Studio) and the built-in fake provider.

The gateway's internal format is OpenAI's, so nothing is translated: for OpenAI
clients the response bytes and stream events pass through untouched and only usage
is read from them (`chat_read_raw`, `chat_events`, `event_usage`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from .. import upstream
from ..directory import Deployment
from ..errors import GatewayError
from .interface import (
    Usage,
    body_bytes,
    body_read,
    credential_rejected,
    retry_after_headers,
    sse_events,
    sse_parse,
    upstream_invalid,
    upstream_post,
)

WIRE = "openai"
IGNORED_PARAMS: tuple[str, ...] = ()  # the internal format is OpenAI's: nothing to leave out
AZURE_DEFAULT_API_VERSION = "2024-10-21"


def _target(deployment: Deployment, operation: str) -> tuple[str, dict[str, str]]:
    headers = {"content-type": "application/json"}
    if deployment.provider_kind == "azure-openai":
        version = deployment.api_version or AZURE_DEFAULT_API_VERSION
        url = f"{deployment.base_url}/openai/deployments/{deployment.upstream_name}/{operation}?api-version={version}"
        if deployment.credential:
            headers["api-key"] = deployment.credential
    else:
        url = f"{deployment.base_url}/{operation}"
        if deployment.credential:
            headers["authorization"] = f"Bearer {deployment.credential}"
    return url, headers


def error_from(response: upstream.Response, deployment: Deployment, raw: bytes) -> GatewayError:
    headers = retry_after_headers(response)
    if response.status in (401, 403):
        return credential_rejected(deployment, response.status, headers)
    try:
        data = orjson.loads(raw)
        error = data.get("error") if isinstance(data, dict) else None
    except orjson.JSONDecodeError:
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return GatewayError(
            response.status,
            error["message"],
            type=str(error.get("type") or "api_error"),
            code=error.get("code") if isinstance(error.get("code"), str) else None,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            headers=headers,
        )
    return GatewayError(
        response.status, f"The upstream provider '{deployment.provider_name}' answered {response.status}.",
        type="api_error", code="upstream_error", headers=headers,
    )


async def chat_send(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any], *, stream: bool
) -> upstream.Response:
    body = dict(payload)
    body["model"] = deployment.upstream_name
    if stream:
        body["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
    url, headers = _target(deployment, "chat/completions")
    return await upstream_post(session, deployment, url, body, headers, error_from)


def _usage_of(data: Any) -> Usage | None:
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    return None


async def chat_read(response: upstream.Response, deployment: Deployment, payload: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]:
    data = await body_read(response, deployment)
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise upstream_invalid(deployment)
    return data, _usage_of(data)


async def chat_read_raw(response: upstream.Response,
                        deployment: Deployment) -> tuple[bytes, dict[str, Any], Usage | None]:
    """Pass-through for OpenAI clients: the upstream's bytes, untouched, what they say, and their usage."""
    body = await body_bytes(response, deployment)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise upstream_invalid(deployment) from exc
    if not isinstance(data, dict):
        raise upstream_invalid(deployment)
    return body, data, _usage_of(data)


chat_events = sse_events


async def chat_chunks(response: upstream.Response, deployment: Deployment, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    async for event in sse_events(response):
        _, data = sse_parse(event)
        if not data or data.strip() == b"[DONE]":
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            raise GatewayError(502, str(error.get("message") or "The upstream stream failed."), type="api_error",
                               code="upstream_stream_error")
        if isinstance(chunk, dict):
            yield chunk


def event_usage(event: bytes) -> Usage | None:
    """Usage carried by a stream event (the include_usage chunk), if any."""
    if b'"usage":{' not in event and b'"usage": {' not in event:
        return None
    _, data = sse_parse(event)
    try:
        return _usage_of(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None


def event_is_usage_only(event: bytes) -> bool:
    """The extra chunk include_usage adds: no choices, only usage."""
    return b'"choices":[]' in event or b'"choices": []' in event


async def embeddings_create(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    body = dict(payload)
    body["model"] = deployment.upstream_name
    url, headers = _target(deployment, "embeddings")
    response = await upstream_post(session, deployment, url, body, headers, error_from)
    data = await body_read(response, deployment)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise upstream_invalid(deployment)
    data["model"] = payload["model"]
    usage = data.get("usage") or {}
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return data, Usage(int(tokens), 0) if isinstance(tokens, int) else None
