"""The fake's Cohere wire format: API v2 Chat (`POST /v2/chat`, streamed when the body
says `"stream": true`) and Embed (`POST /v2/embed`), as Cohere's v2 reference and the
official `cohere` SDK describe them.

Requests the real API would refuse get its 400 (unknown fields, a missing model or
input_type, `p` out of range, response_format with tools...), so adapter mistakes show
up in tests instead of passing silently. Errors use Cohere's shape: {"id", "message"}.
"""

from __future__ import annotations

import base64
import struct
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
    embedding_for,
    fault_before_answer,
    non_stream_wait,
    paced,
    read_json,
    request_directives,
    send_json,
    sse_end,
    sse_start,
    timing_for,
)

CHAT_FIELDS = frozenset({
    "model", "messages", "stream", "tools", "strict_tools", "documents", "citation_options", "response_format",
    "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty",
    "k", "p", "logprobs", "tool_choice", "thinking", "priority",
})
EMBED_FIELDS = frozenset({
    "model", "input_type", "texts", "images", "inputs", "max_tokens", "output_dimension", "embedding_types",
    "truncate", "priority",
})
ROLES = ("system", "user", "assistant", "tool")
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
OUTPUT_DIMENSIONS = (256, 512, 1024, 1536)
MAX_TEXTS = 96
ERRORS = {
    400: "invalid request: the fake upstream rejected the request.",
    401: "invalid api token",
    402: "Please add or update your payment method at https://dashboard.cohere.com/billing (fake upstream).",
    403: "forbidden: this key cannot use the requested model (fake upstream).",
    404: "model 'fake' not found, make sure the correct model ID was used and that you have access to the model.",
    422: "unprocessable entity (fake upstream).",
    429: "You are past the rate limit for this key (fake upstream). Please wait and try again.",
    499: "request cancelled by user",
    500: "internal server error, this has been reported to our developers (fake upstream).",
    503: "service unavailable: the fake upstream is overloaded.",
}
FINISH = {"stop": "COMPLETE", "stop_sequence": "STOP_SEQUENCE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}


class Invalid(Exception):
    """A request the real API answers with 400; the message is Cohere's wording."""


async def error_send(send: Send, status: int, message: str | None = None) -> None:
    headers = [(b"retry-after", b"1")] if status in (429, 503) else []
    body = {"id": str(uuid.uuid4()), "message": message or ERRORS.get(status, f"fake upstream error {status}")}
    await send_json(send, status, body, headers)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise Invalid("invalid request: " + message)


def _unknown_fields_check(payload: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in payload:
        _need(name in allowed, f"unknown field: parameter {name} is not a valid field")


def _text_of(content: Any) -> str:
    """The text a message carries: a string, or its text (and tool document) parts."""
    if isinstance(content, str):
        return content
    texts = []
    for part in content if isinstance(content, list) else []:
        if part.get("type") == "text":
            texts.append(part.get("text", ""))
        elif part.get("type") == "document":
            data = (part.get("document") or {}).get("data")
            texts.append(data if isinstance(data, str) else orjson.dumps(data).decode())
    return " ".join(texts)


def _content_check(content: Any, where: str, kinds: tuple[str, ...]) -> None:
    if isinstance(content, str):
        return
    _need(isinstance(content, list), f"{where}.content must be a string or a list of content blocks")
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        _need(kind in kinds, f"{where}.content[{j}].type must be one of: {', '.join(kinds)}")
        if kind == "text":
            _need(isinstance(part.get("text"), str), f"{where}.content[{j}].text must be a string")
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            _need(isinstance(url, str) and url.startswith(("data:image/", "http://", "https://")),
                  f"{where}.content[{j}].image_url.url must be a base64 data URI or a web URL")
        elif kind == "document":
            _need(isinstance(part.get("document"), dict) and "data" in part["document"],
                  f"{where}.content[{j}].document.data is required")


def _messages_check(messages: Any) -> None:
    _need(isinstance(messages, list) and len(messages) > 0, "messages must contain at least one message")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        _need(isinstance(message, dict), f"{where} must be an object")
        role = message.get("role")
        _need(role in ROLES, f"{where}.role must be one of: {', '.join(ROLES)}")
        content = message.get("content")
        if role == "system":
            _need(content is not None, f"{where}.content is required")
            _content_check(content, where, ("text",))
        elif role == "user":
            _need(content is not None, f"{where}.content is required")
            _content_check(content, where, ("text", "image_url"))
        elif role == "tool":
            _need(isinstance(message.get("tool_call_id"), str), f"{where}.tool_call_id is required")
            _need(content is not None, f"{where}.content is required")
            _content_check(content, where, ("text", "document"))
        else:
            calls = message.get("tool_calls")
            _need(content is not None or bool(calls), "message must not be empty in a turn")
            if content is not None:
                _content_check(content, where, ("text", "thinking"))
            for j, call in enumerate(calls or []):
                function = call.get("function") if isinstance(call, dict) else None
                _need(isinstance(call.get("id") if isinstance(call, dict) else None, str) and isinstance(function, dict)
                      and isinstance(function.get("name"), str), f"{where}.tool_calls[{j}] needs an id and a function name")


def _tools_check(tools: Any) -> list[Tool]:
    _need(isinstance(tools, list), "tools must be a list")
    parsed = []
    for i, tool in enumerate(tools):
        _need(isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict),
              f"tools[{i}] must be {{type: function, function: {{...}}}}")
        function: dict[str, Any] = tool["function"]
        _need(isinstance(function.get("name"), str) and function["name"] != "", f"tools[{i}].function.name is required")
        _need(isinstance(function.get("parameters"), dict), f"tools[{i}].function.parameters is required")
        parsed.append(Tool(function["name"], function["parameters"]))
    return parsed


def _number_check(payload: dict[str, Any], name: str, low: float, high: float | None) -> None:
    value = payload.get(name)
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    _need(ok, f"{name} must be between {low} and {high}" if high is not None else f"{name} must be at least {low}")


def prompt_parse(payload: dict[str, Any]) -> Prompt:
    """Check the chat request as the real API would, and reduce it to the fake's Prompt."""
    _unknown_fields_check(payload, CHAT_FIELDS)
    _need(isinstance(payload.get("model"), str) and payload["model"] != "", "model is required")
    _messages_check(payload.get("messages"))
    messages: list[dict[str, Any]] = payload["messages"]
    tools = _tools_check(payload["tools"]) if payload.get("tools") is not None else []
    choice = payload.get("tool_choice")
    _need(choice in (None, "REQUIRED", "NONE"), "tool_choice must be one of: REQUIRED, NONE")
    _need(choice != "REQUIRED" or bool(tools), "tool_choice REQUIRED needs the tools parameter")
    fmt = payload.get("response_format")
    schema = None
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        _need(kind in ("text", "json_object"), "response_format.type must be one of: text, json_object")
        _need(kind == "json_object" or "json_schema" not in fmt, "json_schema can only be used with type json_object")
        _need(kind == "text" or not tools, "response_format is not supported with tools")
        if kind == "json_object":
            schema = fmt.get("json_schema") or {"type": "object"}
    _number_check(payload, "p", 0.01, 0.99)
    _number_check(payload, "k", 0, 500)
    _number_check(payload, "temperature", 0, None)
    _number_check(payload, "frequency_penalty", 0, 1)
    _number_check(payload, "presence_penalty", 0, 1)
    _number_check(payload, "max_tokens", 1, None)
    stop = payload.get("stop_sequences")
    _need(stop is None or (isinstance(stop, list) and len(stop) <= 5 and all(isinstance(s, str) for s in stop)),
          "stop_sequences must be a list of up to 5 strings")
    last_user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text_of(message.get("content")))
    content = last_user.get("content")
    images = sum(1 for p in content if p.get("type") == "image_url") if isinstance(content, list) else 0
    return Prompt(
        last_user_text=_text_of(content),
        prompt_tokens=sum(count_words(_text_of(m.get("content"))) + 3 for m in messages),
        tools=tools,
        tool_choice={"REQUIRED": "any", "NONE": "none"}.get(choice or ""),
        json_schema=schema,
        max_tokens=payload.get("max_tokens"),
        stop=list(stop or []),
        images=images,
        tool_results=results,
    )


def _usage(answer: Answer) -> dict[str, Any]:
    counts = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
    return {"billed_units": dict(counts), "tokens": dict(counts)}


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    """Cohere names its call ids after the tool: `get_weather_1byjy32y4hvq`."""
    return [{"id": f"{c.name}_{c.id[-12:]}", "type": "function",
             "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()}} for c in answer.tool_calls]


def _tool_plan(answer: Answer) -> str:
    names = " and ".join(c.name for c in answer.tool_calls)
    return f"I will use {names} to answer this."


def _event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _body_read(receive: Receive) -> Any:
    try:
        return await read_json(receive)
    except orjson.JSONDecodeError:
        return None


async def chat(receive: Receive, send: Send) -> None:
    payload = await _body_read(receive)
    try:
        _need(isinstance(payload, dict), "the request body must be a JSON object")
        prompt = prompt_parse(payload)
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    directives = request_directives(payload["model"], prompt.last_user_text)
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    answer = answer_plan(prompt, directives)
    timing = timing_for(directives)
    finish = FINISH[answer.finish]
    calls = _tool_calls(answer)
    if not payload.get("stream"):
        await non_stream_wait(timing)
        message: dict[str, Any] = {"role": "assistant"}
        if calls:
            message["tool_plan"] = _tool_plan(answer)
            message["tool_calls"] = calls
        else:
            message["content"] = [{"type": "text", "text": answer.text}]
        body: dict[str, Any] = {"id": str(uuid.uuid4()), "finish_reason": finish, "message": message}
        if answer.usage:
            body["usage"] = _usage(answer)
        await send_json(send, 200, body)
        return
    events: list[bytes] = []
    for piece in answer.pieces:
        events.append(_event({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}))
    if calls:
        words = _tool_plan(answer).split()
        events.extend(_event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": w if i == 0 else " " + w}}})
                      for i, w in enumerate(words))
    for index, call in enumerate(calls):
        arguments = call["function"]["arguments"]
        start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        events.append(_event({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}}))
        for at in range(0, len(arguments), 10):
            fragment = {"function": {"arguments": arguments[at:at + 10]}}
            events.append(_event({"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls": fragment}}}))
        events.append(_event({"type": "tool-call-end", "index": index}))
    await sse_start(send)
    start_message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    head = _event({"id": str(uuid.uuid4()), "type": "message-start", "delta": {"message": start_message}})
    if not calls:
        head += _event({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})
    await send({"type": "http.response.body", "body": head, "more_body": True})
    async for event in paced(events, timing, directives):
        await send({"type": "http.response.body", "body": event, "more_body": True})
    end: dict[str, Any] = {"finish_reason": finish}
    if answer.usage:
        end["usage"] = _usage(answer)
    tail = b"" if calls else _event({"type": "content-end", "index": 0})
    tail += _event({"type": "message-end", "delta": end})
    await sse_end(send, tail + b"data: [DONE]\n\n")


def _embeddings_of(vectors: list[list[float]], kind: str) -> list[Any]:
    """One embedding type of the float vectors, as Cohere encodes it."""
    if kind == "float":
        return vectors
    if kind == "int8":
        return [[max(-128, min(127, round(v * 127))) for v in vec] for vec in vectors]
    if kind == "uint8":
        return [[max(0, min(255, round((v + 1) * 127.5))) for v in vec] for vec in vectors]
    if kind == "base64":
        return [base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() for vec in vectors]
    packed = []
    for vec in vectors:
        bits = [1 if v > 0 else 0 for v in vec]
        row = [int("".join(map(str, bits[i:i + 8])).ljust(8, "0"), 2) for i in range(0, len(bits), 8)]
        packed.append(row if kind == "ubinary" else [b - 256 if b > 127 else b for b in row])
    return packed


def embed_check(payload: Any) -> list[str]:
    _need(isinstance(payload, dict), "the request body must be a JSON object")
    _unknown_fields_check(payload, EMBED_FIELDS)
    _need(isinstance(payload.get("model"), str) and payload["model"] != "", "model is required")
    _need(payload.get("input_type") in INPUT_TYPES, "valid input_type must be provided with the provided model")
    texts = payload.get("texts")
    _need(texts is not None or payload.get("images") is not None or payload.get("inputs") is not None,
          "one of texts, images or inputs must be provided")
    texts = texts or []
    _need(isinstance(texts, list) and all(isinstance(t, str) for t in texts), "texts must be a list of strings")
    _need(len(texts) <= MAX_TEXTS, f"total number of texts must be at most {MAX_TEXTS} - received {len(texts)}")
    kinds = payload.get("embedding_types") or ["float"]
    _need(isinstance(kinds, list) and all(k in EMBEDDING_TYPES for k in kinds),
          f"embedding_types must be a list of: {', '.join(EMBEDDING_TYPES)}")
    dimension = payload.get("output_dimension")
    _need(dimension is None or dimension in OUTPUT_DIMENSIONS,
          f"output_dimension must be one of: {', '.join(map(str, OUTPUT_DIMENSIONS))}")
    return texts


async def embed(receive: Receive, send: Send) -> None:
    payload = await _body_read(receive)
    try:
        texts = embed_check(payload)
    except Invalid as exc:
        await error_send(send, 400, str(exc))
        return
    directives = request_directives(payload["model"], " ".join(texts))
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    vectors = [embedding_for(t, int(payload.get("output_dimension") or 16)) for t in texts]
    embeddings = {kind: _embeddings_of(vectors, kind) for kind in payload.get("embedding_types") or ["float"]}
    tokens = sum(count_words(t) for t in texts)
    await send_json(send, 200, {
        "id": str(uuid.uuid4()), "embeddings": embeddings, "texts": texts, "response_type": "embeddings_by_type",
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
    })


def _authorized(scope: dict[str, Any]) -> bool:
    header = dict(scope.get("headers") or []).get(b"authorization", b"")
    return header[:7].lower() == b"bearer " and len(header) > 7


async def handle(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    path = scope["path"]
    if scope["method"] == "POST" and path in ("/v2/chat", "/v2/embed"):
        if not _authorized(scope):
            await error_send(send, 401, "no api key supplied")
        elif path == "/v2/chat":
            await chat(receive, send)
        else:
            await embed(receive, send)
    else:
        await error_send(send, 404, f"{scope['method']} {path} not found")
