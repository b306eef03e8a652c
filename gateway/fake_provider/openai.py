"""The fake's OpenAI wire format: Chat Completions (also at Azure's deployment URLs),
Embeddings and Models, as OpenAI's API reference describes them."""

from __future__ import annotations

import base64
import re
import struct
import uuid
from typing import Any

import orjson

from .core import (
    MAX_CHOICES,
    Prompt,
    Receive,
    Send,
    Tool,
    answer_plan,
    count_words,
    embedding_for,
    embedding_problem,
    fault_before_answer,
    model_shown,
    non_stream_wait,
    now,
    paced,
    read_json,
    request_directives,
    send_json,
    size_problem,
    sse_end,
    sse_start,
    timing_for,
)

ERRORS = {
    400: ("invalid_request_error", "Fake upstream rejected the request."),
    401: ("invalid_request_error", "Incorrect API key provided (fake upstream)."),
    403: ("invalid_request_error", "Fake upstream: permission denied."),
    404: ("invalid_request_error", "Fake upstream: the model does not exist."),
    429: ("rate_limit_error", "Fake upstream: rate limit reached."),
    500: ("server_error", "Fake upstream: internal error."),
    503: ("server_error", "Fake upstream: overloaded."),
}
FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls"}


async def error_send(send: Send, status: int) -> None:
    kind, message = ERRORS.get(status, ("server_error", f"Fake upstream error {status}."))
    headers = [(b"retry-after", b"1")] if status in (429, 503) else []
    code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
    await send_json(send, status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_parse(payload: dict[str, Any]) -> Prompt:
    messages = payload.get("messages") or []
    last_user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    tail_results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        tail_results.insert(0, _text_of(message.get("content")))
    images = 0
    if isinstance(last_user.get("content"), list):
        images = sum(1 for p in last_user["content"] if isinstance(p, dict) and p.get("type") == "image_url")
    tools = [Tool(t["function"]["name"], t["function"].get("parameters") or {})
             for t in payload.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name")
    elif choice == "auto":
        choice = None
    elif choice == "required":
        choice = "any"
    fmt = payload.get("response_format") or {}
    schema = None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif fmt.get("type") == "json_object":
        schema = {"type": "object"}
    stop = payload.get("stop")
    return Prompt(
        last_user_text=_text_of(last_user.get("content")),
        prompt_tokens=sum(count_words(_text_of(m.get("content"))) + 3 for m in messages),
        tools=tools,
        tool_choice=choice,
        json_schema=schema,
        max_tokens=payload.get("max_completion_tokens") or payload.get("max_tokens"),
        stop=[stop] if isinstance(stop, str) else list(stop or []),
        images=images,
        tool_results=tail_results,
    )


def _model_of(payload: dict[str, Any], model_from_path: str | None) -> str:
    """The model asked for: Azure's deployment in the URL, else the body's `model`."""
    model = model_from_path or payload.get("model") or "fake"
    return model if isinstance(model, str) else str(model)


async def invalid_send(send: Send, param: str, message: str) -> None:
    await send_json(send, 400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}})


async def chat(scope: dict[str, Any], receive: Receive, send: Send, model_from_path: str | None) -> None:
    payload = await read_json(receive)
    if problem := size_problem("n", payload.get("n"), MAX_CHOICES):
        return await invalid_send(send, "n", problem)
    prompt = prompt_parse(payload)
    model = _model_of(payload, model_from_path)
    directives = request_directives(model, prompt.last_user_text)
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    answer = answer_plan(prompt, directives)
    timing = timing_for(directives)
    model = model_shown(model)
    created = now()
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    usage = {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
             "total_tokens": answer.input_tokens + answer.output_tokens,
             "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    tool_calls: list[dict[str, Any]] = [{"id": c.id, "type": "function",
                   "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()}}
                  for c in answer.tool_calls]
    finish = FINISH[answer.finish]
    if not payload.get("stream"):
        await non_stream_wait(timing)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        body: dict[str, Any] = {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                        for i in range(int(payload.get("n") or 1))],
            "system_fingerprint": "fp_fake",
        }
        if answer.usage:
            body["usage"] = usage
        await send_json(send, 200, body)
        return
    include_usage = answer.usage and bool((payload.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        data: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                "model": model, "system_fingerprint": "fp_fake",
                                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            data["usage"] = None
        return b"data: " + orjson.dumps(data) + b"\n\n"

    deltas: list[dict[str, Any]] = [{"content": piece} for piece in answer.pieces]
    for index, call in enumerate(tool_calls):
        arguments = call["function"]["arguments"]
        deltas.append({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                       "function": {"name": call["function"]["name"], "arguments": ""}}]})
        for start in range(0, len(arguments), 10):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": arguments[start:start + 10]}}]})
    await sse_start(send)
    first = True
    async for delta in paced(deltas, timing, directives):
        if first:
            delta = {"role": "assistant", "content": None, **delta} if "tool_calls" in delta else {"role": "assistant", **delta}
            first = False
        await send({"type": "http.response.body", "body": chunk(delta, None), "more_body": True})
    await send({"type": "http.response.body", "body": chunk({}, finish), "more_body": True})
    if include_usage:
        tail: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake", "choices": [], "usage": usage}
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(tail) + b"\n\n", "more_body": True})
    await sse_end(send, b"data: [DONE]\n\n")


def _vector_encode(values: list[float], encoding: str) -> list[float] | str:
    """OpenAI's `encoding_format`: "base64" is the vector's little-endian float32 bytes, in base64."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


async def embeddings(scope: dict[str, Any], receive: Receive, send: Send, model_from_path: str | None) -> None:
    payload = await read_json(receive)
    inputs = payload.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    if refused := embedding_problem(len(texts), payload.get("dimensions"), inputs_name="input", dimensions_name="dimensions"):
        return await invalid_send(send, *refused)
    model = _model_of(payload, model_from_path)
    directives = request_directives(model, " ".join(t for t in texts if isinstance(t, str)))
    status = await fault_before_answer(directives, receive)
    if status is not None:
        await error_send(send, status)
        return
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        await error_send(send, 400)
        return
    dimensions = int(payload.get("dimensions") or 16)
    data = [{"object": "embedding", "index": i, "embedding": _vector_encode(embedding_for(str(t), dimensions), encoding)}
            for i, t in enumerate(texts)]
    tokens = sum(count_words(str(t)) for t in texts)
    await send_json(send, 200, {"object": "list", "data": data, "model": model_shown(model),
                                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


async def handle(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    path = scope["path"]
    azure = re.search(r"/openai/deployments/([^/]+)/", path)
    deployment = azure.group(1) if azure else None
    if scope["method"] == "POST" and path.endswith("/chat/completions"):
        await chat(scope, receive, send, deployment)
    elif scope["method"] == "POST" and path.endswith("/embeddings"):
        await embeddings(scope, receive, send, deployment)
    elif scope["method"] == "GET" and path.endswith("/models"):
        await send_json(send, 200, {"object": "list", "data": [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})
    else:
        await send_json(send, 404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error",
                                              "param": None, "code": None}})
