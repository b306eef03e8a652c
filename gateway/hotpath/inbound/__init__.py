"""Inbound APIs: how clients talk to the gateway (OpenAI, Anthropic Messages, Gemini,
Cohere v2). The internal request format is OpenAI Chat Completions. Each module exposes:

    WIRE: str                       # the wire format; equal to an adapter's WIRE means native
    CHAT_ENDPOINT: str              # the usage event's endpoint name, e.g. "chat.completions"

    def error_response(error: GatewayError) -> tuple[int, bytes]
        The status and body for an error, in this API's error format.

    def chat_request_parse(raw: bytes, *, model: str | None, stream: bool | None) -> InboundChat
        Validate the client's body (400 naming the field); `model`/`stream` come from the
        URL for APIs that put them there (Gemini), else None.

    def to_internal(request: InboundChat) -> dict
        The OpenAI-shaped chat request (raise a 400 naming what cannot be mapped).

    def completion_encode(body: dict, model: str) -> bytes
        An OpenAI `chat.completion` dict as this API's answer body.

    class StreamEncoder(model: str, *, include_usage: bool)
        encode(chunk: dict) -> bytes  # an OpenAI chunk dict as this API's stream bytes
        finish() -> bytes             # what ends a stream that completed
        error(error) -> bytes         # an in-stream error event

APIs with embeddings add:

    def embeddings_request_parse(raw: bytes, *, model: str | None) -> InboundChat  (stream False)
    def embeddings_to_internal(request: InboundChat) -> dict   # an OpenAI embeddings request
    def embeddings_encode(data: dict, request: InboundChat) -> bytes  # from an OpenAI embeddings response
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(slots=True)
class InboundChat:
    native: dict[str, Any]  # the client's body, validated
    model: str
    stream: bool


@functools.cache
def inbound_for(wire: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{wire}")
