"""What the fake upstream answers, independent of wire format.

Each wire module (openai, anthropic, gemini, cohere) parses its own request into a
`Prompt`, asks `answer_plan` what to say, and writes the `Answer` in its own format,
paced by `Timing`. Behaviour comes from environment defaults and, per request, from
directives in the request's model name and anywhere in the last user message (the
message's win where both set one):

  [[fake:status=429]]    answer with that HTTP error, in the wire's error format
                         (429 carries Retry-After: 1; 529 is Anthropic's overloaded)
  [[fake:rate=P]]        the failures asked for (status, hang, reset, cut) hit only a
                         random share P of requests (0-1); the rest answer normally
  [[fake:hang]]          never answer (the gateway's timeout fires)
  [[fake:reset]]         drop the connection before any response byte
  [[fake:cut]]           stream half the answer, then drop the connection (a
                         non-streamed answer is whole)
  [[fake:fault=NAME]]    obey the named fault set now under NAME through the control
                         endpoint (faults.py: PUT /control/faults/NAME {"status": 503,
                         "rate": 0.3}); its settings override the directives; a NAME
                         nothing set is healthy
  [[fake:latency_ms=N]]  wait N ms before a non-streamed answer (and before the
                         first streamed token unless ttft_ms is given)
  [[fake:ttft_ms=N]]     wait N ms before the first streamed token
  [[fake:tps=N]]         stream N tokens per second after the first
  [[fake:chunk_ms=N]]    wait N ms between streamed chunks (overrides tps)
  [[fake:words=N]]       answer with N words (default 12, at most MAX_WORDS)
  [[fake:no_usage]]      report no usage (the gateway must count tokens itself)
  [[fake:parallel]]      call every offered tool at once (parallel tool calls)
  [[fake:text]]          answer with text even when tools are offered

Directives in the model name let one deployment of a model group always misbehave:
upstream name `gpt-4o-mini-fake[[fake:status=503]]`, or `...[[fake:fault=bench-a]]` to
switch it on and off while the gateway runs. For Gemini the model is the URL path's
(ASGI servers hand it over percent-decoded). Answers echo the model name without its
directives, as a real upstream echoes its own name.

GET /stats counts what the fake saw: requests, streams started, completed and abandoned,
and "by_model": requests per model name as sent (directives included, so two deployments
of one upstream model count apart).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import math
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .faults import fault_directives

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

# counters behind GET /stats, so tests can see what the upstream saw (e.g. that the
# gateway hung up on a stream when its client went away)
STATS = {"requests": 0, "streams_started": 0, "streams_completed": 0, "streams_abandoned": 0}
# requests per model name; past MAX_MODELS names (a fuzzer's), the rest count under OTHER_MODELS
MODEL_COUNTS: dict[str, int] = {}
MAX_MODELS = 10_000
OTHER_MODELS = "(other)"
current_receive: contextvars.ContextVar[Receive | None] = contextvars.ContextVar("current_receive", default=None)

DIRECTIVE = re.compile(r"\[\[fake:([a-z_]+)(?:=([^\]]*))?\]\]")
DIRECTIVE_MARK = "[[fake:"
# what `rate` gates: the directives that make a request fail
FAILURES = ("status", "hang", "reset", "cut", "stream_error")
DEFAULTS = {
    "latency_ms": float(os.environ.get("FAKE_LATENCY_MS", "0")),
    "ttft_ms": float(os.environ.get("FAKE_TTFT_MS", "0")),
    "chunk_ms": float(os.environ.get("FAKE_CHUNK_MS", "0")),
    "tps": float(os.environ.get("FAKE_TPS", "0")),
    "words": int(os.environ.get("FAKE_WORDS", "12")),
}

# The most the fake builds for one request: obeyed, an `n` or `dimensions` near 2**31 would
# take gigabytes. Each wire checks a request's sizes (`size_problem`, `embedding_problem`)
# and answers its own 400 before building anything.
MAX_CHOICES = 128  # OpenAI's limit for n
MAX_EMBEDDING_INPUTS = 2_048  # OpenAI's limit for input items
MAX_EMBEDDING_DIMENSIONS = 4_096
MAX_EMBEDDING_VALUES = 1 << 20  # inputs x dimensions in one answer
MAX_WORDS = 100_000  # [[fake:words=N]]


def size_problem(name: str, value: Any, limit: int, *, low: int = 1) -> str | None:
    """Why a requested size is refused (not an integer from low to limit), or None."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"Invalid type for '{name}': expected an integer."
    if value < low or value > limit:
        return f"Invalid '{name}': expected a value from {low} to {limit}, but got {value} instead."
    return None


def embedding_problem(inputs: int, dimensions: Any, *, inputs_name: str, dimensions_name: str) -> tuple[str, str] | None:
    """(parameter, why) an embeddings request is refused: too many inputs, too many
    dimensions, or too many values in all; None if it is not."""
    if inputs > MAX_EMBEDDING_INPUTS:
        return inputs_name, f"Invalid '{inputs_name}': at most {MAX_EMBEDDING_INPUTS} inputs, but got {inputs} instead."
    problem = size_problem(dimensions_name, dimensions, MAX_EMBEDDING_DIMENSIONS)
    if problem is None and inputs * (dimensions or 16) > MAX_EMBEDDING_VALUES:
        problem = (f"Invalid '{dimensions_name}': {inputs} inputs of {dimensions} dimensions are more than the "
                   f"{MAX_EMBEDDING_VALUES} values this fake upstream returns at once.")
    return (dimensions_name, problem) if problem else None


@dataclass(slots=True)
class Tool:
    name: str
    schema: dict[str, Any]


@dataclass(slots=True)
class Prompt:
    """The parts of a request that change the fake's answer, in neutral form."""

    last_user_text: str
    prompt_tokens: int
    tools: list[Tool] = field(default_factory=list)
    # None: the model decides (it calls a tool when tools are offered); "none": never;
    # "any": must call some tool; any other string: must call that tool
    tool_choice: str | None = None
    json_schema: dict[str, Any] | None = None  # {"type": "object"} for plain JSON mode
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    images: int = 0
    # text of the tool results in the last turn, if the conversation ends with them
    tool_results: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class Answer:
    text: str
    pieces: list[str]  # the text split into streamed chunks ("word" or " word")
    tool_calls: list[ToolCall]
    finish: str  # "stop" | "length" | "stop_sequence" | "tool_calls"
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    usage: bool  # False when [[fake:no_usage]]


@dataclass(slots=True)
class Timing:
    latency_ms: float
    ttft_ms: float
    chunk_ms: float


def directives_parse(text: str) -> dict[str, str]:
    if DIRECTIVE_MARK not in text:  # the common case, on the benchmarks' hot loop: no regex
        return {}
    return {name: value or "" for name, value in DIRECTIVE.findall(text)}


def request_directives(model: str, text: str) -> dict[str, str]:
    """What one request asks of the fake: the model name's directives, the last user
    message's over them, a named fault's over both, then `rate` drawn. Counts the
    request under its model name for GET /stats."""
    model_count(model)
    directives = directives_parse(model)
    directives.update(directives_parse(text))
    if "fault" in directives:
        directives.update(fault_directives(directives["fault"]))
    if "rate" in directives and random.random() >= float(directives["rate"]):
        for key in FAILURES:
            directives.pop(key, None)
    return directives


def model_count(model: str) -> None:
    if model not in MODEL_COUNTS and len(MODEL_COUNTS) >= MAX_MODELS:
        model = OTHER_MODELS
    MODEL_COUNTS[model] = MODEL_COUNTS.get(model, 0) + 1


def model_shown(model: str) -> str:
    """The model name an answer echoes: without the directives in it."""
    return DIRECTIVE.sub("", model) if DIRECTIVE_MARK in model else model


def stats_snapshot() -> dict[str, Any]:
    """GET /stats: the counters and the requests per model name."""
    return {**STATS, "by_model": MODEL_COUNTS}


def count_words(text: str) -> int:
    """The fake's token count: one token per whitespace-separated word."""
    return len(text.split())


def timing_for(directives: dict[str, str]) -> Timing:
    latency = float(directives.get("latency_ms", DEFAULTS["latency_ms"]))
    ttft = float(directives.get("ttft_ms", DEFAULTS["ttft_ms"])) or latency
    chunk = float(directives.get("chunk_ms", DEFAULTS["chunk_ms"]))
    tps = float(directives.get("tps", DEFAULTS["tps"]))
    if not chunk and tps:
        chunk = 1000.0 / tps
    return Timing(latency_ms=latency, ttft_ms=ttft, chunk_ms=chunk)


def value_for_schema(schema: Any, name: str = "value") -> Any:
    """A small value that satisfies a JSON Schema (types, enums, required objects)."""
    if not isinstance(schema, dict):
        return "fake"
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(combinator), list) and schema[combinator]:
            return value_for_schema(schema[combinator][0], name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = kind.lower() if isinstance(kind, str) else kind  # Gemini spells types in capitals
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {key: value_for_schema(sub, key) for key, sub in props.items()}
    if kind == "array":
        return [value_for_schema(schema.get("items") or {"type": "string"}, name)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"fake {name}"


def _words(prompt: Prompt, count: int) -> list[str]:
    topic = DIRECTIVE.sub("", prompt.last_user_text).strip().split()[:6]
    base = ["This", "is", "a", "fake", "answer", "about"] + (topic or ["nothing"]) + ["."]
    if prompt.images:
        base = ["I", "see", str(prompt.images), "image" if prompt.images == 1 else "images", "."] + base
    if prompt.tool_results:
        base = ["The", "tool", "said:"] + " ".join(prompt.tool_results).split()[:8] + ["."]
    words: list[str] = []
    while len(words) < count:
        words.extend(base)
    return words[: max(count, 1)]


def call_id(prefix: str = "call_") -> str:
    return prefix + uuid.uuid4().hex[:24]


def answer_plan(prompt: Prompt, directives: dict[str, str]) -> Answer:
    usage = "no_usage" not in directives
    tools = prompt.tools
    wants_tool = (
        tools
        and prompt.tool_choice != "none"
        and not prompt.tool_results
        and "text" not in directives
    )
    if wants_tool:
        if prompt.tool_choice not in (None, "any", "none"):
            chosen = [t for t in tools if t.name == prompt.tool_choice] or tools[:1]
        elif "parallel" in directives:
            chosen = list(tools)
        else:
            chosen = tools[:1]
        calls = [ToolCall(call_id(), t.name, value_for_schema(t.schema)) for t in chosen]
        output = sum(count_words(orjson.dumps(c.arguments).decode()) + 3 for c in calls)
        return Answer("", [], calls, "tool_calls", None, prompt.prompt_tokens, output, usage)
    if prompt.json_schema is not None:
        value = value_for_schema(prompt.json_schema, "answer")
        if not isinstance(value, dict) or not value:
            value = {"answer": " ".join(_words(prompt, 6))} if prompt.json_schema.get("type") == "object" else value
        text = orjson.dumps(value).decode()
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
        return Answer(text, pieces, [], "stop", None, prompt.prompt_tokens, max(1, len(pieces)), usage)
    words = _words(prompt, min(int(directives.get("words", DEFAULTS["words"])), MAX_WORDS))
    finish, stop_sequence = "stop", None
    for i, word in enumerate(words):
        hit = next((s for s in prompt.stop if s and s in word), None)
        if hit is not None:
            words, finish, stop_sequence = words[:i], "stop_sequence", hit
            break
    if prompt.max_tokens is not None and len(words) > prompt.max_tokens:
        words, finish = words[: prompt.max_tokens], "length"
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    return Answer("".join(pieces), pieces, [], finish, stop_sequence, prompt.prompt_tokens, len(words), usage)


def embedding_for(text: str, dimensions: int = 16) -> list[float]:
    """A deterministic unit vector for a text (same text, same vector)."""
    dimensions = min(dimensions, MAX_EMBEDDING_DIMENSIONS)  # the wires refuse more; never build it
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


# --- I/O --------------------------------------------------------------------------------

async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def read_json(receive: Receive) -> Any:
    body = await read_body(receive)
    return orjson.loads(body) if body else {}


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")] + (headers or [])})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def sse_start(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})


async def sse_send(send: Send, data: Any, event: str | None = None) -> None:
    head = b"event: " + event.encode() + b"\n" if event else b""
    await send({"type": "http.response.body", "body": head + b"data: " + orjson.dumps(data) + b"\n\n", "more_body": True})


async def sse_end(send: Send, tail: bytes = b"") -> None:
    await send({"type": "http.response.body", "body": tail, "more_body": False})


class ConnectionCut(Exception):
    """Raised inside a stream to make the server drop the connection mid-answer."""


def connection_reset(receive: Receive) -> None:
    """Drop the TCP connection before any response byte (uvicorn: abort the transport)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.abort()
    raise ConnectionCut("fake connection reset")


async def fault_before_answer(directives: dict[str, str], receive: Receive) -> int | None:
    """Hang or reset as asked; returns the HTTP error status to answer with, if any."""
    if "hang" in directives:
        await asyncio.sleep(3600)
    if "reset" in directives:
        connection_reset(receive)
    if "status" in directives:
        return int(directives["status"])
    return None


def client_gone() -> bool:
    """Whether the caller (the gateway) has closed the connection (uvicorn's request cycle)."""
    receive = current_receive.get()
    return bool(getattr(getattr(receive, "__self__", None), "disconnected", False))


async def paced(pieces: list[Any], timing: Timing, directives: dict[str, str]) -> AsyncIterator[Any]:
    """Yield stream pieces on the fake's clock; `cut` drops the connection halfway. Like a
    real upstream, it stops generating when the caller hangs up."""
    STATS["streams_started"] += 1
    if timing.ttft_ms:
        await asyncio.sleep(timing.ttft_ms / 1000)
    for i, piece in enumerate(pieces):
        if "cut" in directives and i == len(pieces) // 2:
            raise ConnectionCut("fake stream cut")
        if timing.chunk_ms and i:
            await asyncio.sleep(timing.chunk_ms / 1000)
        if client_gone():
            STATS["streams_abandoned"] += 1
            return
        yield piece
    STATS["streams_completed"] += 1


async def non_stream_wait(timing: Timing) -> None:
    if timing.latency_ms:
        await asyncio.sleep(timing.latency_ms / 1000)


def now() -> int:
    return int(time.time())
