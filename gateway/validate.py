"""Checks on inbound requests, so bad input fails with a 400 naming the field before
anything reaches an upstream."""

from __future__ import annotations

from typing import Any

import orjson

from .errors import invalid_request

CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def json_body(body: bytes) -> dict[str, Any]:
    if not body:
        raise invalid_request("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}.") from exc
    if not isinstance(payload, dict):
        raise invalid_request("The request body must be a JSON object.")
    return payload


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def chat_request_validate(payload: dict[str, Any]) -> None:
    model = payload.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise invalid_request(f"Invalid type for 'model': expected a string, got {_type_name(model)}.", param="model")
    messages = payload.get("messages")
    if messages is None:
        raise invalid_request("Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list):
        raise invalid_request(f"Invalid type for 'messages': expected an array, got {_type_name(messages)}.", param="messages")
    if not messages:
        raise invalid_request("'messages' must contain at least one message.", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid_request(f"Invalid type for '{where}': expected an object, got {_type_name(message)}.", param=where)
        role = message.get("role")
        if role is None:
            raise invalid_request(f"Missing required parameter: '{where}.role'.", param=f"{where}.role")
        if role not in CHAT_ROLES:
            raise invalid_request(
                f"Invalid value for '{where}.role': {role!r}. Supported values are: {', '.join(sorted(CHAT_ROLES))}.",
                param=f"{where}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid_request(
                f"Invalid type for '{where}.content': expected a string or an array, got {_type_name(content)}.",
                param=f"{where}.content",
            )
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request(f"Invalid type for 'stream': expected a boolean, got {_type_name(stream)}.", param="stream")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise invalid_request(f"Invalid value for '{name}': expected a positive integer.", param=name)
    for name in ("temperature", "top_p"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise invalid_request(f"Invalid type for '{name}': expected a number, got {_type_name(value)}.", param=name)
