"""The fake provider's Anthropic wire module, driven by the official `anthropic` SDK:
what the fake sends is what the SDK parses (messages, streamed events, tool use, usage,
token counting), and its errors raise the SDK's own exception classes."""

from __future__ import annotations

import json

import anthropic
import pytest

PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string",
                            "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}}}
MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def client(fake_provider_url):  # type: ignore[no-untyped-def]
    return anthropic.Anthropic(api_key="x", base_url=fake_provider_url, max_retries=0, timeout=10)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_text_answer_has_anthropic_shape_and_usage(client):  # type: ignore[no-untyped-def]
    message = client.messages.create(model=MODEL, max_tokens=100, system="Be brief.", messages=_user("tell me about otters"),
                                     metadata={"user_id": "u-1"}, extra_body={"temperature": 0.5, "top_k": 5})
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL and message.content[0].type == "text" and "otters" in message.content[0].text
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 12
    assert message.usage.cache_read_input_tokens == 0 and message.usage.cache_creation_input_tokens == 0


def test_stream_events_assemble_into_the_final_message(client):  # type: ignore[no-untyped-def]
    with client.messages.stream(model=MODEL, max_tokens=100, messages=_user("tell me about badgers [[fake:words=20]]")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "badgers" in text and len(text.split()) == 20
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens == 20


def test_raw_stream_has_the_documented_event_sequence(client):  # type: ignore[no-untyped-def]
    events = list(client.messages.create(model=MODEL, max_tokens=100, stream=True, messages=_user("hi [[fake:words=3]]")))
    kinds = [e.type for e in events]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = events[0].message
    assert start.content == [] and start.stop_reason is None and start.usage.input_tokens > 0
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 3


def test_tool_use_and_tool_result_round_trip(client):  # type: ignore[no-untyped-def]
    messages: list = _user("What is the weather in Paris?")
    message = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=messages)
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.id.startswith("toolu_") and use.name == "get_weather" and set(use.input) == {"city", "unit"}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 degrees"}]}]
    answer = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=messages)
    assert answer.stop_reason == "end_turn" and "18 degrees" in answer.content[0].text


def test_streamed_tool_input_assembles(client):  # type: ignore[no-untyped-def]
    with client.messages.stream(model=MODEL, max_tokens=100, tools=[WEATHER, TIME],
                                tool_choice={"type": "tool", "name": "get_time"}, messages=_user("time in Oslo?")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [("get_time", {"timezone": "fake timezone"})]


def test_parallel_tool_use_and_its_switch(client):  # type: ignore[no-untyped-def]
    prompt = _user("weather and time in Rome [[fake:parallel]]")
    both = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER, TIME], messages=prompt)
    assert sorted(b.name for b in both.content if b.type == "tool_use") == ["get_time", "get_weather"]
    one = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER, TIME], messages=prompt,
                                 tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert len([b for b in one.content if b.type == "tool_use"]) == 1


def test_structured_output_is_json_text(client):  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["name", "population"], "additionalProperties": False}
    message = client.messages.create(model=MODEL, max_tokens=100, messages=_user("A city, as JSON."),
                                     output_config={"format": {"type": "json_schema", "schema": schema}})
    assert set(json.loads(message.content[0].text)) == {"name", "population"}


def test_images_in_the_last_user_turn_reach_the_model(client):  # type: ignore[no-untyped-def]
    message = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is in these pictures?"},
    ]}])
    assert "I see 2 images" in message.content[0].text


def test_max_tokens_and_stop_sequence_stop_reasons(client):  # type: ignore[no-untyped-def]
    cut = client.messages.create(model=MODEL, max_tokens=3, messages=_user("a long story please"))
    assert cut.stop_reason == "max_tokens" and len(cut.content[0].text.split()) == 3
    stopped = client.messages.create(model=MODEL, max_tokens=100, stop_sequences=["fake"], messages=_user("a story"))
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "fake"
    assert "fake" not in stopped.content[0].text


def test_cached_directive_splits_input_tokens(client):  # type: ignore[no-untyped-def]
    plain = client.messages.create(model=MODEL, max_tokens=10, messages=_user("same words here [[fake:cached=4]]"))
    assert plain.usage.cache_read_input_tokens == 4 and plain.usage.input_tokens > 0


def test_count_tokens_grows_with_the_prompt(client):  # type: ignore[no-untyped-def]
    short = client.messages.count_tokens(model=MODEL, messages=_user("hi"))
    longer = client.messages.count_tokens(model=MODEL, messages=_user("hi " * 200), system="Be brief.")
    assert 0 < short.input_tokens < longer.input_tokens


@pytest.mark.parametrize(("status", "error_class", "kind"), [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (401, anthropic.AuthenticationError, "authentication_error"),
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
])
def test_error_statuses_raise_the_sdk_classes(client, status, error_class, kind):  # type: ignore[no-untyped-def]
    with pytest.raises(error_class) as err:
        client.messages.create(model=MODEL, max_tokens=10, messages=_user(f"[[fake:status={status}]]"))
    assert err.value.status_code == status
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == kind and err.value.body["error"]["message"]
    if status == 429:
        assert err.value.response.headers["retry-after"] == "1"


def test_mid_stream_error_event_raises(client):  # type: ignore[no-untyped-def]
    with pytest.raises(anthropic.APIStatusError) as err:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=_user("hi [[fake:stream_error]]")) as stream:
            "".join(stream.text_stream)
    assert err.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(("request_kwargs", "expected"), [
    ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
    ({"max_tokens": 10, "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]},
     'Unexpected role "system"'),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n: Extra inputs are not permitted"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5},
     "temperature: Input should be less than or equal to 1"),
    ({"max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}]},
        {"role": "user", "content": "and?"}], "tools": [TIME]},
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_BASE64}}]}]},
     "media_type: Input should be 'image/jpeg'"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "any"}},
     "tool_choice may only be specified while providing tools"),
])
def test_requests_the_real_api_refuses_get_its_400(client, request_kwargs, expected):  # type: ignore[no-untyped-def]
    body = {"model": MODEL, **request_kwargs}
    with pytest.raises(anthropic.BadRequestError) as err:
        client.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    assert err.value.body["error"]["type"] == "invalid_request_error" and expected in err.value.body["error"]["message"]


def test_missing_anthropic_version_header_is_refused(client):  # type: ignore[no-untyped-def]
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=MODEL, max_tokens=10, messages=_user("hi"), extra_headers={"anthropic-version": anthropic.Omit()})
    assert "anthropic-version" in err.value.body["error"]["message"]
