"""The built-in fake upstream: an ASGI app that speaks OpenAI's Chat Completions wire
format (Azure's deployment URLs too), for the demo, the tests and the benchmarks.

Behaviour comes from environment defaults and, per request, from directives in the
last user message, e.g. ``[[fake:status=429]]``, ``[[fake:hang]]``, ``[[fake:cut]]``,
``[[fake:latency_ms=200]]``, ``[[fake:words=40]]``, ``[[fake:no_usage]]``.

Run: ``uvicorn gateway.fake_provider:app --port 8100``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from typing import Any

import orjson

DIRECTIVE = re.compile(r"\[\[fake:([a-z_]+)(?:=([^\]]*))?\]\]")
DEFAULTS = {
    "latency_ms": float(os.environ.get("FAKE_LATENCY_MS", "0")),
    "ttft_ms": float(os.environ.get("FAKE_TTFT_MS", "0")),
    "chunk_ms": float(os.environ.get("FAKE_CHUNK_MS", "0")),
    "words": int(os.environ.get("FAKE_WORDS", "12")),
}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_words(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", "")).split()) for p in content if isinstance(p, dict))
    return total + 3 * len(messages)


def _directives(text: str) -> dict[str, str]:
    return {name: value or "" for name, value in DIRECTIVE.findall(text)}


def _answer_words(prompt: str, count: int) -> list[str]:
    topic = DIRECTIVE.sub("", prompt).strip().split()[:6]
    base = ["This", "is", "a", "fake", "answer", "about"] + (topic or ["nothing"]) + ["."]
    words = []
    while len(words) < count:
        words.extend(base)
    return words[:count]


async def _read_json(receive: Any) -> Any:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return orjson.loads(body) if body else {}


async def _send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")] + (headers or [])})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


def _error(status: int) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
    kinds = {
        400: ("invalid_request_error", "Fake upstream rejected the request."),
        401: ("authentication_error", "Fake upstream: invalid credential."),
        404: ("not_found_error", "Fake upstream: model not found."),
        429: ("rate_limit_error", "Fake upstream: rate limit reached."),
        500: ("server_error", "Fake upstream: internal error."),
        503: ("server_error", "Fake upstream: overloaded."),
    }
    kind, message = kinds.get(status, ("server_error", f"Fake upstream error {status}."))
    headers = [(b"retry-after", b"1")] if status == 429 else []
    return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, headers


async def chat(scope: dict[str, Any], receive: Any, send: Any, model_from_path: str | None = None) -> None:
    payload = await _read_json(receive)
    messages = payload.get("messages") or []
    prompt = _last_user_text(messages)
    directives = _directives(prompt)
    latency = float(directives.get("latency_ms", DEFAULTS["latency_ms"]))
    if "hang" in directives:
        await asyncio.sleep(3600)
    if "status" in directives:
        status, body, headers = _error(int(directives["status"]))
        await _send_json(send, status, body, headers)
        return
    words = _answer_words(prompt, int(directives.get("words", DEFAULTS["words"])))
    model = model_from_path or payload.get("model", "fake")
    created = int(time.time())
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    usage = {"prompt_tokens": _prompt_words(messages), "completion_tokens": len(words),
             "total_tokens": _prompt_words(messages) + len(words)}
    include_usage = "no_usage" not in directives
    if not payload.get("stream"):
        if latency:
            await asyncio.sleep(latency / 1000)
        body: dict[str, Any] = {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            body["usage"] = usage
        await _send_json(send, 200, body)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    ttft = float(directives.get("ttft_ms", DEFAULTS["ttft_ms"])) or latency
    chunk_ms = float(directives.get("chunk_ms", DEFAULTS["chunk_ms"]))
    if ttft:
        await asyncio.sleep(ttft / 1000)

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage and (payload.get("stream_options") or {}).get("include_usage"):
            data["usage"] = None
        return b"data: " + orjson.dumps(data) + b"\n\n"

    await send({"type": "http.response.body", "body": chunk({"role": "assistant", "content": ""}, None), "more_body": True})
    for i, word in enumerate(words):
        if "cut" in directives and i == len(words) // 2:
            raise RuntimeError("fake stream cut")  # the server drops the connection mid-stream
        if chunk_ms and i:
            await asyncio.sleep(chunk_ms / 1000)
        text = word if i == 0 else " " + word
        await send({"type": "http.response.body", "body": chunk({"content": text}, None), "more_body": True})
    await send({"type": "http.response.body", "body": chunk({}, "stop"), "more_body": True})
    if include_usage and (payload.get("stream_options") or {}).get("include_usage"):
        tail = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake", "choices": [], "usage": usage}
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(tail) + b"\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if scope["method"] == "POST" and path.endswith("/chat/completions"):
        match = re.search(r"/openai/deployments/([^/]+)/chat/completions$", path)
        await chat(scope, receive, send, model_from_path=match.group(1) if match else None)
    elif scope["method"] == "GET" and path.endswith("/models"):
        await _send_json(send, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})
    elif path == "/health":
        await _send_json(send, 200, {"ok": True})
    else:
        await _send_json(send, 404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error", "param": None, "code": None}})
