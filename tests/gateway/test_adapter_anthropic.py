"""The Anthropic adapter against the fake provider's Anthropic wire module: OpenAI-shaped
requests in, OpenAI-shaped answers out, errors mapped, every parameter Anthropic cannot
honour refused before any network call, and the native pass-through for Anthropic clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.hotpath import upstream
from gateway.hotpath.adapters import anthropic
from gateway.hotpath.adapters.interface import Usage, sse_events
from gateway.hotpath.directory import Deployment
from gateway.hotpath.errors import GatewayError
from tests.gateway.chunks import calls_of as _calls_of
from tests.gateway.chunks import finish_of as _finish_of
from tests.gateway.chunks import text_of as _text_of

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time"}}  # no parameters: OpenAI allows it
CITY = {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["name", "population"]}
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: a request reaching the network would fail with 502
SECRET = "sk-ant-secret-key"


def _deployment(base_url: str, credential: str = SECRET) -> Deployment:
    return Deployment(
        public_name="claude-chat", upstream_name="claude-haiku-4-5", provider_name="anthropic-test", provider_kind="anthropic",
        base_url=base_url, credential=credential, api_version="", input_price_per_mtok=1.0, output_price_per_mtok=5.0,
        context_window=None, workspace_ids=frozenset(), created=0,
    )


def _chat(text: str = "tell me about otters", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-chat", "messages": [{"role": "user", "content": text}], **extra}


def _read(url: str, payload: dict[str, Any], timeout: float = 10) -> tuple[dict, Any]:
    async def go() -> tuple[dict, Any]:
        deployment = _deployment(url)
        async with upstream.Pool(read_timeout=timeout) as session:
            response = await anthropic.chat_send(session, deployment, payload, stream=False)
            return await anthropic.chat_read(response, deployment, payload)
    return asyncio.run(go())


def _stream(url: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        deployment = _deployment(url)
        async with upstream.Pool(read_timeout=10) as session:
            response = await anthropic.chat_send(session, deployment, payload, stream=True)
            try:
                return [chunk async for chunk in anthropic.chat_chunks(response, deployment, payload)]
            finally:
                response.release()
    return asyncio.run(go())


def _error(url: str, payload: dict[str, Any], timeout: float = 10) -> GatewayError:
    with pytest.raises(GatewayError) as err:
        _read(url, payload, timeout)
    return err.value


# --- translation (no network) ---------------------------------------------------------------

def test_request_translation_covers_roles_tools_and_images():  # type: ignore[no-untyped-def]
    payload = {"model": "claude-chat", "user": "u-7", "stop": "END", "parallel_tool_calls": False, "tools": [WEATHER, TIME],
               "messages": [
                   {"role": "system", "content": "Be brief."},
                   {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                   {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                                {"type": "image_url", "image_url": {"url": PNG}},
                                                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                       {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
                   {"role": "tool", "tool_call_id": "call_1", "content": "rainy"},
                   {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
                   {"role": "user", "content": "thanks"},
               ]}
    body = anthropic.chat_body(_deployment(DEAD_URL), payload, stream=False)
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS == 4096
    assert body["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}]
    user, assistant, results = body["messages"]
    assert user["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]}}
    assert user["content"][2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
    assert assistant == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}]}
    assert results == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "rainy"},
                                                   {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
                                                   {"type": "text", "text": "thanks"}]}
    assert body["tools"][1] == {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-7"}


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_time"}}, {"type": "tool", "name": "get_time"}),
])
def test_tool_choice_maps_to_anthropic(choice, expected):  # type: ignore[no-untyped-def]
    body = anthropic.chat_body(_deployment(DEAD_URL), _chat(tools=[WEATHER, TIME], tool_choice=choice), stream=False)
    assert body["tool_choice"] == expected


def test_max_completion_tokens_wins_over_the_default():  # type: ignore[no-untyped-def]
    body = anthropic.chat_body(_deployment(DEAD_URL), _chat(max_completion_tokens=77, temperature=0.3, top_p=0.9), stream=True)
    assert body["max_tokens"] == 77 and body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["stream"] is True


def test_credential_and_version_headers():  # type: ignore[no-untyped-def]
    headers = anthropic.request_headers(_deployment(DEAD_URL))
    assert headers["x-api-key"] == SECRET and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    native = anthropic.request_headers(_deployment(DEAD_URL), extra={"anthropic-version": "2024-01-01",
                                                                      "anthropic-beta": "prompt-caching-2024-07-31",
                                                                      "x-api-key": "client-key"})
    assert native["anthropic-version"] == "2024-01-01" and native["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert native["x-api-key"] == SECRET


# --- answers through the fake -----------------------------------------------------------------

def test_text_answer_usage_and_public_model_name(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat(seed=1, store=True, metadata={"tag": "x"}))
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["model"] == "claude-chat"
    assert "otters" in choice["message"]["content"] and choice["finish_reason"] == "stop"
    assert usage.output_tokens == 12 and usage.input_tokens > 0
    assert body["usage"]["completion_tokens"] == 12 and body["usage"]["prompt_tokens"] == usage.input_tokens
    assert set(anthropic.IGNORED_PARAMS) == {"seed", "store", "metadata"}


def test_prompt_tokens_include_cached_tokens(fake_provider_url):  # type: ignore[no-untyped-def]
    _, plain = _read(fake_provider_url, _chat("same words here please"))
    _, cached = _read(fake_provider_url, _chat("same words here please [[fake:cached=4]]"))
    assert cached.input_tokens == plain.input_tokens + 1  # the directive is one more word; cached tokens still count


def test_missing_upstream_usage_is_none_not_zero(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat("hi [[fake:no_usage]]"))
    assert usage is None and "usage" not in body
    chunks = _stream(fake_provider_url, _chat("hi [[fake:no_usage]]"))
    assert _finish_of(chunks) == ["stop"] and all(c["choices"] for c in chunks)


def test_stream_assembles_text_then_finish_then_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(fake_provider_url, _chat("tell me about badgers [[fake:words=20]]"))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = _text_of(chunks)
    assert "badgers" in text and len(text.split()) == 20
    assert _finish_of(chunks) == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 20
    assert chunks[-1]["usage"]["prompt_tokens"] > 0


def test_tool_call_with_parsed_arguments(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _read(fake_provider_url, _chat("weather in Paris?", tools=[WEATHER]))
    choice = body["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert call["id"].startswith("toolu_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "fake city", "days": 1}


def test_parallel_tool_calls_and_switching_them_off(fake_provider_url):  # type: ignore[no-untyped-def]
    both, _ = _read(fake_provider_url, _chat("weather and time [[fake:parallel]]", tools=[WEATHER, TIME]))
    assert [c["function"]["name"] for c in both["choices"][0]["message"]["tool_calls"]] == ["get_weather", "get_time"]
    one, _ = _read(fake_provider_url, _chat("weather and time [[fake:parallel]]", tools=[WEATHER, TIME], parallel_tool_calls=False))
    assert len(one["choices"][0]["message"]["tool_calls"]) == 1


def test_streamed_tool_calls_assemble(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(fake_provider_url, _chat("weather and time [[fake:parallel]]", tools=[WEATHER, TIME]))
    calls = _calls_of(chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"] and all(c["id"].startswith("toolu_") for c in calls)
    assert json.loads(calls[0]["arguments"]) == {"city": "fake city", "days": 1} and json.loads(calls[1]["arguments"]) == {}
    assert _finish_of(chunks) == ["tool_calls"]


def test_tool_results_round_trip(fake_provider_url):  # type: ignore[no-untyped-def]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather and time in Rome?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            {"id": "toolu_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny 25C"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "noon"},
    ]
    body, _ = _read(fake_provider_url, {"model": "claude-chat", "messages": messages, "tools": [WEATHER, TIME]})
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "sunny 25C noon" in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}},
    {"type": "json_object"},
])
def test_json_mode_answers_with_json_text(fake_provider_url, fmt):  # type: ignore[no-untyped-def]
    body, _ = _read(fake_provider_url, _chat("a city as JSON", response_format=fmt))
    choice = body["choices"][0]
    value = json.loads(choice["message"]["content"])
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert isinstance(value, dict) and (fmt["type"] == "json_object" or set(value) == {"name", "population"})
    chunks = _stream(fake_provider_url, _chat("a city as JSON", response_format=fmt))
    assert json.loads(_text_of(chunks)) == value
    assert _finish_of(chunks) == ["stop"] and not _calls_of(chunks)


def test_images_reach_the_upstream(fake_provider_url):  # type: ignore[no-untyped-def]
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    body, _ = _read(fake_provider_url, {"model": "claude-chat", "messages": [{"role": "user", "content": content}]})
    assert "I see 2 images" in body["choices"][0]["message"]["content"]


def test_max_tokens_is_length_and_stop_is_stop(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat("a long story", max_tokens=3))
    assert body["choices"][0]["finish_reason"] == "length" and len(body["choices"][0]["message"]["content"].split()) == 3
    assert usage.output_tokens == 3
    chunks = _stream(fake_provider_url, _chat("a long story", max_tokens=3))
    assert _finish_of(chunks) == ["length"]
    stopped, _ = _read(fake_provider_url, _chat("a story", stop=["fake"]))
    assert stopped["choices"][0]["finish_reason"] == "stop" and "fake" not in stopped["choices"][0]["message"]["content"]


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (404, "invalid_request_error"), (500, "api_error"),
])
def test_upstream_error_status_is_kept(fake_provider_url, status, kind):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, _chat(f"[[fake:status={status}]]"))
    assert error.status == status and error.type == kind and "anthropic-test" in error.message


@pytest.mark.parametrize("status", [401, 403])
def test_credential_rejection_never_echoes_upstream_text(fake_provider_url, status):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, _chat(f"[[fake:status={status}]]"))
    assert error.status == status and error.code == "upstream_auth_failed"
    assert "x-api-key" not in error.message and "permission to use" not in error.message


def test_rate_limit_keeps_retry_after(fake_provider_url):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, _chat("[[fake:status=429]]"))
    assert error.status == 429 and error.type == "rate_limit_error" and error.headers == {"retry-after": "1"}


def test_overloaded_529_stays_529(fake_provider_url):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, _chat("[[fake:status=529]]"))
    assert error.status == 529 and error.type == "overloaded_error" and "overloaded" in error.message


def test_upstream_400_message_names_the_problem(fake_provider_url):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, {"model": "claude-chat", "messages": [{"role": "system", "content": "only a system prompt"}]})
    assert error.status == 400 and "at least one message" in error.message


def test_upstream_hang_is_a_timeout(fake_provider_url):  # type: ignore[no-untyped-def]
    error = _error(fake_provider_url, _chat("[[fake:hang]]"), timeout=0.5)
    assert error.status == 504 and error.code == "upstream_timeout"


def test_stream_cut_midway_raises(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises((upstream.ClientError, GatewayError)):
        _stream(fake_provider_url, _chat("[[fake:cut]] [[fake:words=20]]"))


def test_mid_stream_error_event_raises_overloaded(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as err:
        _stream(fake_provider_url, _chat("[[fake:stream_error]] [[fake:words=20]]"))
    assert err.value.status == 529 and err.value.code == "upstream_stream_error" and "overloaded_error" in err.value.message


# --- refused before any network call ----------------------------------------------------------

@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"temperature": 1.5}, "temperature"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "list", "schema": {"type": "array"}}}},
     "response_format"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
])
def test_unmappable_parameters_are_refused(extra, param):  # type: ignore[no-untyped-def]
    error = _error(DEAD_URL, _chat(**extra))
    assert error.status == 400 and error.code == "unsupported_parameter" and error.param == param
    assert "claude-chat" in error.message


def test_temperature_refusal_states_the_range():  # type: ignore[no-untyped-def]
    assert "0 to 1" in _error(DEAD_URL, _chat(temperature=1.2)).message


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]},
     "messages[0].content[0]"),
    ({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}, "messages[0].content[0]"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]},
     "messages[0].content[0].image_url.url"),
    ({"role": "user", "content": "hi", "name": "bob"}, "messages[0].name"),
])
def test_unmappable_message_parts_are_refused(message, param):  # type: ignore[no-untyped-def]
    error = _error(DEAD_URL, {"model": "claude-chat", "messages": [message]})
    assert error.status == 400 and error.code == "unsupported_parameter" and error.param == param


def test_invalid_tool_call_arguments_name_the_message():  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                      "function": {"name": "get_time", "arguments": "{not json"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "noon"}]
    error = _error(DEAD_URL, {"model": "claude-chat", "messages": messages, "tools": [TIME]})
    assert error.status == 400 and error.param == "messages[1].tool_calls[0].function.arguments"


def test_embeddings_are_unsupported():  # type: ignore[no-untyped-def]
    async def go() -> None:
        async with upstream.Pool() as session:
            await anthropic.embeddings_create(session, _deployment(DEAD_URL), {"model": "claude-chat", "input": "x"})
    with pytest.raises(GatewayError) as err:
        asyncio.run(go())
    assert err.value.status == 400 and err.value.code == "unsupported_parameter" and "embeddings" in err.value.message


# --- native pass-through ------------------------------------------------------------------------

def _native(url: str, body: dict[str, Any], *, stream: bool, operation: str = "messages") -> tuple[Any, list[bytes]]:
    """(JSON body or None, raw SSE events) of a native request."""
    async def go() -> tuple[Any, list[bytes]]:
        deployment = _deployment(url)
        async with upstream.Pool(read_timeout=10) as session:
            response = await anthropic.messages_send(session, deployment, body, stream=stream, operation=operation,
                                                     headers={"anthropic-version": "2023-06-01"})
            try:
                if not stream:
                    return await response.json(), []
                return None, [event async for event in sse_events(response)]
            finally:
                response.release()
    return asyncio.run(go())


NATIVE = {"model": "claude-chat", "max_tokens": 50, "messages": [{"role": "user", "content": "tell me about owls"}]}


def test_native_message_goes_upstream_with_the_upstream_model(fake_provider_url):  # type: ignore[no-untyped-def]
    data, _ = _native(fake_provider_url, {**NATIVE, "top_k": 5}, stream=False)
    assert data["type"] == "message" and data["model"] == "claude-haiku-4-5" and "owls" in data["content"][0]["text"]
    assert anthropic.message_usage(data) == Usage(data["usage"]["input_tokens"], 12)


def test_native_stream_events_fold_into_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    _, events = _native(fake_provider_url, {**NATIVE, "messages": [
        {"role": "user", "content": "owls [[fake:words=7]] [[fake:cached=2]]"}]}, stream=True)
    assert events[0].startswith(b"event: message_start") and events[-1].startswith(b"event: message_stop")
    usage = None
    for event in events:
        usage = anthropic.event_usage(event, usage)
    data, _ = _native(fake_provider_url, {**NATIVE, "messages": [{"role": "user", "content": "owls [[fake:words=7]]"}]},
                      stream=False)
    assert usage == Usage(data["usage"]["input_tokens"] + 1, 7)  # cached tokens count as input too


def test_native_count_tokens(fake_provider_url):  # type: ignore[no-untyped-def]
    body = {"model": "claude-chat", "messages": [{"role": "user", "content": "hi " * 50}]}
    data, _ = _native(fake_provider_url, body, stream=False, operation="messages/count_tokens")
    assert data["input_tokens"] >= 50


def test_native_errors_are_gateway_errors(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as err:
        _native(fake_provider_url, {**NATIVE, "messages": [{"role": "user", "content": "[[fake:status=529]]"}]}, stream=True)
    assert err.value.status == 529 and err.value.type == "overloaded_error"
    with pytest.raises(GatewayError) as bad:
        _native(fake_provider_url, {key: value for key, value in NATIVE.items() if key != "max_tokens"}, stream=False)
    assert bad.value.status == 400 and "max_tokens: Field required" in bad.value.message


def test_event_usage_takes_cumulative_counts():  # type: ignore[no-untyped-def]
    start = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":10,'
             b'"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n')
    delta = b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"input_tokens":10,"output_tokens":42}}\n\n'
    text = b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"message_delta"}}\n\n'
    usage = anthropic.event_usage(start, None)
    assert usage == Usage(18, 1)
    assert anthropic.event_usage(text, usage) == Usage(18, 1)
    assert anthropic.event_usage(delta, usage) == Usage(18, 42)
    assert anthropic.message_usage({"content": []}) is None
