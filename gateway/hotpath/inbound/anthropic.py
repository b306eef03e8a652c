"""Anthropic's Messages API as clients see it: POST /v1/messages (stream or not) and
/v1/messages/count_tokens, errors in Anthropic's shape.

A request is validated here, then turned into the internal OpenAI-shaped request for
upstreams of other kinds; an Anthropic upstream gets the client's own body untouched
(see gateway.hotpath.asgi). Answers and stream events are turned back into Anthropic's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from ..directory import ModelGroup
from ..errors import GatewayError, invalid_request, not_found
from ..validate import _schema_problem, _type_name, base64_validate, json_body
from . import InboundChat

WIRE = "anthropic"
CHAT_ENDPOINT = "messages"
ROLES = ("user", "assistant")
BLOCK_TYPES = {"text", "image", "tool_use", "tool_result"}
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    502: "api_error", 503: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
                "function_call": "tool_use"}
# Anthropic request fields the internal format has no place for: only an Anthropic
# upstream (native pass-through) can honour them; other upstreams answer 400 naming them.
NATIVE_ONLY = ("top_k", "thinking", "container", "mcp_servers", "service_tier", "context_management", "speed",
               "inference_geo", "diagnostics", "user_profile_id", "workspace_id")
# prompt-caching hints: dropped for other upstreams (they cache on their own) and reported
# in the x-aiproxy-ignored-params response header
IGNORED_HINTS = ("cache_control",)


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(error: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type(error.status), "message": error.message}})


def error_response(error: GatewayError) -> tuple[int, bytes]:
    return error.status, error_body(error)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise invalid_request(message)


def _blocks_validate(content: Any, where: str, role: str) -> None:
    if isinstance(content, str):
        return
    _need(isinstance(content, list), f"{where}: Input should be a valid string or a list of content blocks, got {_type_name(content)}.")
    for j, block in enumerate(content):
        at = f"{where}.{j}"
        _need(isinstance(block, dict), f"{at}: Input should be an object.")
        kind = block.get("type")
        _need(isinstance(kind, str), f"{at}.type: Input should be a valid string, got {_type_name(kind)}.")
        if kind not in BLOCK_TYPES:
            continue  # documents, thinking, server tools...: checked against the upstream kind later
        if kind == "text":
            _need(isinstance(block.get("text"), str), f"{at}.text: Field required (a string).")
        elif kind == "image":
            _need(role == "user", f"{at}: image blocks are only allowed in user messages.")
            source = block.get("source")
            _need(isinstance(source, dict) and source.get("type") in ("base64", "url"),
                  f"{at}.source: expected {{type: 'base64', media_type, data}} or {{type: 'url', url}}.")
            if source["type"] == "base64":
                _need(str(source.get("media_type", "")).startswith("image/"), f"{at}.source.media_type: expected an image type.")
                base64_validate(str(source.get("data") or ""), f"{at}.source.data")
            else:
                _need(str(source.get("url", "")).startswith(("http://", "https://")), f"{at}.source.url: expected an http(s) URL.")
        elif kind == "tool_use":
            _need(role == "assistant", f"{at}: tool_use blocks are only allowed in assistant messages.")
            _need(isinstance(block.get("id"), str) and isinstance(block.get("name"), str) and isinstance(block.get("input"), dict),
                  f"{at}: tool_use needs 'id', 'name' and an object 'input'.")
        elif kind == "tool_result":
            _need(role == "user", f"{at}: tool_result blocks are only allowed in user messages.")
            _need(isinstance(block.get("tool_use_id"), str), f"{at}.tool_use_id: Field required.")
            result = block.get("content")
            _need(result is None or isinstance(result, str) or (isinstance(result, list) and all(isinstance(b, dict) for b in result)),
                  f"{at}.content: Input should be a string or a list of content blocks, got {_type_name(result)}.")


def messages_request_validate(body: dict[str, Any], *, count_only: bool = False) -> None:
    model = body.get("model")
    _need(isinstance(model, str) and bool(model), "model: Field required (a string).")
    if not count_only:
        max_tokens = body.get("max_tokens")
        _need(max_tokens is not None, "max_tokens: Field required.")
        _need(isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1,
              "max_tokens: Input should be a positive integer.")
    messages = body.get("messages")
    _need(messages is not None, "messages: Field required.")
    if not isinstance(messages, list):
        raise invalid_request(f"messages: Input should be a valid list, got {_type_name(messages)}.")
    _need(bool(messages), "messages: at least one message is required.")
    for i, message in enumerate(messages):
        _need(isinstance(message, dict), f"messages.{i}: Input should be an object.")
        role = message.get("role")
        _need(role in ROLES, f"messages.{i}.role: Input should be 'user' or 'assistant', got {role!r}.")
        _need("content" in message, f"messages.{i}.content: Field required.")
        _blocks_validate(message["content"], f"messages.{i}.content", role)
    system = body.get("system")
    if system is not None:
        _need(isinstance(system, str) or (isinstance(system, list) and all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in system)),
            "system: Input should be a string or a list of text blocks.")
    tools = body.get("tools")
    if tools is not None:
        _need(isinstance(tools, list), "tools: Input should be a valid list.")
        for i, tool in enumerate(tools):
            _need(isinstance(tool, dict) and isinstance(tool.get("name"), str), f"tools.{i}.name: Field required.")
            _need(isinstance(tool.get("type"), (str, type(None))), f"tools.{i}.type: Input should be a valid string.")
            _need(isinstance(tool.get("description"), (str, type(None))), f"tools.{i}.description: Input should be a valid string.")
            if "input_schema" in tool or tool.get("type") in (None, "custom"):
                problem = _schema_problem(orjson.dumps(tool.get("input_schema")))
                _need(problem is None, f"tools.{i}.input_schema: not a valid JSON Schema: {problem}.")
    choice = body.get("tool_choice")
    if choice is not None:
        _need(isinstance(choice, dict) and choice.get("type") in ("auto", "any", "tool", "none"),
              "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'.")
        if choice["type"] == "tool":
            _need(isinstance(choice.get("name"), str), "tool_choice.name: Field required.")
        _need(isinstance(choice.get("disable_parallel_tool_use"), (bool, type(None))),
              "tool_choice.disable_parallel_tool_use: Input should be a valid boolean.")
    metadata = body.get("metadata")
    if metadata is not None:
        _need(isinstance(metadata, dict), f"metadata: Input should be a valid dictionary, got {_type_name(metadata)}.")
        _need(isinstance(metadata.get("user_id"), (str, type(None))), "metadata.user_id: Input should be a valid string.")
    temperature = body.get("temperature")
    if temperature is not None:
        _need(isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and 0 <= temperature <= 1,
              "temperature: Input should be a number from 0 to 1.")
    top_p = body.get("top_p")
    if top_p is not None:
        _need(isinstance(top_p, (int, float)) and not isinstance(top_p, bool) and 0 <= top_p <= 1,
              "top_p: Input should be a number from 0 to 1.")
    top_k = body.get("top_k")
    if top_k is not None:
        _need(isinstance(top_k, int) and not isinstance(top_k, bool) and top_k >= 0, "top_k: Input should be a non-negative integer.")
    for name in ("service_tier", "inference_geo", "speed"):
        _need(isinstance(body.get(name), (str, type(None))), f"{name}: Input should be a valid string.")
    stop = body.get("stop_sequences")
    if stop is not None:
        _need(isinstance(stop, list) and all(isinstance(s, str) for s in stop), "stop_sequences: Input should be a list of strings.")
    stream = body.get("stream")
    _need(stream is None or isinstance(stream, bool), "stream: Input should be a valid boolean.")
    output = body.get("output_config")
    if output is not None:
        _need(isinstance(output, dict), "output_config: Input should be an object.")
        fmt = output.get("format")
        if fmt is not None:
            _need(isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict),
                  "output_config.format: expected {type: 'json_schema', schema: {...}}.")
            problem = _schema_problem(orjson.dumps(fmt["schema"]))
            _need(problem is None, f"output_config.format.schema: not a valid JSON Schema: {problem}.")


def messages_request_parse(raw: bytes, *, count_only: bool = False) -> dict[str, Any]:
    body = json_body(raw)
    messages_request_validate(body, count_only=count_only)
    return body


def chat_request_parse(raw: bytes, *, model: str | None = None, stream: bool | None = None) -> InboundChat:
    body = messages_request_parse(raw)
    return InboundChat(body, body["model"], bool(body.get("stream")))


def count_tokens_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    body = messages_request_parse(raw, count_only=True)
    return InboundChat(body, body["model"], False)


def count_tokens_encode(tokens: int) -> bytes:
    return orjson.dumps({"input_tokens": tokens})


# --- Anthropic request -> internal (OpenAI-shaped) request -------------------------------

def to_internal(request: InboundChat) -> dict[str, Any]:
    payload = messages_to_internal(request.native)
    payload["_ignored"] = [name for name in IGNORED_HINTS if name in request.native]
    return payload


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _unmappable(param: str, model: str) -> GatewayError:
    return invalid_request(
        f"'{param}' cannot be sent to model '{model}': only models served by an Anthropic upstream support it.",
        param=param, code="unsupported_parameter",
    )


def messages_to_internal(body: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic request as an OpenAI Chat Completions request (raises 400 for what cannot be mapped)."""
    model = body["model"]
    for name in NATIVE_ONLY:
        if body.get(name) is not None:
            raise _unmappable(name, model)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        if isinstance(content, str):
            messages.append({"role": message["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        tool_calls: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            kind = block.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": block["text"]})
            elif kind == "image":
                source = block["source"]
                url = source["url"] if source["type"] == "url" else f"data:{source['media_type']};base64,{source['data']}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif kind == "tool_use":
                tool_calls.append({"id": block["id"], "type": "function",
                                   "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}})
            elif kind == "tool_result":
                result = block.get("content")
                if isinstance(result, list) and any(isinstance(b, dict) and b.get("type") != "text" for b in result):
                    raise _unmappable(f"messages.{i}.content.{j}.content (non-text tool result)", model)
                text = _text_of(result) if result is not None else ""
                if block.get("is_error"):
                    text = f"Error: {text}"
                messages.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
            else:
                raise _unmappable(f"messages.{i}.content.{j} ({kind} block)", model)
        if message["role"] == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": "".join(p["text"] for p in parts) or None}
            if tool_calls:
                out["tool_calls"] = tool_calls
            messages.append(out)
        elif parts:
            messages.append({"role": "user", "content": parts})
    payload: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": body.get("max_tokens") or 1}
    if body.get("stream"):
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(theirs) is not None:
            payload[ours] = body[theirs]
    if body.get("stop_sequences"):
        payload["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        payload["user"] = user
    tools = body.get("tools")
    if tools:
        converted = []
        for i, tool in enumerate(tools):
            if tool.get("type") not in (None, "custom"):
                raise _unmappable(f"tools.{i} (server tool '{tool.get('type')}')", model)
            function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
            if tool.get("description"):
                function["description"] = tool["description"]
            converted.append({"type": "function", "function": function})
        payload["tools"] = converted
    output = body.get("output_config") or {}
    if output.get("effort") is not None:
        raise _unmappable("output_config.effort", model)
    if output.get("format") is not None:
        payload["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": output["format"].get("schema") or {}}}
    choice = body.get("tool_choice")
    if choice:
        kind = choice["type"]
        if kind == "auto":
            payload["tool_choice"] = "auto"
        elif kind == "any":
            payload["tool_choice"] = "required"
        elif kind == "none":
            payload["tool_choice"] = "none"
        else:
            payload["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        if choice.get("disable_parallel_tool_use") and tools:
            payload["parallel_tool_calls"] = False
    return payload


def messages_for_count(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's text, message by message, in the shape gateway.hotpath.token_count counts
    (for the context-window check and estimates on the native path)."""
    out: list[dict[str, Any]] = []
    if body.get("system"):
        out.append({"content": _text_of(body["system"])})
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            out.append({"content": content})
            continue
        texts = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                texts.append(f"{block.get('name', '')} {orjson.dumps(block.get('input')).decode()}")
            elif block.get("type") == "tool_result":
                texts.append(_text_of(block.get("content")))
            elif isinstance(block.get("text"), str):
                texts.append(block["text"])
        out.append({"content": "\n".join(texts)})
    return out


# --- internal answers -> Anthropic ---------------------------------------------------------

def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def _tool_input(arguments: str) -> Any:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def completion_encode(body: dict[str, Any], model: str) -> bytes:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": _tool_input(function.get("arguments", ""))})
    usage = body.get("usage") or {}
    return orjson.dumps({
        "id": message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"), "stop_sequence": None,
        "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0), "output_tokens": int(usage.get("completion_tokens") or 0)},
    })


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamEncoder:
    """OpenAI chunks in, Anthropic's event sequence out: message_start, content blocks
    (start, deltas, stop), message_delta with the stop reason and usage, message_stop."""

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self.model = model
        self.started = False
        self.block: tuple[str, int] | None = None  # (kind or tool index key, block index)
        self.blocks = 0
        self.stop_reason = "end_turn"
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    def _start(self) -> bytes:
        self.started = True
        return _event("message_start", {"type": "message_start", "message": {
            "id": message_id(), "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}})

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        index = self.block[1]
        self.block = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _open(self, key: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block = (key, self.blocks)
        self.blocks += 1
        return out + _event("content_block_start", {"type": "content_block_start", "index": self.block[1], "content_block": block})

    def encode(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self.started else self._start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = {"input_tokens": int(usage.get("prompt_tokens") or 0),
                          "output_tokens": int(usage.get("completion_tokens") or 0)}
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.block is None or self.block[0] != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _event("content_block_delta", {"type": "content_block_delta", "index": self.block[1],  # type: ignore[index]
                                                      "delta": {"type": "text_delta", "text": text}})
            for call in delta.get("tool_calls") or []:
                key = f"tool{call.get('index', 0)}"
                function = call.get("function") or {}
                if call.get("id") or self.block is None or self.block[0] != key:
                    out += self._open(key, {"type": "tool_use", "id": call.get("id") or "toolu_" + uuid.uuid4().hex[:24],
                                            "name": function.get("name") or "", "input": {}})
                if function.get("arguments"):
                    out += _event("content_block_delta", {"type": "content_block_delta", "index": self.block[1],  # type: ignore[index]
                                                          "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}})
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def finish(self) -> bytes:
        out = (b"" if self.started else self._start()) + self._close()
        out += _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                                        "usage": self.usage})
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, error: GatewayError) -> bytes:
        return b"event: error\ndata: " + error_body(error) + b"\n\n"


def stream_encoder(model: str, *, include_usage: bool) -> StreamEncoder:
    return StreamEncoder(model, include_usage=include_usage)


def embeddings_request_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    raise not_found("Anthropic's API has no embeddings endpoint.", code="unknown_url")


def embeddings_to_internal(request: InboundChat) -> dict[str, Any]:
    raise not_found("Anthropic's API has no embeddings endpoint.", code="unknown_url")


def embeddings_encode(data: dict[str, Any], request: InboundChat) -> bytes:
    raise not_found("Anthropic's API has no embeddings endpoint.", code="unknown_url")


# --- models ------------------------------------------------------------------------------------

def model_object(group: ModelGroup) -> dict[str, Any]:
    created = datetime.fromtimestamp(group.created, UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": group.name, "display_name": group.name, "created_at": created}


def models_page(models: list[dict[str, Any]]) -> bytes:
    page = {"data": models, "has_more": False, "first_id": models[0]["id"] if models else None,
            "last_id": models[-1]["id"] if models else None}
    return orjson.dumps(page)
