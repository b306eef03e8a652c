"""One upstream call in the client's terms: the three ways a chat request can reach an
upstream, behind one small interface that forward() (gateway/hotpath/forward.py) drives.

- OpenAINative: an OpenAI client and an OpenAI-format upstream. The request goes up with
  only the model name changed; the answer's bytes come back untouched.
- AnthropicNative: the same for an Anthropic client and an Anthropic upstream (the
  client's anthropic-version and anthropic-beta headers go along).
- Translated: any other pair. The request is the internal (OpenAI-shaped) payload; the
  adapter speaks the upstream's format and the inbound API encodes the answer back.

Each reports the upstream's usage (or the text to count when there is none) and
assembles the answer as an OpenAI-shaped completion for the response cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from . import upstream
from .adapters import UpstreamAdapter
from .adapters import anthropic as anthropic_upstream
from .adapters import openai as openai_upstream
from .adapters.interface import Usage, body_read, sse_events, sse_parse, usage_dict
from .directory import Deployment
from .errors import GatewayError
from .inbound import InboundApi, StreamEncoder
from .inbound import openai as openai_inbound
from .response_cache import completion_assemble

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Whole:
    """A whole answer, ready for the client."""

    body: bytes  # in the client's format
    usage: Usage | None  # the upstream's count; None: count `text`
    text: str  # the generated text (only needed when usage is None)
    completion: dict[str, Any] | None  # OpenAI-shaped, for the response cache; None: nothing to store
    headers: Headers = field(default_factory=list)


class Relay:
    """An open stream: `events()` yields the client's bytes and keeps count of what went by."""

    def __init__(self, response: upstream.Response, encoder: StreamEncoder, *, keep: bool,
                 headers: Headers | None = None) -> None:
        self.response = response
        self.encoder = encoder
        self.keep = keep  # keep every event: the answer goes into the cache
        self.headers = headers or []
        self.usage: Usage | None = None
        self.raw: list[bytes] = []
        self.texts: list[str] = []
        self.chunks: list[dict[str, Any]] = []

    def events(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def text(self) -> str:
        """The text generated so far (counted when the upstream reported no usage, or the
        client left before its final count)."""
        return "".join(self.texts)

    def completion(self) -> dict[str, Any] | None:
        """The whole answer as an OpenAI-shaped completion, for the cache (after a complete stream)."""
        return _with_usage(completion_assemble(self.chunks), self.usage) if self.keep else None

    def error(self, error: GatewayError) -> bytes:
        return self.encoder.error(error)

    def release(self) -> None:
        self.response.release()


class Exchange(Protocol):
    """What forward() needs of a path: the prompt (for token estimates) and the two ways
    to call a deployment."""

    messages: list[dict[str, Any]]
    tools: Any
    model: str  # the name the client sent, echoed in translated answers

    async def whole(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Whole: ...
    async def stream(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Relay: ...


# --- OpenAI client, OpenAI-format upstream ----------------------------------------------------------

class _OpenAIRelay(Relay):
    def __init__(self, response: upstream.Response, *, keep: bool, wants_usage: bool, model: str) -> None:
        super().__init__(response, openai_inbound.StreamEncoder(model, include_usage=wants_usage), keep=keep)
        self.wants_usage = wants_usage

    async def events(self) -> AsyncIterator[bytes]:
        async for item in openai_upstream.chat_events(self.response):
            usage = openai_upstream.event_usage(item)
            if usage is not None:
                self.usage = usage
                if not self.wants_usage and openai_upstream.event_is_usage_only(item):
                    continue
            self.raw.append(item)
            yield item

    def text(self) -> str:
        return _openai_events_text(self.raw)

    def completion(self) -> dict[str, Any] | None:
        return _with_usage(completion_assemble(_openai_chunks(self.raw)), self.usage) if self.keep else None


@dataclass(slots=True)
class OpenAINative:
    payload: dict[str, Any]
    messages: list[dict[str, Any]]
    tools: Any
    model: str

    async def whole(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Whole:
        response = await openai_upstream.chat_send(session, deployment, self.payload, stream=False)
        body, data, usage = await openai_upstream.chat_read_raw(response, deployment)
        return Whole(body, usage, _completion_text(data) if usage is None else "", data if keep else None)

    async def stream(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Relay:
        response = await openai_upstream.chat_send(session, deployment, self.payload, stream=True)
        wants_usage = bool((self.payload.get("stream_options") or {}).get("include_usage"))
        return _OpenAIRelay(response, keep=keep, wants_usage=wants_usage, model=self.model)


# --- Anthropic client, Anthropic upstream -----------------------------------------------------------

class _AnthropicRelay(Relay):
    def __init__(self, response: upstream.Response, encoder: StreamEncoder, *, keep: bool, model: str) -> None:
        super().__init__(response, encoder, keep=keep)
        self.model = model  # the client's name for it, in the cached completion

    async def events(self) -> AsyncIterator[bytes]:
        async for item in sse_events(self.response):
            self.usage = anthropic_upstream.event_usage(item, self.usage)
            if self.keep or b"text_delta" in item or b"input_json_delta" in item:
                self.raw.append(item)
            yield item

    def text(self) -> str:
        return _anthropic_events_text(self.raw)

    def completion(self) -> dict[str, Any] | None:
        if not self.keep:
            return None
        message = anthropic_upstream.message_from_events(self.raw)
        return None if message is None else anthropic_upstream.completion_from_message(message, self.model, as_json=False)


@dataclass(slots=True)
class AnthropicNative:
    native: dict[str, Any]  # the client's own body
    forwarded: dict[str, str]  # its anthropic-version / anthropic-beta headers
    messages: list[dict[str, Any]]
    tools: Any
    model: str

    async def whole(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Whole:
        response = await anthropic_upstream.messages_send(session, deployment, self.native, stream=False,
                                                          headers=self.forwarded)
        data = await body_read(response, deployment)
        usage = anthropic_upstream.message_usage(data) if isinstance(data, dict) else None
        text = "" if usage is not None else "".join(
            b.get("text", "") for b in data.get("content") or [] if isinstance(b, dict))
        completion = (anthropic_upstream.completion_from_message(data, self.model, as_json=False)
                      if keep and isinstance(data, dict) else None)
        return Whole(orjson.dumps(data), usage, text, completion)

    async def stream(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Relay:
        from .inbound import anthropic as anthropic_inbound

        response = await anthropic_upstream.messages_send(session, deployment, self.native, stream=True,
                                                          headers=self.forwarded)
        return _AnthropicRelay(response, anthropic_inbound.StreamEncoder(self.model, include_usage=True), keep=keep,
                               model=self.model)


# --- any other pair: through the internal format ---------------------------------------------------

class _TranslatedRelay(Relay):
    def __init__(self, response: upstream.Response, encoder: StreamEncoder, *, keep: bool, headers: Headers,
                 adapter: UpstreamAdapter, deployment: Deployment, payload: dict[str, Any]) -> None:
        super().__init__(response, encoder, keep=keep, headers=headers)
        self.adapter, self.deployment, self.payload = adapter, deployment, payload

    async def events(self) -> AsyncIterator[bytes]:
        async for chunk in self.adapter.chat_chunks(self.response, self.deployment, self.payload):
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            self.texts.append(_generated_text(chunk, "delta"))
            if self.keep:
                self.chunks.append(chunk)
            yield self.encoder.encode(chunk)
        yield self.encoder.finish()


@dataclass(slots=True)
class Translated:
    inbound: InboundApi
    adapter: UpstreamAdapter
    payload: dict[str, Any]  # the internal request
    ignored: list[str]  # parameters the inbound API dropped (best-effort hints)
    messages: list[dict[str, Any]]
    tools: Any
    model: str

    def _headers(self) -> Headers:
        """Names of request parameters the upstream has no use for (hints such as `seed`),
        so leaving them out is never silent."""
        ignored = self.ignored + [name for name in self.adapter.IGNORED_PARAMS if self.payload.get(name) is not None]
        return [(b"x-aiproxy-ignored-params", ",".join(ignored).encode())] if ignored else []

    async def whole(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Whole:
        response = await self.adapter.chat_send(session, deployment, self.payload, stream=False)
        body, usage = await self.adapter.chat_read(response, deployment, self.payload)
        if usage is not None and "usage" not in body:
            body["usage"] = usage_dict(usage)
        text = _completion_text(body) if usage is None else ""
        return Whole(self.inbound.completion_encode(body, self.model), usage, text, body if keep else None, self._headers())

    async def stream(self, session: upstream.Pool, deployment: Deployment, *, keep: bool) -> Relay:
        response = await self.adapter.chat_send(session, deployment, self.payload, stream=True)
        wants_usage = self.inbound.WIRE != "openai" or bool((self.payload.get("stream_options") or {}).get("include_usage"))
        encoder = self.inbound.stream_encoder(self.model, include_usage=wants_usage)
        return _TranslatedRelay(response, encoder, keep=keep, headers=self._headers(), adapter=self.adapter,
                                deployment=deployment, payload=self.payload)


# --- what a completion or a stream says ----------------------------------------------------------------

def _with_usage(completion: dict[str, Any] | None, usage: Usage | None) -> dict[str, Any] | None:
    """A cached answer keeps its token counts, for the savings its hits record."""
    if completion is not None and "usage" not in completion and usage is not None:
        completion["usage"] = usage_dict(usage)
    return completion


def _openai_chunks(events: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for item in events:
        _, data = sse_parse(item)
        if data and data != b"[DONE]":
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                return []
            if isinstance(chunk, dict):
                out.append(chunk)
    return out


def _generated_text(body: Any, field: str) -> str:
    """The text a completion (field "message") or a chunk (field "delta") carries: content
    and tool-call arguments, what output tokens are counted from."""
    parts = []
    for choice in (body.get("choices") if isinstance(body, dict) else None) or []:
        message = choice.get(field) or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or []:
            parts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(parts)


def _completion_text(body: Any) -> str:
    return _generated_text(body, "message")


def _openai_events_text(events: list[bytes]) -> str:
    parts = []
    for item in events:
        _, data = sse_parse(item)
        if not data or data == b"[DONE]":
            continue
        try:
            parts.append(_generated_text(orjson.loads(data), "delta"))
        except orjson.JSONDecodeError:
            continue
    return "".join(parts)


def _anthropic_events_text(events: list[bytes]) -> str:
    parts = []
    for item in events:
        _, data = sse_parse(item)
        try:
            delta = orjson.loads(data).get("delta") or {}
        except (orjson.JSONDecodeError, AttributeError):
            continue
        parts.append(delta.get("text") or delta.get("partial_json") or "")
    return "".join(parts)
