"""Hostile bodies against every inbound API of the running gateway: wrong JSON types in any
field, deep nesting, huge numbers, odd unicode and NUL. Whatever comes in, the answer is a
4xx in the API's own error format (or a real upstream 502/504), never a 500, and the
gateway's log holds no traceback.

The gateway here is a daphne of its own whose output goes to a file, so the test can read
its log. Hypothesis runs derandomized with no example database, so CI sees the same cases.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import ROOT, free_port, process_stop, wait_http

EXAMPLES = int(os.environ.get("AIPROXY_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])
MODELS = ["fake-openai", "fake-anthropic", "fake-gemini", "fake-cohere"]
DEEP = "@@deep@@"  # a placeholder string the encoder swaps for raw, deeply nested JSON
DEEP_PLACEHOLDER = re.compile(r'"@@deep@@(\d+):(list|object)"')

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
OPENAI_CHAT = {
    "model": "fake-openai", "stream": False, "max_tokens": 20, "temperature": 0.5, "top_p": 1, "n": 1, "stop": ["\n\n"],
    "user": "u", "metadata": {"k": "v"}, "seed": 1, "logit_bias": {"50256": -1}, "stream_options": {"include_usage": True},
    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
    "tools": [{"type": "function", "function": {"name": "w", "description": "d", "parameters": SCHEMA}}],
    "tool_choice": {"type": "function", "function": {"name": "w"}},
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"city\": \"x\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "and now?", "name": "bob"},
    ],
}
OPENAI_EMBED = {"model": "fake-openai", "input": ["a", "b"], "encoding_format": "float", "dimensions": 8, "user": "u"}
ANTHROPIC_CHAT = {
    "model": "fake-anthropic", "max_tokens": 20, "stream": False, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
    "stop_sequences": ["x"], "metadata": {"user_id": "u"}, "system": [{"type": "text", "text": "be brief"}],
    "tools": [{"name": "w", "description": "d", "input_schema": SCHEMA}], "tool_choice": {"type": "tool", "name": "w"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                                     {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ],
}
GEMINI_CHAT = {
    "contents": [
        {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {"city": "x"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {"result": "sunny"}}}]},
    ],
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "tools": [{"functionDeclarations": [{"name": "w", "description": "d", "parameters": SCHEMA}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["w"]}},
    "generationConfig": {"temperature": 0.5, "maxOutputTokens": 20, "topP": 0.9, "topK": 3, "stopSequences": ["x"],
                         "candidateCount": 1, "responseMimeType": "text/plain"},
    "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
}
GEMINI_COUNT = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generateContentRequest": {"model": "models/fake-gemini", "contents": [{"parts": [{"text": "hi"}]}]}}
GEMINI_EMBED = {"model": "models/fake-gemini", "content": {"parts": [{"text": "hi"}]}, "taskType": "RETRIEVAL_QUERY",
                "title": "t", "outputDimensionality": 8}
COHERE_CHAT = {
    "model": "fake-cohere", "stream": False, "max_tokens": 20, "temperature": 0.5, "p": 0.9, "k": 3, "seed": 1,
    "stop_sequences": ["x"], "frequency_penalty": 0.1, "presence_penalty": 0.1, "safety_mode": "OFF",
    "response_format": {"type": "json_object", "json_schema": SCHEMA},
    "tools": [{"type": "function", "function": {"name": "w", "description": "d", "parameters": SCHEMA}}],
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "tool_plan": "p",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"city\": \"x\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "document", "document": {"data": "sunny"}}]},
    ],
}
COHERE_EMBED = {"model": "fake-cohere", "texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"],
                "truncate": "END", "output_dimension": 256}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a template a hostile value can go (each key and index, at any depth)."""
    if isinstance(value, dict):
        for name, child in value.items():
            yield prefix + (name,)
            yield from _paths(child, prefix + (name,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield prefix + (i,)
            yield from _paths(child, prefix + (i,))


def _put(body: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        body = body[step]
    body[path[-1]] = value


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _encode(body: Any) -> bytes:
    """JSON bytes, with each DEEP placeholder replaced by raw nesting (too deep for most encoders)."""
    text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    text = DEEP_PLACEHOLDER.sub(lambda m: _deep(int(m[1]), m[2]), text)
    return text.encode()


SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, -1, 1.5, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 1e308, -1e308, 5e-324, -0.0]),
    st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "\x00", "a\x00b", "\u202e\u200b\ufeff", "\U0001f600" * 3, "\uffff", "models/", "null", "[]",
                     "fake-openai\x00", "x" * 300, "user", "assistant", "function", "tool", "system", "text", "base64",
                     "data:image/png;base64,", "https://", "1.5", "[" * 300 + "]" * 300,
                     '{"a":' * 300 + "1" + "}" * 300]),
    st.text(max_size=20),
)
HOSTILE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["type", "text", "role", "content", "name", "id", "function", "arguments", "parts", "url", "data", "input", "x"]),
        inner, max_size=3)),
    max_leaves=6,
) | st.builds(lambda depth, kind: f"{DEEP}{depth}:{kind}", st.sampled_from([100, 200, 253, 254, 255, 256, 500, 1000, 1023, 1024]),
              st.sampled_from(["list", "object"]))


def _bodies(template: dict[str, Any], *, model_field: str | None = "model") -> st.SearchStrategy[Any]:
    paths = list(_paths(template))

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        body = json.loads(json.dumps(template))
        if model_field:
            body[model_field] = draw(st.sampled_from(MODELS))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            try:
                _put(body, path, draw(HOSTILE))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation replaced a parent
        if draw(st.booleans()):
            body[draw(st.sampled_from(["extra", "metadata", "tools", "\x00", ""]))] = draw(HOSTILE)
        return body

    return build() | st.one_of(HOSTILE, st.just(template)).map(lambda v: v)


@pytest.fixture(scope="module")
def fuzz_gateway(django_db_setup, fake_provider_url, embedder_socket, fake_models, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A gateway of its own (daphne), its output in a file the tests read."""
    from django.conf import settings as django_settings

    log_path = tmp_path_factory.mktemp("fuzz") / "gateway.log"
    port = free_port()
    env = dict(os.environ, DATABASE_URL=django_settings.DATABASE_URL, REDIS_URL=django_settings.REDIS_URL,
               GATEWAY_UPSTREAM_TIMEOUT="2", FAKE_PROVIDER_URL=fake_provider_url, GATEWAY_EMBEDDER_SOCKET=embedder_socket)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                 "aiproxy_site.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/accounts/login/", proc)
    yield url, log_path
    process_stop(proc)


@pytest.fixture(scope="module")
def client(fuzz_gateway, sdk_key) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    url, _ = fuzz_gateway
    _, secret = sdk_key
    headers = {"authorization": f"Bearer {secret}", "x-api-key": secret, "x-goog-api-key": secret,
               "anthropic-version": "2023-06-01", "content-type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        yield c


def _check(client: httpx.Client, log_path: Path, path: str, body: Any, error_shape: str) -> None:
    raw = body if isinstance(body, bytes) else _encode(body)
    logged = log_path.stat().st_size
    with client.stream("POST", path, content=raw) as response:
        content = response.read()
    status = response.status_code
    if status >= 500:
        code = json.loads(content).get("error", {}).get("code") if content.startswith(b"{") else None
        assert status in (502, 504) and code in ("upstream_unreachable", "upstream_timeout", "upstream_invalid", None), (
            f"{status} for {path}: {content[:500]!r}")
    elif status >= 400:
        error = json.loads(content)
        if error_shape == "anthropic":
            assert error["type"] == "error" and error["error"]["message"], content[:300]
        elif error_shape == "gemini":
            assert error["error"]["status"] and error["error"]["code"] == status, content[:300]
        elif error_shape == "cohere":
            assert error["message"], content[:300]
        else:
            assert error["error"]["message"], content[:300]
    with open(log_path, "rb") as f:
        f.seek(logged)
        log = f.read().decode(errors="replace")
    assert "Traceback" not in log, f"{path} {raw[:300]!r}\n{log[-3000:]}"


@FUZZ
@given(body=_bodies(OPENAI_CHAT))
def test_openai_chat_never_fails_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v1/chat/completions", body, "openai")


@FUZZ
@given(body=_bodies(OPENAI_EMBED))
def test_openai_embeddings_never_fail_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v1/embeddings", body, "openai")


@FUZZ
@given(body=_bodies(ANTHROPIC_CHAT))
def test_anthropic_messages_never_fail_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v1/messages", body, "anthropic")


@FUZZ
@given(body=_bodies(ANTHROPIC_CHAT))
def test_anthropic_count_tokens_never_fails_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v1/messages/count_tokens", body, "anthropic")


@FUZZ
@given(body=_bodies(GEMINI_CHAT, model_field=None), model=st.sampled_from(MODELS),
       method=st.sampled_from(["generateContent", "streamGenerateContent"]))
def test_gemini_generate_never_fails_on_hostile_input(client, fuzz_gateway, body, model, method):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], f"/v1beta/models/{model}:{method}", body, "gemini")


@FUZZ
@given(body=_bodies(GEMINI_COUNT, model_field=None), model=st.sampled_from(MODELS))
def test_gemini_count_tokens_never_fails_on_hostile_input(client, fuzz_gateway, body, model):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], f"/v1beta/models/{model}:countTokens", body, "gemini")


@FUZZ
@given(body=_bodies(GEMINI_EMBED, model_field=None), model=st.sampled_from(MODELS),
       batch=st.booleans())
def test_gemini_embed_never_fails_on_hostile_input(client, fuzz_gateway, body, model, batch):  # type: ignore[no-untyped-def]
    if batch:
        _check(client, fuzz_gateway[1], f"/v1beta/models/{model}:batchEmbedContents", {"requests": [body]}, "gemini")
    else:
        _check(client, fuzz_gateway[1], f"/v1beta/models/{model}:embedContent", body, "gemini")


@FUZZ
@given(body=_bodies(COHERE_CHAT))
def test_cohere_chat_never_fails_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v2/chat", body, "cohere")


@FUZZ
@given(body=_bodies(COHERE_EMBED))
def test_cohere_embed_never_fails_on_hostile_input(client, fuzz_gateway, body):  # type: ignore[no-untyped-def]
    _check(client, fuzz_gateway[1], "/v2/embed", body, "cohere")


@FUZZ
@given(raw=st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"{", b"null", b"[]", b'"x"', b"1e400", b'{"model": "\\ud800"}', b'{"a": NaN}',
                     b"[" * 1100 + b"]" * 1100, b'{"model":' + b"[" * 300 + b"]" * 300 + b"}"])),
    path=st.sampled_from(["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens", "/v2/chat",
                          "/v2/embed", "/v1beta/models/fake-gemini:generateContent", "/v1beta/models/fake-gemini:countTokens",
                          "/v1beta/models/fake-gemini:embedContent"]))
def test_malformed_bodies_never_fail_any_api(client, fuzz_gateway, raw, path):  # type: ignore[no-untyped-def]
    shape = "anthropic" if path.startswith("/v1/messages") else "gemini" if "v1beta" in path else \
        "cohere" if path.startswith("/v2") else "openai"
    _check(client, fuzz_gateway[1], path, raw, shape)
