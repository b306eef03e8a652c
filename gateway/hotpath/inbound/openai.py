"""OpenAI's API as clients see it. The internal format is OpenAI's, so parsing is
validation and encoding is serialisation."""

from __future__ import annotations

from typing import Any

import orjson

from ..directory import ModelGroup, group_owner
from ..errors import GatewayError, not_found
from ..validate import chat_request_validate, json_body
from . import InboundChat

WIRE = "openai"
CHAT_ENDPOINT = "chat.completions"
DONE = b"data: [DONE]\n\n"


def error_response(error: GatewayError) -> tuple[int, bytes]:
    status = 503 if error.status == 529 else error.status  # 529 is Anthropic's; OpenAI clients know 503
    return status, error.body()


def chat_request_parse(raw: bytes, *, model: str | None = None, stream: bool | None = None) -> InboundChat:
    payload = json_body(raw)
    chat_request_validate(payload)
    return InboundChat(payload, payload["model"], bool(payload.get("stream")))


def to_internal(request: InboundChat) -> dict[str, Any]:
    return request.native


def embeddings_request_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    payload = json_body(raw)
    return InboundChat(payload, str(payload.get("model") or ""), False)


def embeddings_to_internal(request: InboundChat) -> dict[str, Any]:
    return request.native


def embeddings_encode(data: dict[str, Any], request: InboundChat) -> bytes:
    return orjson.dumps(data)


def completion_encode(body: dict[str, Any], model: str) -> bytes:
    return orjson.dumps(body)


class StreamEncoder:
    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.include_usage = include_usage

    def encode(self, chunk: dict[str, Any]) -> bytes:
        if not chunk.get("choices") and "usage" in chunk and not self.include_usage:
            return b""
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish(self) -> bytes:
        return DONE

    def error(self, error: GatewayError) -> bytes:
        return b"data: " + error.body() + b"\n\n"


def stream_encoder(model: str, *, include_usage: bool) -> StreamEncoder:
    return StreamEncoder(model, include_usage=include_usage)


def count_tokens_parse(raw: bytes, *, model: str | None = None) -> InboundChat:
    raise not_found("This API has no token-counting endpoint.", code="unknown_url")


def count_tokens_encode(tokens: int) -> bytes:
    raise not_found("This API has no token-counting endpoint.", code="unknown_url")


# --- models ------------------------------------------------------------------------------------

def model_object(group: ModelGroup) -> dict[str, Any]:
    return {"id": group.name, "object": "model", "created": group.created, "owned_by": group_owner(group)}


def models_page(models: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"object": "list", "data": models})
