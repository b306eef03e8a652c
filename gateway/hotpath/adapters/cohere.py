"""Cohere upstreams (API v2): OpenAI-shaped chat and embeddings requests translated to
`POST {base_url}/v2/chat` and `POST {base_url}/v2/embed`, and the answers back.

Choices worth knowing:
- `top_p` becomes Cohere's `p`, clamped to Cohere's 0.01-0.99 (OpenAI's common
  `top_p=1` means "no nucleus cut", which 0.99 all but matches).
- Cohere's `tool_plan` (the text it writes before calling tools) is the assistant's
  `content` next to its tool calls, and goes back upstream as `tool_plan`.
- `parallel_tool_calls: false` has no Cohere switch, so the gateway enforces it: only
  the first tool call of an answer reaches the client (the model can ask for the next
  one after seeing the first result).
- Finish reasons ERROR and TIMEOUT are upstream failures (502/504), not
  `content_filter`: Cohere has no safety-block finish reason.
- Usage comes from `usage.tokens` (what the model read and wrote), else from
  `billed_units`.
- Embeddings use `input_type: "search_document"`: OpenAI's API cannot say whether a
  text is a query or a document, and documents are the common case (indexing).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import orjson

from .. import upstream
from ..directory import Deployment
from ..errors import GatewayError, invalid_request
from .interface import (
    Usage,
    body_read,
    chunk_make,
    completion_id,
    completion_make,
    credential_rejected,
    now,
    param_present,
    retry_after_headers,
    sse_events,
    sse_parse,
    text_parts_join,
    unsupported,
    upstream_invalid,
    upstream_post,
    usage_chunk_make,
)

WIRE = "cohere"
DEFAULT_BASE_URL = "https://api.cohere.com"
# best-effort hints with no Cohere equivalent; the gateway reports them to the client
IGNORED_PARAMS: tuple[str, ...] = ("user", "store", "metadata")
CHAT_KEYS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "seed", "stop", "frequency_penalty", "presence_penalty", "n", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "logprobs", "top_logprobs", "logit_bias", *IGNORED_PARAMS,
})
EMBED_KEYS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
MESSAGE_KEYS = {
    "system": {"role", "content"},
    "developer": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
}
FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
EMBED_BATCH = 96  # Cohere's limit of texts per /v2/embed call


def _url(deployment: Deployment, path: str) -> str:
    return (deployment.base_url or DEFAULT_BASE_URL).rstrip("/") + path


def _headers(deployment: Deployment, *, stream: bool = False) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if deployment.credential:
        headers["authorization"] = f"Bearer {deployment.credential}"
    return headers


# --- errors ------------------------------------------------------------------------------

def error_from(response: upstream.Response, deployment: Deployment, raw: bytes) -> GatewayError:
    status = response.status
    headers = retry_after_headers(response)
    if status in (401, 403, 498):  # 498: Cohere's "invalid token"
        return credential_rejected(deployment, 403 if status == 403 else 401, headers)
    provider = deployment.provider_name
    if status == 402:
        return GatewayError(402, f"The upstream provider '{provider}' refused the request: the gateway's account there "
                                 "needs a valid payment method.", type="api_error", code="upstream_payment_required",
                            headers=headers)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    detail = data.get("message") if isinstance(data, dict) else None
    message = f"The upstream provider '{provider}' answered {status}" + (f": {detail}" if isinstance(detail, str) else ".")
    if status == 429:
        return GatewayError(429, message, type="rate_limit_error", code="rate_limit_exceeded", headers=headers)
    if status == 404:
        return GatewayError(404, message, type="invalid_request_error", code="model_not_found", headers=headers)
    kind = "api_error" if status >= 500 or status == 499 else "invalid_request_error"
    return GatewayError(status, message, type=kind, code="upstream_error", headers=headers)


def _finish(deployment: Deployment, reason: Any, error: Any = None) -> str:
    """OpenAI's finish_reason; Cohere's ERROR and TIMEOUT end the answer as a failure."""
    if reason == "ERROR":
        detail = f": {error}" if isinstance(error, str) and error else "."
        raise GatewayError(502, f"The upstream provider '{deployment.provider_name}' failed while answering{detail}",
                           type="api_error", code="upstream_error")
    if reason == "TIMEOUT":
        raise GatewayError(504, f"The upstream provider '{deployment.provider_name}' timed out while answering.",
                           type="api_error", code="upstream_timeout")
    return FINISH.get(reason, "stop")


def usage_of(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    for key in ("tokens", "billed_units"):
        counts = usage.get(key)
        if isinstance(counts, dict) and counts.get("input_tokens") is not None:
            return Usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0))
    return None


# --- chat request ------------------------------------------------------------------------

def _user_content(deployment: Deployment, content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = {"url": part["image_url"]["url"]}  # Cohere takes data: URIs and web URLs alike
            if part["image_url"].get("detail") is not None:
                image["detail"] = part["image_url"]["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise unsupported(deployment, f"{where}.content[{j}]", f"Cohere accepts text and image parts, not '{kind}'.")
    return parts


def _assistant_message(deployment: Deployment, message: dict[str, Any], where: str) -> dict[str, Any]:
    text = text_parts_join(deployment, message.get("content"), where, "Cohere") or message.get("refusal") or ""
    out: dict[str, Any] = {"role": "assistant"}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [{"id": c["id"], "type": "function",
                              "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                             for c in calls]
        if text:
            out["tool_plan"] = text  # Cohere's place for the words that come with tool calls
    else:
        out["content"] = text
    return out


def _messages(deployment: Deployment, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        if role not in MESSAGE_KEYS:
            raise unsupported(deployment, f"{where}.role", f"Cohere has no '{role}' messages; use 'tool' messages for tool results.")
        for key, value in message.items():
            if key not in MESSAGE_KEYS[role] and param_present(value):
                raise unsupported(deployment, f"{where}.{key}", "Cohere messages have no such field.")
        content = message.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": text_parts_join(deployment, content, where, "Cohere")})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(deployment, content, where)})
        elif role == "assistant":
            out.append(_assistant_message(deployment, message, where))
        else:
            out.append({"role": "tool", "tool_call_id": message["tool_call_id"],
                        "content": text_parts_join(deployment, content, where, "Cohere")})
    return out


def _tools(deployment: Deployment, tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """Cohere's tools, and whether strict mode (one switch for all tools) is on."""
    out = []
    strict = []
    for tool in tools:
        function = tool["function"]
        spec: dict[str, Any] = {"name": function["name"],
                                "parameters": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            spec["description"] = function["description"]
        strict.append(bool(function.get("strict")))
        out.append({"type": "function", "function": spec})
    if any(strict) and not all(strict):
        raise unsupported(deployment, "tools", "Cohere's strict mode applies to all tools or none; mark every tool strict or none.")
    return out, bool(strict) and all(strict)


def _penalty(deployment: Deployment, payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is not None and not 0 <= value <= 1:
        raise unsupported(deployment, name, "Cohere accepts penalties from 0 to 1.")
    return value


def chat_body(deployment: Deployment, payload: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The /v2/chat request for an OpenAI chat request; raises `unsupported` for what cannot map."""
    for key, value in payload.items():
        if key not in CHAT_KEYS and param_present(value):
            raise unsupported(deployment, key, "Cohere has no equivalent.")
    if (payload.get("n") or 1) != 1:
        raise unsupported(deployment, "n", "Cohere returns one choice per request; send separate requests instead.")
    if payload.get("logprobs") or payload.get("top_logprobs") is not None:
        raise unsupported(deployment, "logprobs" if payload.get("logprobs") else "top_logprobs",
                          "log probabilities are not translated for Cohere upstreams.")
    if payload.get("logit_bias"):
        raise unsupported(deployment, "logit_bias", "Cohere has no logit bias.")
    body: dict[str, Any] = {"model": deployment.upstream_name, "messages": _messages(deployment, payload["messages"]),
                            "stream": stream}
    tools = payload.get("tools") or []
    if tools:
        body["tools"], strict = _tools(deployment, tools)
        if strict:
            body["strict_tools"] = True
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        # Cohere can only require *some* tool: offering just the named one and requiring a
        # call is the same contract (the model could call nothing else in this turn anyway)
        name = (choice.get("function") or {}).get("name")
        body["tools"] = [t for t in body.get("tools", []) if t["function"]["name"] == name]
        body["tool_choice"] = "REQUIRED"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none" and tools:
        body["tool_choice"] = "NONE"
    fmt = payload.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        if tools:
            raise unsupported(deployment, "response_format", "Cohere cannot combine a JSON response format with tools.")
        body["response_format"] = {"type": "json_object"}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        if schema:
            body["response_format"]["json_schema"] = schema
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if payload.get("top_p") is not None:
        body["p"] = min(max(float(payload["top_p"]), 0.01), 0.99)
    for name in ("temperature", "seed"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    for name in ("frequency_penalty", "presence_penalty"):
        if (value := _penalty(deployment, payload, name)) is not None:
            body[name] = value
    return body


async def chat_send(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any], *, stream: bool
) -> upstream.Response:
    body = chat_body(deployment, payload, stream=stream)
    return await upstream_post(session, deployment, _url(deployment, "/v2/chat"), body,
                               _headers(deployment, stream=stream), error_from)


# --- chat answer -------------------------------------------------------------------------

def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"id": call.get("id"), "type": "function",
            "function": {"name": function.get("name"), "arguments": function.get("arguments") or "{}"}}


async def chat_read(
    response: upstream.Response, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    data = await body_read(response, deployment)
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise upstream_invalid(deployment)
    finish = _finish(deployment, data.get("finish_reason"))
    answer = data["message"]
    text = "".join(p.get("text") or "" for p in answer.get("content") or [] if isinstance(p, dict) and p.get("type") == "text")
    calls = [_tool_call(c) for c in answer.get("tool_calls") or [] if isinstance(c, dict)]
    if payload.get("parallel_tool_calls") is False:
        calls = calls[:1]
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["content"] = text or answer.get("tool_plan") or None
        message["tool_calls"] = calls
    usage = usage_of(data.get("usage"))
    return completion_make(payload["model"], message, finish, usage), usage


async def chat_chunks(
    response: upstream.Response, deployment: Deployment, payload: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    cid, created, model = completion_id(), now(), payload["model"]
    single_call = payload.get("parallel_tool_calls") is False
    positions: dict[Any, int] = {}  # Cohere's tool-call index -> OpenAI's tool_calls index
    ended = False
    async for raw in sse_events(response):
        _, data = sse_parse(raw)
        if not data or data == b"[DONE]":
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise upstream_invalid(deployment) from exc
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        delta: dict[str, Any] = event["delta"] if isinstance(event.get("delta"), dict) else {}
        message: dict[str, Any] = delta["message"] if isinstance(delta.get("message"), dict) else {}
        if kind == "message-start":
            yield chunk_make(cid, model, created, {"role": "assistant", "content": ""})
        elif kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            if text:
                yield chunk_make(cid, model, created, {"content": text})
        elif kind == "tool-plan-delta":
            if message.get("tool_plan"):
                yield chunk_make(cid, model, created, {"content": message["tool_plan"]})
        elif kind == "tool-call-start":
            if single_call and positions:
                continue
            positions[event.get("index")] = position = len(positions)
            call = message.get("tool_calls") or {}
            function = call.get("function") or {}
            start = {"index": position, "id": call.get("id"), "type": "function",
                     "function": {"name": function.get("name"), "arguments": function.get("arguments") or ""}}
            yield chunk_make(cid, model, created, {"tool_calls": [start]})
        elif kind == "tool-call-delta":
            arguments = (((message.get("tool_calls") or {}).get("function")) or {}).get("arguments")
            if arguments and event.get("index") in positions:
                fragment = {"index": positions[event["index"]], "function": {"arguments": arguments}}
                yield chunk_make(cid, model, created, {"tool_calls": [fragment]})
        elif kind == "message-end":
            yield chunk_make(cid, model, created, {}, _finish(deployment, delta.get("finish_reason"), delta.get("error")))
            usage = usage_of(delta.get("usage"))
            if usage is not None:
                yield usage_chunk_make(cid, model, created, usage)
            ended = True
    if not ended:
        raise GatewayError(502, f"The upstream provider '{deployment.provider_name}' ended the stream before the answer was complete.",
                           type="api_error", code="upstream_stream_error")


# --- embeddings --------------------------------------------------------------------------

def _embed_texts(deployment: Deployment, payload: dict[str, Any]) -> list[str]:
    for key, value in payload.items():
        if key not in EMBED_KEYS and param_present(value):
            raise unsupported(deployment, key, "Cohere has no equivalent.")
    if payload.get("encoding_format") not in (None, "float", "base64"):
        raise unsupported(deployment, "encoding_format", "use 'float' or 'base64'.")
    inputs = payload.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts:
        raise invalid_request("'input' must be a string or a non-empty array of strings.", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise unsupported(deployment, "input", "Cohere embeds text only; send strings, not token arrays.")
    return texts


def _base64_floats(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def _embed_batch(
    session: upstream.Pool, deployment: Deployment, body: dict[str, Any]
) -> tuple[list[list[float]], int | None]:
    response = await upstream_post(session, deployment, _url(deployment, "/v2/embed"), body, _headers(deployment), error_from)
    data = await body_read(response, deployment)
    vectors = (data.get("embeddings") or {}).get("float") if isinstance(data, dict) else None
    if not isinstance(vectors, list) or len(vectors) != len(body["texts"]):
        raise upstream_invalid(deployment)
    tokens = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens")
    return vectors, int(tokens) if isinstance(tokens, (int, float)) else None


async def embeddings_create(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    texts = _embed_texts(deployment, payload)
    base: dict[str, Any] = {"model": deployment.upstream_name, "input_type": "search_document", "embedding_types": ["float"]}
    if payload.get("dimensions") is not None:
        base["output_dimension"] = payload["dimensions"]
    # more than 96 texts: one call per batch, all or nothing
    tasks = [asyncio.ensure_future(_embed_batch(session, deployment, {**base, "texts": texts[at:at + EMBED_BATCH]}))
             for at in range(0, len(texts), EMBED_BATCH)]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    vectors = [v for batch, _ in results for v in batch]
    counts = [tokens for _, tokens in results]
    as_base64 = payload.get("encoding_format") == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _base64_floats(v) if as_base64 else v}
            for i, v in enumerate(vectors)]
    usage = Usage(sum(c or 0 for c in counts), 0) if any(c is not None for c in counts) else None
    body: dict[str, Any] = {"object": "list", "data": data, "model": payload["model"]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}
    return body, usage

