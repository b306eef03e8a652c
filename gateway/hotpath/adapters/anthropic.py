"""Anthropic upstreams (Messages API): OpenAI-shaped chat requests translated to
`POST {base_url}/v1/messages` (headers `x-api-key` and `anthropic-version: 2023-06-01`),
and the answers back; plus a native pass-through for Anthropic clients.

Choices worth knowing:
- `max_tokens` is required by Anthropic; when the client gives neither `max_tokens` nor
  `max_completion_tokens`, the gateway asks for DEFAULT_MAX_TOKENS (4096).
- System and developer messages, wherever they stand, become Anthropic's top-level
  `system` (one text block each, in order): Anthropic has no system turns.
- Consecutive `tool` messages become one user message of `tool_result` blocks (a user
  message right after them joins it), as Anthropic requires.
- `response_format` json_schema / json_object becomes one forced tool whose input schema
  is the requested schema (`{"type": "object"}` for json_object); the tool's input comes
  back as the message text (a JSON string) with finish_reason "stop", streamed or not.
- `temperature` must be 0..1 (Anthropic's range; OpenAI's 1..2 has no equivalent).
- An image part's `detail` hint has no Anthropic equivalent and is not sent.
- prompt_tokens = input_tokens + cache_creation_input_tokens + cache_read_input_tokens
  (Anthropic's input_tokens leaves out what the prompt cache wrote or read).
- Stop reasons: end_turn/stop_sequence/pause_turn -> stop, max_tokens and
  model_context_window_exceeded -> length, tool_use -> tool_calls, refusal -> content_filter.
- 529 (Anthropic overloaded) stays 529, type "overloaded_error".

Native pass-through (`messages_send`, `message_usage`, `event_usage`): an Anthropic
client's own body goes upstream with only `model` replaced, and the answer's bytes go
back untouched; only usage is read from them.
"""

from __future__ import annotations

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
    image_data_url_parse,
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

WIRE = "anthropic"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
# best-effort hints with no Anthropic equivalent; the gateway reports them to the client
IGNORED_PARAMS: tuple[str, ...] = ("seed", "store", "metadata")
CHAT_KEYS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stop", "n", "tools", "tool_choice", "parallel_tool_calls", "response_format", "user", "frequency_penalty",
    "presence_penalty", "logprobs", "top_logprobs", "logit_bias", *IGNORED_PARAMS,
})
MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
INPUT_USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
JSON_TOOL = "json_response"
NATIVE_HEADERS = ("anthropic-version", "anthropic-beta")


def _url(deployment: Deployment, operation: str) -> str:
    return f"{deployment.base_url.rstrip('/')}/v1/{operation}"


def request_headers(deployment: Deployment, *, stream: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json",
               "anthropic-version": ANTHROPIC_VERSION}
    for name, value in (extra or {}).items():
        if name.lower() in NATIVE_HEADERS and value:
            headers[name.lower()] = value
    if deployment.credential:
        headers["x-api-key"] = deployment.credential
    return headers


# --- errors ------------------------------------------------------------------------------

def error_from(response: upstream.Response, deployment: Deployment, raw: bytes) -> GatewayError:
    status = response.status
    headers = retry_after_headers(response)
    if status in (401, 403):
        return credential_rejected(deployment, status, headers)
    provider = deployment.provider_name
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    message = f"The upstream provider '{provider}' answered {status}" + (f": {detail}" if isinstance(detail, str) and detail else ".")
    if status == 529:
        return GatewayError(529, f"The upstream provider '{provider}' is overloaded (Anthropic 529 overloaded_error); "
                                 "retry in a little while.", type="overloaded_error", code="upstream_overloaded", headers=headers)
    if status == 429:
        return GatewayError(429, message, type="rate_limit_error", code="rate_limit_exceeded", headers=headers)
    if status == 404:
        return GatewayError(404, message, type="invalid_request_error", code="model_not_found", headers=headers)
    if status == 413:
        return GatewayError(413, message, type="invalid_request_error", code="request_too_large", headers=headers)
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return GatewayError(status, message, type=kind, code="upstream_error", headers=headers)


def _stream_error(deployment: Deployment, data: bytes) -> GatewayError:
    """An `event: error` after the answer began (Anthropic sends overloaded_error there)."""
    try:
        error = orjson.loads(data).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    kind = error.get("type") if isinstance(error, dict) else None
    detail = error.get("message") if isinstance(error, dict) else None
    status = {"overloaded_error": 529, "rate_limit_error": 429}.get(kind or "", 502)
    message = f"The upstream provider '{deployment.provider_name}' failed mid-answer"
    message += f" ({kind}: {detail})." if isinstance(kind, str) and isinstance(detail, str) else "."
    return GatewayError(status, message, type="overloaded_error" if status == 529 else "api_error", code="upstream_stream_error")


# --- usage -------------------------------------------------------------------------------

def usage_merge(current: Usage | None, usage: Any) -> Usage | None:
    """Fold an Anthropic usage object into the running count. Counts are cumulative, so
    they replace rather than add; fields a message_delta leaves out keep their value."""
    if not isinstance(usage, dict):
        return current
    inputs = [usage.get(key) for key in INPUT_USAGE_KEYS]
    output = usage.get("output_tokens")
    if all(not isinstance(v, int) for v in inputs) and not isinstance(output, int):
        return current
    base = current or Usage(0, 0)
    input_tokens = base.input_tokens
    if any(isinstance(v, int) for v in inputs):
        input_tokens = max(input_tokens, sum(v for v in inputs if isinstance(v, int)))
    return Usage(input_tokens, output if isinstance(output, int) else base.output_tokens)


def message_usage(data: dict[str, Any]) -> Usage | None:
    """Usage of a native Message body."""
    return usage_merge(None, data.get("usage"))


def event_usage(event: bytes, usage: Usage | None) -> Usage | None:
    """Fold one raw native SSE event into the running usage: message_start carries the
    input tokens, message_delta the (cumulative) output tokens."""
    if b"message_start" not in event and b"message_delta" not in event:
        return usage
    _, data = sse_parse(event)
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return usage
    if not isinstance(body, dict):
        return usage
    if body.get("type") == "message_start" and isinstance(body.get("message"), dict):
        return usage_merge(usage, body["message"].get("usage"))
    if body.get("type") == "message_delta":
        return usage_merge(usage, body.get("usage"))
    return usage


# --- chat request ------------------------------------------------------------------------

def _image_block(deployment: Deployment, url: str, where: str) -> dict[str, Any]:
    parsed = image_data_url_parse(url)
    if parsed is None:
        if not url.startswith(("http://", "https://")):
            raise unsupported(deployment, where, "Anthropic takes images as base64 data: URLs or http(s) URLs.")
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = parsed
    if media_type not in IMAGE_TYPES:
        raise unsupported(deployment, where, f"Anthropic accepts {', '.join(IMAGE_TYPES)} images, not {media_type}.")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _user_blocks(deployment: Deployment, content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(deployment, part["image_url"]["url"], f"{where}.content[{j}].image_url.url"))
        else:
            raise unsupported(deployment, f"{where}.content[{j}]", f"Anthropic upstreams take text and image parts, not '{kind}'.")
    return blocks


def _tool_input(arguments: str, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"Invalid value for '{where}': the arguments are not valid JSON.", param=where) from exc
    if not isinstance(value, dict):
        raise invalid_request(f"Invalid value for '{where}': the arguments must be a JSON object.", param=where)
    return value


def _assistant_blocks(deployment: Deployment, message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    text = text_parts_join(deployment, message.get("content"), where, "Anthropic") or message.get("refusal") or ""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for j, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        blocks.append({"type": "tool_use", "id": call["id"], "name": function["name"],
                       "input": _tool_input(function["arguments"], f"{where}.tool_calls[{j}].function.arguments")})
    return blocks


def _messages(deployment: Deployment, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, Anthropic messages) for OpenAI messages."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message["role"]
        if role not in MESSAGE_KEYS:
            raise unsupported(deployment, f"{where}.role", f"Anthropic has no '{role}' messages; use 'tool' messages for tool results.")
        for key, value in message.items():
            if key not in MESSAGE_KEYS[role] and param_present(value):
                raise unsupported(deployment, f"{where}.{key}", "Anthropic messages have no such field.")
        if role in ("system", "developer"):
            text = text_parts_join(deployment, message.get("content"), where, "Anthropic")
            if text:
                system.append({"type": "text", "text": text})
            continue
        if role == "assistant":
            blocks = _assistant_blocks(deployment, message, where)
        elif role == "user":
            blocks = _user_blocks(deployment, message["content"], where)
        else:
            blocks = [{"type": "tool_result", "tool_use_id": message["tool_call_id"],
                       "content": text_parts_join(deployment, message["content"], where, "Anthropic")}]
        if not blocks:
            continue  # an empty turn says nothing, and Anthropic refuses empty content
        anthropic_role = "assistant" if role == "assistant" else "user"
        if out and out[-1]["role"] == anthropic_role:
            out[-1]["content"].extend(blocks)  # tool results and the user's next words form one turn
        else:
            out.append({"role": anthropic_role, "content": blocks})
    return system, out


def _tools(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tool in payload.get("tools") or []:
        function = tool["function"]
        spec: dict[str, Any] = {"name": function["name"],
                                "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            spec["description"] = function["description"]
        if function.get("strict"):
            spec["strict"] = True
        out.append(spec)
    return out


def _tool_choice(payload: dict[str, Any]) -> dict[str, Any] | None:
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        result: dict[str, Any] = {"type": "tool", "name": choice["function"]["name"]}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        result = {"type": "auto"}
    if payload.get("parallel_tool_calls") is False:
        result["disable_parallel_tool_use"] = True
    elif choice is None:
        return None
    return result


def _json_tool(deployment: Deployment, fmt: dict[str, Any]) -> dict[str, Any]:
    """The forced tool that stands in for a JSON response format."""
    spec = (fmt.get("json_schema") or {}) if fmt["type"] == "json_schema" else {}
    schema = spec.get("schema") or {"type": "object"}
    if schema.get("type", "object") != "object":
        raise unsupported(deployment, "response_format", "Anthropic upstreams return JSON objects only; wrap the schema in an "
                                                         "object with one property.")
    tool: dict[str, Any] = {"name": JSON_TOOL, "description": spec.get("description") or "Answer with JSON.",
                            "input_schema": {**schema, "type": "object"}}
    if spec.get("strict"):
        tool["strict"] = True
    return tool


def json_mode(payload: dict[str, Any]) -> bool:
    return (payload.get("response_format") or {}).get("type") in ("json_object", "json_schema")


def _sampling_check(deployment: Deployment, payload: dict[str, Any]) -> None:
    for key, value in payload.items():
        if key not in CHAT_KEYS and value is not None:
            raise unsupported(deployment, key, "Anthropic has no equivalent.")
    if (payload.get("n") or 1) != 1:
        raise unsupported(deployment, "n", "Anthropic returns one choice per request; send separate requests instead.")
    temperature = payload.get("temperature")
    if temperature is not None and temperature > 1:
        raise unsupported(deployment, "temperature", "Anthropic accepts temperature from 0 to 1.")
    for name in ("frequency_penalty", "presence_penalty"):
        if payload.get(name):
            raise unsupported(deployment, name, "Anthropic has no sampling penalties.")
    if payload.get("logprobs") or payload.get("top_logprobs") is not None:
        raise unsupported(deployment, "logprobs" if payload.get("logprobs") else "top_logprobs",
                          "Anthropic does not return log probabilities.")
    if payload.get("logit_bias"):
        raise unsupported(deployment, "logit_bias", "Anthropic has no logit bias.")


def chat_body(deployment: Deployment, payload: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The /v1/messages request for an OpenAI chat request; raises `unsupported` for what cannot map."""
    _sampling_check(deployment, payload)
    system, messages = _messages(deployment, payload["messages"])
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens") or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": deployment.upstream_name, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    tools = _tools(payload)
    fmt = payload.get("response_format") or {}
    if json_mode(payload):
        if tools:
            raise unsupported(deployment, "response_format", "Anthropic upstreams cannot combine a JSON response format "
                                                             "with tools; send one or the other.")
        body["tools"] = [_json_tool(deployment, fmt)]
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": True}
    elif tools:
        body["tools"] = tools
        choice = _tool_choice(payload)
        if choice is not None:
            body["tool_choice"] = choice
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    if payload.get("user"):
        body["metadata"] = {"user_id": payload["user"]}
    return body


async def chat_send(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any], *, stream: bool
) -> upstream.Response:
    body = chat_body(deployment, payload, stream=stream)
    return await upstream_post(session, deployment, _url(deployment, "messages"), body,
                               request_headers(deployment, stream=stream), error_from)


# --- chat answer -------------------------------------------------------------------------

def _finish(reason: Any, *, json_answer: bool) -> str:
    finish = FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "stop" if json_answer and finish == "tool_calls" else finish


async def chat_read(
    response: upstream.Response, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    data = await body_read(response, deployment)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise upstream_invalid(deployment)
    return completion_from_message(data, payload["model"], as_json=json_mode(payload)), message_usage(data)


def completion_from_message(data: dict[str, Any], model: str, *, as_json: bool) -> dict[str, Any]:
    """An Anthropic message as an OpenAI-shaped completion (`as_json`: the answer is the
    forced tool call that carries translated JSON mode)."""
    blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if as_json:
        inputs = [b.get("input") for b in blocks if b.get("type") == "tool_use"]
        message["content"] = orjson.dumps(inputs[0]).decode() if inputs else ""
    else:
        text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
        calls = [{"id": b.get("id"), "type": "function",
                  "function": {"name": b.get("name"), "arguments": orjson.dumps(b.get("input") or {}).decode()}}
                 for b in blocks if b.get("type") == "tool_use"]
        message["content"] = text or (None if calls else "")
        if calls:
            message["tool_calls"] = calls
    return completion_make(model, message, _finish(data.get("stop_reason"), json_answer=as_json), message_usage(data))


def message_from_events(events: list[bytes]) -> dict[str, Any] | None:
    """The message a complete Messages stream carried (None if it never reached message_stop)."""
    message: dict[str, Any] | None = None
    partial: dict[int, str] = {}
    for raw in events:
        _, data = sse_parse(raw)
        try:
            event = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(event, dict):
            continue
        kind, index = event.get("type"), event.get("index")
        if kind == "message_start":
            message = dict(event.get("message") or {})
            message["content"] = []
        elif message is None:
            continue
        elif kind == "content_block_start" and isinstance(index, int):
            message["content"].append(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta" and isinstance(index, int) and index < len(message["content"]):
            delta, block = event.get("delta") or {}, message["content"][index]
            if delta.get("type") == "text_delta":
                block["text"] = (block.get("text") or "") + (delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                partial[index] = partial.get(index, "") + (delta.get("partial_json") or "")
        elif kind == "message_delta":
            message["stop_reason"] = (event.get("delta") or {}).get("stop_reason")
            message["usage"] = {**(message.get("usage") or {}), **(event.get("usage") or {})}
        elif kind == "message_stop":
            for index, text in partial.items():
                try:
                    message["content"][index]["input"] = orjson.loads(text or "{}")
                except orjson.JSONDecodeError:
                    return None
            return message
        elif kind == "error":
            return None
    return None


async def chat_chunks(
    response: upstream.Response, deployment: Deployment, payload: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    cid, created, model = completion_id(), now(), payload["model"]
    as_json = json_mode(payload)
    positions: dict[Any, int] = {}  # Anthropic content block index -> OpenAI tool_calls index
    written: set[Any] = set()  # blocks that streamed some input JSON
    usage: Usage | None = None
    stop_reason: Any = None
    async for raw in sse_events(response):
        name, data = sse_parse(raw)
        if name == "error":
            raise _stream_error(deployment, data)
        if not data or name == "ping":
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise upstream_invalid(deployment) from exc
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        index = event.get("index")
        if kind == "error":
            raise _stream_error(deployment, data)
        if kind == "message_start":
            usage = usage_merge(usage, (event.get("message") or {}).get("usage"))
            yield chunk_make(cid, model, created, {"role": "assistant", "content": ""})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "text" and block.get("text") and not as_json:
                yield chunk_make(cid, model, created, {"content": block["text"]})
            elif block.get("type") == "tool_use" and not (as_json and positions):  # JSON mode: the one forced call
                positions[index] = position = len(positions)
                if not as_json:
                    start = {"index": position, "id": block.get("id"), "type": "function",
                             "function": {"name": block.get("name"), "arguments": ""}}
                    yield chunk_make(cid, model, created, {"tool_calls": [start]})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text") and not as_json:
                yield chunk_make(cid, model, created, {"content": delta["text"]})
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json") and index in positions:
                written.add(index)
                yield _arguments_chunk(cid, model, created, positions[index], delta["partial_json"], as_json=as_json)
        elif kind == "content_block_stop":
            if index in positions and index not in written:  # a tool called with no arguments
                yield _arguments_chunk(cid, model, created, positions[index], "{}", as_json=as_json)
        elif kind == "message_delta":
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            usage = usage_merge(usage, event.get("usage"))
        elif kind == "message_stop":
            yield chunk_make(cid, model, created, {}, _finish(stop_reason, json_answer=as_json))
            if usage is not None:
                yield usage_chunk_make(cid, model, created, usage)
            return
    raise GatewayError(502, f"The upstream provider '{deployment.provider_name}' ended the stream before the answer was complete.",
                       type="api_error", code="upstream_stream_error")


def _arguments_chunk(cid: str, model: str, created: int, position: int, fragment: str, *, as_json: bool) -> dict[str, Any]:
    """A tool call's argument fragment, or in JSON mode a piece of the answer's text."""
    if as_json:
        return chunk_make(cid, model, created, {"content": fragment})
    return chunk_make(cid, model, created, {"tool_calls": [{"index": position, "function": {"arguments": fragment}}]})


# --- native pass-through (Anthropic clients) ------------------------------------------------

async def messages_send(
    session: upstream.Pool,
    deployment: Deployment,
    body: dict[str, Any],
    *,
    stream: bool,
    headers: dict[str, str] | None = None,
    operation: str = "messages",
) -> upstream.Response:
    """POST an Anthropic client's own request body (only `model` replaced); the client's
    `anthropic-version` and `anthropic-beta` headers go along."""
    native = dict(body)
    native["model"] = deployment.upstream_name
    if stream:
        native["stream"] = True
    return await upstream_post(session, deployment, _url(deployment, operation), native,
                               request_headers(deployment, stream=stream, extra=headers), error_from)


# --- embeddings --------------------------------------------------------------------------

async def embeddings_create(
    session: upstream.Pool, deployment: Deployment, payload: dict[str, Any]
) -> tuple[dict[str, Any], Usage | None]:
    raise unsupported(deployment, "model", "Anthropic has no embeddings API; use an embeddings model from another provider.")
