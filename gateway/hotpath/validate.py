"""Checks on inbound requests, so bad input fails with a 400 naming the field before
anything reaches an upstream."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .errors import GatewayError, invalid_request

CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# Deepest nesting a request may have. orjson encodes at most 254 levels and decodes 1,024;
# translation adds a few levels, and recursive Python checks (JSON Schema, Gemini schemas)
# need headroom under the interpreter's recursion limit. Real requests nest below 30.
MAX_DEPTH = 64
_ORJSON_MAX_DEPTH = 254


def json_body(body: bytes) -> dict[str, Any]:
    if not body:
        raise invalid_request("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            raise invalid_request("The request body is not valid UTF-8; send JSON encoded as UTF-8.") from exc
        raise invalid_request(f"The request body is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}.") from exc
    if not isinstance(payload, dict):
        raise invalid_request("The request body must be a JSON object.")
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:  # fewer brackets cannot nest deeper: the usual, free case
        depth_check(payload)
    return payload


def depth_check(payload: Any) -> None:
    """A 400 for JSON nested deeper than MAX_DEPTH, so no later step (token counting, the
    cache key, schema checks, the upstream body) meets a structure it cannot encode or
    walk. orjson walks it in C: the value wrapped in lists so that orjson's own depth limit
    falls at MAX_DEPTH."""
    wrapped = payload
    for _ in range(_ORJSON_MAX_DEPTH - MAX_DEPTH):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError as exc:
        raise nesting_too_deep() from exc


def nesting_too_deep() -> GatewayError:
    return invalid_request(
        f"The request is nested too deeply: JSON objects and arrays (also inside JSON strings such as tool-call "
        f"arguments) may nest at most {MAX_DEPTH} levels.",
        code="nesting_too_deep",
    )


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
        if not isinstance(role, str):
            raise invalid_request(f"Invalid type for '{where}.role': expected a string, got {_type_name(role)}.",
                                  param=f"{where}.role")
        if role not in CHAT_ROLES:
            raise invalid_request(
                f"Invalid value for '{where}.role': {role!r}. Supported values are: {', '.join(sorted(CHAT_ROLES))}.",
                param=f"{where}.role",
            )
        if not isinstance(message.get("name"), (str, type(None))):
            raise invalid_request(f"Invalid type for '{where}.name': expected a string.", param=f"{where}.name")
        content = message.get("content")
        if content is None and role in ("system", "developer", "user", "tool"):
            raise invalid_request(f"Missing required parameter: '{where}.content'.", param=f"{where}.content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid_request(
                f"Invalid type for '{where}.content': expected a string or an array, got {_type_name(content)}.",
                param=f"{where}.content",
            )
        if isinstance(content, list):
            for j, part in enumerate(content):
                _content_part_validate(part, f"{where}.content[{j}]", role)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise invalid_request(f"Missing required parameter: '{where}.tool_call_id'.", param=f"{where}.tool_call_id")
        if role == "assistant" and message.get("tool_calls") is not None:
            _tool_calls_validate(message["tool_calls"], f"{where}.tool_calls")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request(f"Invalid type for 'stream': expected a boolean, got {_type_name(stream)}.", param="stream")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise invalid_request(f"Invalid value for '{name}': expected a positive integer.", param=name)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise invalid_request(f"Invalid type for '{name}': expected a number, got {_type_name(value)}.", param=name)
    for name, kind, expected in OPTIONAL_FIELD_TYPES:
        value = payload.get(name)
        if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
            raise invalid_request(f"Invalid type for '{name}': expected {expected}, got {_type_name(value)}.", param=name)
    options = payload.get("stream_options")
    if options is not None and not isinstance(options.get("include_usage"), (bool, type(None))):
        raise invalid_request("Invalid type for 'stream_options.include_usage': expected a boolean.",
                              param="stream_options.include_usage")
    temperature = payload.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise invalid_request("Invalid value for 'temperature': expected a number from 0 to 2.", param="temperature")
    stop = payload.get("stop")
    if stop is not None and not isinstance(stop, str) and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise invalid_request("Invalid type for 'stop': expected a string or an array of strings.", param="stop")
    if payload.get("tools") is not None:
        tools_validate(payload["tools"])
    _tool_choice_validate(payload.get("tool_choice"), payload.get("tools"))
    _response_format_validate(payload.get("response_format"))


# optional chat fields an adapter reads or forwards: a wrong JSON type is the client's 400, not an upstream's surprise
OPTIONAL_FIELD_TYPES: tuple[tuple[str, type, str], ...] = (
    ("stream_options", dict, "an object"),
    ("user", str, "a string"),
    ("seed", int, "an integer"),
    ("logit_bias", dict, "an object"),
    ("logprobs", bool, "a boolean"),
    ("top_logprobs", int, "an integer"),
    ("parallel_tool_calls", bool, "a boolean"),
    ("store", bool, "a boolean"),
    ("metadata", dict, "an object"),
    ("modalities", list, "an array"),
    ("reasoning_effort", str, "a string"),
    ("service_tier", str, "a string"),
    ("prediction", dict, "an object"),
    ("audio", dict, "an object"),
    ("web_search_options", dict, "an object"),
)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PART_TYPES = {"text", "image_url", "input_audio", "file", "refusal"}


def _content_part_validate(part: Any, where: str, role: str) -> None:
    if not isinstance(part, dict):
        raise invalid_request(f"Invalid type for '{where}': expected an object, got {_type_name(part)}.", param=where)
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in PART_TYPES:
        raise invalid_request(
            f"Invalid value for '{where}.type': {kind!r}. Supported values are: 'text', 'image_url', 'input_audio', 'file' and 'refusal'.",
            param=f"{where}.type",
        )
    if kind == "text" and not isinstance(part.get("text"), str):
        raise invalid_request(f"Invalid type for '{where}.text': expected a string.", param=f"{where}.text")
    if kind == "image_url":
        if role != "user":
            raise invalid_request(f"Image content parts are only allowed in user messages ('{where}').", param=where)
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise invalid_request(f"Missing required parameter: '{where}.image_url.url'.", param=f"{where}.image_url.url")
        image_url_validate(url, f"{where}.image_url.url")
        if isinstance(image, dict) and not isinstance(image.get("detail"), (str, type(None))):
            raise invalid_request(f"Invalid type for '{where}.image_url.detail': expected a string.", param=f"{where}.image_url.detail")
    if kind in ("input_audio", "file"):
        value = part.get(kind)
        if not isinstance(value, dict) or not all(isinstance(v, (str, type(None))) for v in value.values()):
            raise invalid_request(f"Invalid value for '{where}.{kind}': expected an object of strings.", param=f"{where}.{kind}")
    if kind == "refusal" and not isinstance(part.get("refusal"), str):
        raise invalid_request(f"Invalid type for '{where}.refusal': expected a string.", param=f"{where}.refusal")


def image_url_validate(url: str, where: str) -> None:
    """An image is an http(s) URL or a data: URL whose base64 payload decodes."""
    if url.startswith(("http://", "https://")):
        return
    if not url.startswith("data:"):
        raise invalid_request(f"Invalid value for '{where}': expected an http(s) URL or a base64 data: URL.", param=where)
    head, _, data = url[5:].partition(",")
    if not head.endswith(";base64") or not head.startswith("image/"):
        raise invalid_request(f"Invalid image data URL in '{where}': expected 'data:image/<type>;base64,<data>'.", param=where)
    base64_validate(data, where)


def base64_validate(data: str, where: str) -> None:
    try:
        if not data or not base64.b64decode(data, validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError) as exc:
        raise invalid_request(f"Invalid base64 image data in '{where}'.", param=where, code="invalid_image") from exc


def _tool_calls_validate(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise invalid_request(f"Invalid type for '{where}': expected an array.", param=where)
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(function, dict):
            raise invalid_request(f"Invalid value for '{where}[{i}]': expected {{id, type: 'function', function}}.", param=f"{where}[{i}]")
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            raise invalid_request(
                f"Invalid value for '{where}[{i}].function': 'name' and 'arguments' (a JSON string) are required.",
                param=f"{where}[{i}].function",
            )


@functools.lru_cache(maxsize=1024)
def _schema_problem(schema_json: bytes) -> str | None:
    """Why a tool's parameters are not a JSON Schema (cached: clients resend the same tools)."""
    schema = orjson.loads(schema_json)
    if not isinstance(schema, dict):
        return "expected a JSON Schema object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    except RecursionError:
        return "the schema is nested too deeply"
    if schema.get("type", "object") != "object":
        return "the top-level schema must have type 'object'"
    return None


def tools_validate(tools: Any, *, param: str = "tools") -> None:
    if not isinstance(tools, list):
        raise invalid_request(f"Invalid type for '{param}': expected an array, got {_type_name(tools)}.", param=param)
    for i, tool in enumerate(tools):
        where = f"{param}[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise invalid_request(f"Invalid value for '{where}': expected {{'type': 'function', 'function': {{...}}}}.", param=where)
        function = tool["function"]
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise invalid_request(
                f"Invalid value for '{where}.function.name': use 1-64 letters, digits, underscores or dashes.",
                param=f"{where}.function.name",
            )
        if "parameters" in function:
            problem = _schema_problem(orjson.dumps(function["parameters"]))
            if problem:
                raise invalid_request(
                    f"Invalid schema for function '{name}' in '{where}.function.parameters': {problem}.",
                    param=f"{where}.function.parameters", code="invalid_function_parameters",
                )


def _tool_choice_validate(choice: Any, tools: Any) -> None:
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid_request(
                f"Invalid value for 'tool_choice': {choice!r}. Supported values are: 'auto', 'none' and 'required'.",
                param="tool_choice",
            )
        if choice == "required" and not tools:
            raise invalid_request("'tool_choice' is 'required' but no 'tools' were given.", param="tool_choice")
        return
    name = ((choice.get("function") or {}).get("name")) if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise invalid_request("Invalid value for 'tool_choice': expected a string or {'type': 'function', 'function': {'name': ...}}.",
                              param="tool_choice")
    if not any(isinstance(t, dict) and (t.get("function") or {}).get("name") == name for t in tools or []):
        raise invalid_request(f"'tool_choice' names the function '{name}', which is not in 'tools'.", param="tool_choice")


def _response_format_validate(fmt: Any) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid_request(
            "Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema'.", param="response_format.type"
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise invalid_request("Missing required parameter: 'response_format.json_schema.name'.", param="response_format.json_schema")
        if "schema" in spec:
            problem = _schema_problem(orjson.dumps(spec["schema"]))
            if problem:
                raise invalid_request(f"Invalid JSON Schema in 'response_format.json_schema.schema': {problem}.",
                                      param="response_format.json_schema.schema")
