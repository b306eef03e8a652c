"""The pieces behind "no 500 on bad input", checked without servers."""

from __future__ import annotations

import asyncio
import base64
import struct

import orjson
import pytest

from gateway.hotpath.asgi import _embeddings_pack
from gateway.hotpath.directory import Deployment
from gateway.hotpath.errors import GatewayError
from gateway.hotpath.token_count import count_message_tokens
from gateway.hotpath.validate import MAX_DEPTH, chat_request_validate, json_body
from tests.gateway.deployments import deployment_make


def _nested(depth: int) -> bytes:
    return b'{"model": "m", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_a_body_nested_to_the_limit_parses():
    assert json_body(_nested(MAX_DEPTH))["model"] == "m"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 255, 1024])
def test_a_body_nested_past_the_limit_is_a_400(depth):
    with pytest.raises(GatewayError) as err:
        json_body(_nested(depth))
    assert err.value.status == 400 and err.value.code == "nesting_too_deep"


def test_many_brackets_side_by_side_are_not_nesting():
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "["}]}] * 200})
    assert len(json_body(body)["messages"]) == 200


@pytest.mark.parametrize("role", [["user"], {"role": "user"}, 1, True])
def test_a_role_of_the_wrong_type_is_a_400_naming_it(role):
    with pytest.raises(GatewayError) as err:
        chat_request_validate({"model": "m", "messages": [{"role": role, "content": "hi"}]})
    assert err.value.status == 400 and err.value.param == "messages[0].role"


@pytest.mark.parametrize("calls", [1.5, "x", {"a": 1}, [1, None, {"function": 5}, {"function": {"name": "f", "arguments": "{}"}}]])
def test_tool_calls_of_any_shape_are_counted(calls):
    assert count_message_tokens([{"role": "user", "content": "hi", "tool_calls": calls}, "odd"]) > 0


def _deployment() -> Deployment:
    return deployment_make(provider_name="local", provider_kind="openai-compatible", base_url="http://127.0.0.1:9")


def test_float_embeddings_from_an_upstream_that_ignores_encoding_format_are_packed():
    data = {"data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.25, 3.0]}]}
    _embeddings_pack(data, _deployment())
    packed = data["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(packed)) == (0.5, -1.25, 3.0)


def test_an_upstream_vector_that_is_not_numbers_is_a_502():
    with pytest.raises(GatewayError) as err:
        _embeddings_pack({"data": [{"embedding": ["a", 1]}]}, _deployment())
    assert err.value.status == 502


@pytest.mark.parametrize("length", [b"9" * 5000, b"9" * 19, b"99999999999"])
def test_a_content_length_of_any_size_over_the_limit_is_a_413(length):
    from gateway.hotpath.asgi import _read_body

    async def receive():  # pragma: no cover - refused before the body is read
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "headers": [(b"content-length", length)]}
    with pytest.raises(GatewayError) as err:
        asyncio.run(_read_body(scope, receive))
    assert err.value.status == 413
