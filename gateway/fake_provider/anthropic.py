"""The fake's Anthropic wire format: Messages (`POST /v1/messages`, streamed when the
body says `"stream": true`) and token counting (`POST /v1/messages/count_tokens`), as
Anthropic's API reference and the official `anthropic` SDK describe them.

Requests the real API would refuse get its 400 in its wording (a missing `max_tokens`
or `anthropic-version` header, unknown fields, a `system` role message, `temperature`
above 1, `tool_use` blocks without their `tool_result` in the next message, image media
types it does not take...), so adapter mistakes show up in tests. Errors use Anthropic's
shape: {"type": "error", "error": {"type", "message"}, "request_id"}.

Two directives only this wire knows, on top of core.py's:
  [[fake:cached=N]]      report N of the prompt's tokens as cache_read_input_tokens
                         (input_tokens then counts only the rest, as Anthropic does)
  [[fake:stream_error]]  stream half the answer, then an `event: error` (overloaded_error)
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from .core import (
    Answer,
    Prompt,
    Receive,
    Send,
    Tool,
    answer_plan,
    count_words,
    fault_before_answer,
    model_shown,
    non_stream_wait,
    paced,
    read_json,
    request_directives,
    send_json,
    sse_end,
    sse_start,
    timing_for,
)

MESSAGE_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config", "inference_geo", "cache_control", "speed", "diagnostics", "user_profile_id", "workspace_id",
})
COUNT_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management",
    "output_config", "cache_control", "speed", "user_profile_id", "workspace_id",
})
BLOCK_TAGS = ("text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use",
              "tool_result", "server_tool_use", "web_search_tool_result")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
ERRORS = {
    400: ("invalid_request_error", "Fake upstream rejected the request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API (fake upstream)."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource (fake upstream)."),
    404: ("not_found_error", "model: fake (fake upstream)"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (fake upstream)."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (fake upstream)."),
    500: ("api_error", "Internal server error (fake upstream)."),
    504: ("timeout_error", "Request timed out (fake upstream)."),
    529: ("overloaded_error", "Overloaded"),
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence", "tool_calls": "tool_use"}


class Invalid(Exception):
    """A request the real API answers with 400; the message is Anthropic's wording."""


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


async def error_send(send: Send, status: int, message: str | None = None) -> None:
    kind, default = ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", f"Fake upstream error {status}."))
    headers = [(b"request-id", _request_id().encode())]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    body = {"type": "error", "error": {"type": kind, "message": message or default}, "request_id": _request_id()}
    await send_json(send, status, body, headers)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise Invalid(message)


# --- request checks (what the real API refuses) -----------------------------------------------

def _text_blocks_check(blocks: Any, where: str) -> None:
    _need(isinstance(blocks, str) or isinstance(blocks, list), f"{where}: Input should be a valid string or list")
    if isinstance(blocks, list):
        for j, block in enumerate(blocks):
            _need(isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str),
                  f"{where}.{j}: Input should be a text block")


def _image_check(block: dict[str, Any], at: str) -> None:
    source: Any = block.get("source")
    _need(isinstance(source, dict), f"{at}.image.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        _need(source.get("media_type") in IMAGE_TYPES,
              f"{at}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
        _need(isinstance(source.get("data"), str) and bool(source["data"]), f"{at}.image.source.base64.data: Field required")
    elif kind == "url":
        _need(isinstance(source.get("url"), str), f"{at}.image.source.url.url: Field required")
    else:
        _need(kind == "file" and isinstance(source.get("file_id"), str),
              f"{at}.image.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
              "'base64', 'url', 'file'")


def _block_check(block: Any, at: str, role: str) -> None:
    _need(isinstance(block, dict), f"{at}: Input should be a valid dictionary or object")
    kind = block.get("type")
    _need(kind in BLOCK_TAGS, f"{at}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                              + ", ".join(f"'{t}'" for t in BLOCK_TAGS))
    if kind == "text":
        _need(isinstance(block.get("text"), str), f"{at}.text.text: Field required")
        _need(bool(block["text"]), f"{at}: text content blocks must be non-empty")
    elif kind == "image":
        _image_check(block, at)
    elif kind == "tool_use":
        _need(role == "assistant", f"{at}: tool_use blocks are only allowed in assistant messages")
        _need(isinstance(block.get("id"), str) and bool(block["id"]), f"{at}.tool_use.id: Field required")
        _need(isinstance(block.get("name"), str), f"{at}.tool_use.name: Field required")
        _need(isinstance(block.get("input"), dict), f"{at}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        _need(role == "user", f"{at}: tool_result blocks are only allowed in user messages")
        _need(isinstance(block.get("tool_use_id"), str), f"{at}.tool_result.tool_use_id: Field required")
        content = block.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                _need(isinstance(part, dict) and part.get("type") in ("text", "image", "document", "search_result"),
                      f"{at}.tool_result.content.{k}: Input should be a text, image, document or search_result block")
        else:
            _need(content is None or isinstance(content, str), f"{at}.tool_result.content: Input should be a valid string or list")
        _need(block.get("is_error") is None or isinstance(block["is_error"], bool),
              f"{at}.tool_result.is_error: Input should be a valid boolean")


def _tool_ids(content: Any, kind: str) -> list[str]:
    if not isinstance(content, list):
        return []
    key = "id" if kind == "tool_use" else "tool_use_id"
    return [b[key] for b in content if b.get("type") == kind]


def _messages_check(messages: Any) -> None:
    _need(messages is not None, "messages: Field required")
    _need(isinstance(messages, list), "messages: Input should be a valid list")
    _need(bool(messages), "messages: at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        _need(isinstance(message, dict), f"messages.{i}: Input should be a valid dictionary or object")
        for key in message:
            _need(key in ("role", "content"), f"messages.{i}.{key}: Extra inputs are not permitted")
        role = message.get("role")
        _need(role != "system", 'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                                'parameter, not "system" as an input message role.')
        _need(role in ("user", "assistant"), f"messages.{i}.role: Input should be 'user' or 'assistant'")
        _need("content" in message, f"messages.{i}.content: Field required")
        content = message["content"]
        _need(isinstance(content, (str, list)), f"messages.{i}.content: Input should be a valid string or list")
        if not content:
            _need(i == last and role == "assistant", f"messages.{i}: all messages must have non-empty content except "
                                                     "for the optional final assistant message")
        if isinstance(content, list):
            for j, block in enumerate(content):
                _block_check(block, f"messages.{i}.content.{j}", role)
    for i, message in enumerate(messages):
        uses = _tool_ids(message["content"], "tool_use") if message["role"] == "assistant" else []
        following = messages[i + 1] if i < last else None
        results = _tool_ids(following["content"], "tool_result") if following and following["role"] == "user" else []
        missing = [u for u in uses if u not in results]
        _need(not missing, f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                           f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                           "in the next message.")
        if message["role"] == "user" and isinstance(message["content"], list):
            previous = messages[i - 1] if i else None
            offered = _tool_ids(previous["content"], "tool_use") if previous and previous["role"] == "assistant" else []
            for j, block in enumerate(message["content"]):
                if block.get("type") == "tool_result":
                    _need(block["tool_use_id"] in offered,
                          f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                          f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` "
                          "block in the previous message.")


def _tools_check(tools: Any, choice: Any) -> None:
    if tools is not None:
        _need(isinstance(tools, list), "tools: Input should be a valid list")
        names = []
        for i, tool in enumerate(tools):
            _need(isinstance(tool, dict) and isinstance(tool.get("name"), str), f"tools.{i}.name: Field required")
            if tool.get("type") not in (None, "custom"):
                continue  # server tools (web search, code execution...) have their own shapes
            _need(bool(TOOL_NAME.match(tool["name"])), f"tools.{i}.custom.name: String should match pattern "
                                                       "'^[a-zA-Z0-9_-]{1,128}$'")
            schema = tool.get("input_schema")
            _need(schema is not None, f"tools.{i}.custom.input_schema: Field required")
            _need(isinstance(schema, dict) and schema.get("type") == "object",
                  f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            for key in tool:
                _need(key in ("name", "description", "input_schema", "type", "cache_control", "strict", "input_examples",
                              "defer_loading", "allowed_callers", "eager_input_streaming"),
                      f"tools.{i}.custom.{key}: Extra inputs are not permitted")
            names.append(tool["name"])
        _need(len(names) == len(set(names)), "tools: Tool names must be unique.")
    if choice is None:
        return
    _need(isinstance(choice, dict) and choice.get("type") in ("auto", "any", "tool", "none"),
          "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    if choice["type"] == "tool":
        _need(isinstance(choice.get("name"), str), "tool_choice.tool.name: Field required")
    if choice["type"] in ("any", "tool"):
        _need(bool(tools), "tool_choice: tool_choice may only be specified while providing tools.")
    if choice["type"] == "none":
        _need("disable_parallel_tool_use" not in choice, "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted")


def _number_check(payload: dict[str, Any], name: str, high: float | None) -> None:
    value = payload.get(name)
    if value is None:
        return
    _need(isinstance(value, (int, float)) and not isinstance(value, bool), f"{name}: Input should be a valid number")
    _need(value >= 0, f"{name}: Input should be greater than or equal to 0")
    if high is not None:
        _need(value <= high, f"{name}: Input should be less than or equal to {high:g}")


def request_check(payload: Any, *, count_only: bool) -> None:
    """Raise Invalid with the real API's message for a request it would refuse."""
    _need(isinstance(payload, dict), "Input should be a valid dictionary or object")
    allowed = COUNT_FIELDS if count_only else MESSAGE_FIELDS
    for key in payload:
        _need(key in allowed, f"{key}: Extra inputs are not permitted")
    _need(isinstance(payload.get("model"), str) and bool(payload["model"]), "model: Field required")
    if not count_only:
        max_tokens = payload.get("max_tokens")
        _need(max_tokens is not None, "max_tokens: Field required")
        _need(isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0,
              "max_tokens: Input should be a valid integer greater than or equal to 0")
        _number_check(payload, "temperature", 1)
        _number_check(payload, "top_p", 1)
        _number_check(payload, "top_k", None)
        stop = payload.get("stop_sequences")
        _need(stop is None or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)),
              "stop_sequences: Input should be a valid list of strings")
        _need(payload.get("stream") is None or isinstance(payload["stream"], bool), "stream: Input should be a valid boolean")
        metadata = payload.get("metadata")
        if metadata is not None:
            _need(isinstance(metadata, dict), "metadata: Input should be a valid dictionary")
            for key in metadata:
                _need(key == "user_id", f"metadata.{key}: Extra inputs are not permitted")
    if payload.get("system") is not None:
        _text_blocks_check(payload["system"], "system")
    _messages_check(payload.get("messages"))
    _tools_check(payload.get("tools"), payload.get("tool_choice"))
    fmt = (payload.get("output_config") or {}).get("format")
    if fmt is not None:
        _need(isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict),
              "output_config.format: expected {type: 'json_schema', schema: {...}}")


# --- request -> neutral prompt -------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _only_tool_results(content: Any) -> bool:
    return isinstance(content, list) and bool(content) and all(b.get("type") == "tool_result" for b in content)


def _message_words(content: Any) -> int:
    """The fake's token count of one message: its text and its tool results' text."""
    words = count_words(_text_of(content))
    if isinstance(content, list):
        words += sum(count_words(_text_of(b.get("content"))) for b in content if b.get("type") == "tool_result")
    return words


def prompt_parse(payload: dict[str, Any]) -> Prompt:
    messages = payload["messages"]
    last_user: dict[str, Any] = next((m for m in reversed(messages) if m["role"] == "user" and not _only_tool_results(m["content"])), {})
    tail = messages[-1]
    results = []
    if tail["role"] == "user" and isinstance(tail["content"], list):
        results = [_text_of(b.get("content")) for b in tail["content"] if b.get("type") == "tool_result"]
    content = last_user.get("content")
    images = sum(1 for b in content if b.get("type") == "image") if isinstance(content, list) else 0
    tokens = sum(_message_words(m["content"]) + 3 for m in messages)
    if payload.get("system"):
        tokens += count_words(_text_of(payload["system"])) + 3
    tools = [Tool(t["name"], t.get("input_schema") or {}) for t in payload.get("tools") or [] if t.get("type") in (None, "custom")]
    choice = payload.get("tool_choice") or {}
    kind = choice.get("type")
    fmt = (payload.get("output_config") or {}).get("format")
    return Prompt(
        last_user_text=_text_of(content),
        prompt_tokens=tokens,
        tools=tools,
        tool_choice=choice.get("name") if kind == "tool" else (kind if kind in ("any", "none") else None),
        json_schema=fmt["schema"] if fmt else None,
        max_tokens=payload.get("max_tokens"),
        stop=list(payload.get("stop_sequences") or []),
        images=images,
        tool_results=results,
    )


# --- answers --------------------------------------------------------------------------------------

def _usage(answer: Answer, directives: dict[str, str], output_tokens: int) -> dict[str, Any]:
    cached = min(int(directives.get("cached") or 0), answer.input_tokens)
    return {"input_tokens": answer.input_tokens - cached, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": output_tokens, "service_tier": "standard"}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _stream_events(answer: Answer, tool_ids: list[str]) -> list[bytes]:
    """Content block events (start, deltas, stop) for the answer, in order."""
    events: list[bytes] = []
    index = 0
    if answer.pieces or not answer.tool_calls:
        events.append(_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                     "content_block": {"type": "text", "text": ""}}))
        events.append(_event("ping", {"type": "ping"}))
        for piece in answer.pieces:
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                         "delta": {"type": "text_delta", "text": piece}}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for call, call_id in zip(answer.tool_calls, tool_ids, strict=True):
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": call_id, "name": call.name, "input": {}}}))
        arguments = orjson.dumps(call.arguments).decode()
        for start in range(0, len(arguments), 10):
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": arguments[start:start + 10]}}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    return events


async def messages(scope: dict[str, Any], receive: Receive, send: Send, *, count_only: bool) -> None:
    try:
        payload = await read_json(receive)
    except orjson.JSONDecodeError:
        await error_send(send, 400, "There was an issue with the request body: it is not valid JSON.")
        return
    headers = dict(scope.get("headers") or [])
    try:
        _need(b"anthropic-version" in headers, "anthropic-version: header is required")
        request_check(payload, count_only=count_only)
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    prompt = prompt_parse(payload)
    directives = request_directives(payload["model"], prompt.last_user_text)
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    if count_only:
        await send_json(send, 200, {"input_tokens": prompt.prompt_tokens})
        return
    if (payload.get("tool_choice") or {}).get("disable_parallel_tool_use"):
        directives.pop("parallel", None)
    answer = answer_plan(prompt, directives)
    timing = timing_for(directives)
    tool_ids = ["toolu_" + uuid.uuid4().hex[:24] for _ in answer.tool_calls]
    message: dict[str, Any] = {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                               "model": model_shown(payload["model"]), "content": [], "stop_reason": None, "stop_sequence": None}
    stop_reason = STOP_REASONS[answer.finish]
    if not payload.get("stream"):
        await non_stream_wait(timing)
        if answer.text or not answer.tool_calls:
            message["content"].append({"type": "text", "text": answer.text})
        message["content"] += [{"type": "tool_use", "id": i, "name": c.name, "input": c.arguments}
                               for c, i in zip(answer.tool_calls, tool_ids, strict=True)]
        message["stop_reason"], message["stop_sequence"] = stop_reason, answer.stop_sequence
        if answer.usage:
            message["usage"] = _usage(answer, directives, answer.output_tokens)
        await send_json(send, 200, message, [(b"request-id", _request_id().encode())])
        return
    if answer.usage:
        message["usage"] = _usage(answer, directives, 1)
    await sse_start(send)
    await send({"type": "http.response.body", "body": _event("message_start", {"type": "message_start", "message": message}),
                "more_body": True})
    events = _stream_events(answer, tool_ids)
    half = len(events) // 2
    async for i, event in paced(list(enumerate(events)), timing, directives):
        if "stream_error" in directives and i == half:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": _request_id()}
            await sse_end(send, _event("error", error))
            return
        await send({"type": "http.response.body", "body": event, "more_body": True})
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": answer.stop_sequence}}
    if answer.usage:
        delta["usage"] = {"output_tokens": answer.output_tokens}
    await send({"type": "http.response.body", "body": _event("message_delta", delta), "more_body": True})
    await sse_end(send, _event("message_stop", {"type": "message_stop"}))


async def handle(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    path = scope["path"].rstrip("/")
    if scope["method"] == "POST" and path == "/v1/messages":
        await messages(scope, receive, send, count_only=False)
    elif scope["method"] == "POST" and path == "/v1/messages/count_tokens":
        await messages(scope, receive, send, count_only=True)
    else:
        await error_send(send, 404, f"Not found: {scope['method']} {scope['path']}")
