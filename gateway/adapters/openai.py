"""OpenAI Chat Completions upstreams: OpenAI, Azure OpenAI, any OpenAI-compatible
server, and the built-in fake provider. No translation is needed, so response bytes
and stream events pass through untouched; only usage is read from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from ..directory import Deployment
from ..errors import GatewayError, upstream_timeout, upstream_unreachable


@dataclass(slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


def _request_target(deployment: Deployment) -> tuple[str, dict[str, str]]:
    headers = {"content-type": "application/json"}
    if deployment.provider_kind == "azure-openai":
        version = deployment.api_version or "2024-10-21"
        url = f"{deployment.base_url}/openai/deployments/{deployment.upstream_name}/chat/completions?api-version={version}"
        if deployment.credential:
            headers["api-key"] = deployment.credential
    else:
        url = f"{deployment.base_url}/chat/completions"
        if deployment.credential:
            headers["authorization"] = f"Bearer {deployment.credential}"
    return url, headers


async def chat_send(
    session: aiohttp.ClientSession, deployment: Deployment, payload: dict[str, Any], *, stream: bool
) -> aiohttp.ClientResponse:
    body = dict(payload)
    body["model"] = deployment.upstream_name
    if stream:
        body["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
    url, headers = _request_target(deployment)
    try:
        response = await session.post(url, data=orjson.dumps(body), headers=headers)
    except TimeoutError as exc:
        raise upstream_timeout(deployment.provider_name) from exc
    except aiohttp.ClientError as exc:
        raise upstream_unreachable(deployment.provider_name) from exc
    if response.status >= 400:
        try:
            raise await _error_from(response, deployment)
        finally:
            response.release()
    return response


async def _error_from(response: aiohttp.ClientResponse, deployment: Deployment) -> GatewayError:
    try:
        data = orjson.loads(await response.read())
        error = data.get("error") if isinstance(data, dict) else None
    except (TimeoutError, orjson.JSONDecodeError, aiohttp.ClientError):
        error = None
    headers = {}
    if "retry-after" in response.headers:
        headers["retry-after"] = response.headers["retry-after"]
    if response.status in (401, 403):
        # never echo what the upstream says about the gateway's own credential
        return GatewayError(
            response.status, f"The upstream provider '{deployment.provider_name}' rejected the gateway's credential.",
            type="authentication_error", code="upstream_auth_failed", headers=headers,
        )
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


async def chat_read(response: aiohttp.ClientResponse, deployment: Deployment) -> tuple[bytes, Usage | None]:
    try:
        body = await response.read()
    except TimeoutError as exc:
        raise upstream_timeout(deployment.provider_name) from exc
    except aiohttp.ClientError as exc:
        raise upstream_unreachable(deployment.provider_name) from exc
    finally:
        response.release()
    try:
        usage = orjson.loads(body).get("usage") or {}
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise GatewayError(502, "The upstream provider sent an invalid response.", type="api_error", code="upstream_invalid") from exc
    if "prompt_tokens" in usage:
        return body, Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    return body, None


async def chat_events(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Complete SSE events (each ending in a blank line), as the upstream sent them."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            yield buffer[: end + 2]
            buffer = buffer[end + 2 :]
    if buffer.strip():
        yield buffer + b"\n\n"


def event_usage(event: bytes) -> Usage | None:
    """Usage carried by a stream event (the include_usage chunk), if any."""
    if b'"usage":{' not in event and b'"usage": {' not in event:
        return None
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                usage = orjson.loads(line[5:]).get("usage")
            except (orjson.JSONDecodeError, AttributeError):
                return None
            if isinstance(usage, dict) and "prompt_tokens" in usage:
                return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    return None


def event_is_usage_only(event: bytes) -> bool:
    """The extra chunk include_usage adds: no choices, only usage."""
    return b'"choices":[]' in event or b'"choices": []' in event


def events_text(events: list[bytes]) -> str:
    """The assistant text in the events streamed so far (to estimate output tokens)."""
    parts = []
    for event in events:
        for line in event.split(b"\n"):
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
    return "".join(parts)
