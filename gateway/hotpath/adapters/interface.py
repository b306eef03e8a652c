"""The one small interface every upstream adapter implements, and what they share.

The gateway's internal format is OpenAI Chat Completions: every inbound API is turned
into an OpenAI-shaped request dict (validated), and every adapter answers in OpenAI
shapes. An adapter module exposes:

    WIRE: str                       # "openai" | "anthropic" | "gemini" | "cohere"

    async def chat_send(session, deployment, payload, *, stream) -> upstream.Response
        Translate `payload` (an OpenAI chat request; payload["model"] is the public
        name) and POST it upstream. Anything that cannot be mapped raises
        `unsupported(...)` (a 400 naming the parameter) before any network call.
        Upstream HTTP errors raise GatewayError with the upstream's status kept.

    async def chat_read(response, deployment, payload) -> tuple[dict, Usage | None]
        The whole answer as an OpenAI `chat.completion` dict.

    def chat_chunks(response, deployment, payload) -> AsyncIterator[dict]
        The streamed answer as OpenAI `chat.completion.chunk` dicts: text deltas,
        tool-call deltas (first one with id and name, then argument fragments), a
        chunk with the finish_reason, and, if the upstream reported usage, a last chunk
        with "choices": [] and "usage". An upstream error mid-stream raises
        GatewayError; a broken connection raises upstream.ClientError/TimeoutError.

    async def embeddings_create(session, deployment, payload) -> tuple[dict, Usage | None]
        `payload` is an OpenAI embeddings request; returns an OpenAI embeddings
        response dict (floats). Upstreams without embeddings raise `unsupported`.

Adapters never block the event loop and never log credentials or prompt text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .. import upstream
from ..directory import Deployment
from ..errors import GatewayError, invalid_request, upstream_timeout, upstream_unreachable
from ..validate import nesting_too_deep


@dataclass(slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


def unsupported(deployment: Deployment, param: str, detail: str = "") -> GatewayError:
    """A 400 naming the parameter an upstream kind cannot honour (never a silent drop)."""
    message = f"'{param}' is not supported by model '{deployment.public_name}' (served by a {deployment.provider_kind} upstream)."
    if detail:
        message += " " + detail
    return invalid_request(message, param=param, code="unsupported_parameter")


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def now() -> int:
    return int(time.time())


def chunk_make(cid: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk_make(cid: str, model: str, created: int, usage: Usage) -> dict[str, Any]:
    return {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
        "usage": usage_dict(usage),
    }


def usage_dict(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens}


def completion_make(
    model: str, message: dict[str, Any], finish_reason: str, usage: Usage | None, cid: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid or completion_id(), "object": "chat.completion", "created": now(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage_dict(usage)
    return body


def retry_after_headers(response: upstream.Response) -> dict[str, str]:
    return {"retry-after": response.headers["retry-after"]} if "retry-after" in response.headers else {}


def credential_rejected(deployment: Deployment, status: int, headers: dict[str, str]) -> GatewayError:
    """Upstream 401/403: never echo what the upstream says about the gateway's own credential."""
    return GatewayError(
        status, f"The upstream provider '{deployment.provider_name}' rejected the gateway's credential.",
        type="authentication_error" if status == 401 else "permission_error", code="upstream_auth_failed", headers=headers,
    )


ErrorParser = Callable[[upstream.Response, Deployment, bytes], GatewayError]


async def upstream_post(
    session: upstream.Pool,
    deployment: Deployment,
    url: str,
    body: Any,
    headers: dict[str, str],
    error_from: ErrorParser,
) -> upstream.Response:
    """POST JSON upstream; network failures -> 502/504; HTTP errors -> error_from(...)."""
    try:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        # the client's JSON is depth-checked on arrival, but JSON strings (tool-call arguments,
        # tool results) are parsed into the upstream body here and may nest past orjson's limit
        if "Recursion" not in str(exc):
            raise
        raise nesting_too_deep() from exc
    try:
        timeouts = deployment.timeouts
        response = await session.post(url, data=data, headers=headers, connect_timeout=timeouts.connect,
                                      first_byte_timeout=timeouts.first_byte)
    except TimeoutError as exc:
        raise upstream_timeout(deployment.provider_name) from exc
    except upstream.InvalidRequest:
        raise GatewayError(
            502, f"The request to the upstream provider '{deployment.provider_name}' could not be sent: its credential, "
            "a forwarded header or the URL holds a character HTTP does not allow. An operator should check the "
            "provider's settings.", type="api_error", code="upstream_request_invalid") from None
    except upstream.ClientError as exc:
        raise upstream_unreachable(deployment.provider_name) from exc
    if response.status >= 400:
        try:
            try:
                raw = await response.read()
            except (TimeoutError, upstream.ClientError):
                raw = b""
            raise error_from(response, deployment, raw)
        finally:
            response.release()
    return response


async def body_bytes(response: upstream.Response, deployment: Deployment) -> bytes:
    """The upstream's whole answer; a broken connection is a 502, a stalled one a 504."""
    try:
        return await response.read()
    except TimeoutError as exc:
        raise upstream_timeout(deployment.provider_name) from exc
    except upstream.ClientError as exc:
        raise upstream_unreachable(deployment.provider_name) from exc
    finally:
        response.release()


async def body_read(response: upstream.Response, deployment: Deployment) -> Any:
    """The upstream's JSON answer; a broken or invalid body is a 502/504."""
    raw = await body_bytes(response, deployment)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise upstream_invalid(deployment) from exc


def param_present(value: Any) -> bool:
    """Clients often send null (or an empty list) for a field they do not use."""
    return value is not None and value != [] and value != {}


def text_parts_join(deployment: Deployment, content: Any, where: str, provider: str) -> str:
    """The text of a string or a list of text parts (refusal parts count as text); other
    parts are refused by name, since `provider` takes only text there."""
    if isinstance(content, str) or content is None:
        return content or ""
    texts = []
    for j, part in enumerate(content):
        if part.get("type") == "text":
            texts.append(part["text"])
        elif part.get("type") == "refusal":
            texts.append(part.get("refusal") or "")
        else:
            raise unsupported(deployment, f"{where}.content[{j}]", f"{provider} accepts only text here, not '{part.get('type')}' parts.")
    return "".join(texts)


def upstream_invalid(deployment: Deployment) -> GatewayError:
    return GatewayError(
        502, f"The upstream provider '{deployment.provider_name}' sent an invalid response.", type="api_error", code="upstream_invalid"
    )


async def sse_events(response: upstream.Response) -> AsyncIterator[bytes]:
    """Complete SSE events (each ending in a blank line), as the upstream sent them."""
    buffer = b""
    async for chunk in response.content.iter_any():
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        if not buffer and chunk.endswith(b"\n\n") and chunk.find(b"\n\n") == len(chunk) - 2:
            yield chunk  # the usual read: exactly one whole event, passed on as it is
            continue
        buffer += chunk
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            yield buffer[: end + 2]
            buffer = buffer[end + 2 :]
    if buffer.strip():
        yield buffer + b"\n\n"


def sse_parse(event: bytes) -> tuple[str | None, bytes]:
    """(event name, data) of one SSE event; multi-line data joined with newlines."""
    if event.startswith(b"data:") and event.find(b"\n") == len(event) - 2:
        return None, event[5:-2].lstrip(b" ")  # the usual event: one data line, then the blank line
    name = None
    data: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" ") if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return name, b"\n".join(data)


def image_data_url_parse(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a data: URL, or None for a remote URL."""
    if not url.startswith("data:"):
        return None
    head, _, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if encoding != "base64" or not data:
        return None
    return media_type or "application/octet-stream", data
