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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..directory import ModelGroup
    from ..errors import GatewayError


@dataclass(slots=True)
class InboundChat:
    native: dict[str, Any]  # the client's body, validated
    model: str
    stream: bool


class StreamEncoder(Protocol):
    """Internal (OpenAI) chunks -> this API's stream bytes."""

    def encode(self, chunk: dict[str, Any]) -> bytes: ...
    def finish(self) -> bytes: ...
    def error(self, error: GatewayError) -> bytes: ...


class InboundApi(Protocol):
    """What the gateway needs of an inbound API (each module in this package is one)."""

    @property
    def WIRE(self) -> str: ...  # noqa: N802 (a module constant)
    @property
    def CHAT_ENDPOINT(self) -> str: ...  # noqa: N802

    def error_response(self, error: GatewayError) -> tuple[int, bytes]: ...
    def chat_request_parse(self, raw: bytes, *, model: str | None = None, stream: bool | None = None) -> InboundChat: ...
    def to_internal(self, request: InboundChat) -> dict[str, Any]: ...
    def completion_encode(self, body: dict[str, Any], model: str) -> bytes: ...
    def stream_encoder(self, model: str, *, include_usage: bool) -> StreamEncoder: ...
    def count_tokens_parse(self, raw: bytes, *, model: str | None = None) -> InboundChat: ...
    def count_tokens_encode(self, tokens: int) -> bytes: ...
    def embeddings_request_parse(self, raw: bytes, *, model: str | None = None) -> InboundChat: ...
    def embeddings_to_internal(self, request: InboundChat) -> dict[str, Any]: ...
    def embeddings_encode(self, data: dict[str, Any], request: InboundChat) -> bytes: ...
    def model_object(self, group: ModelGroup) -> dict[str, Any]: ...
    def models_page(self, models: list[dict[str, Any]]) -> bytes: ...


# the modules import InboundChat from above; each one is checked against InboundApi here
from . import anthropic, cohere, gemini, openai  # noqa: E402

INBOUND: dict[str, InboundApi] = {"openai": openai, "anthropic": anthropic, "gemini": gemini, "cohere": cohere}


def inbound_for(wire: str) -> InboundApi:
    return INBOUND[wire]
