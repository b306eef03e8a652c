"""Conformance: every inbound API, driven by its official SDK, against every upstream
kind (each served by the fake provider in that provider's own wire format). Each test
asserts the parsed SDK objects. The README's compatibility table points here."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.e2e.sdk import (
    CITY_SCHEMA,
    PNG_BASE64,
    TIME_SCHEMA,
    UPSTREAMS,
    WEATHER_SCHEMA,
    anthropic_client,
    events_of,
    openai_client,
)

OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a timezone", "parameters": TIME_SCHEMA}},
]
ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Time in a timezone", "input_schema": TIME_SCHEMA},
]
EXPECTED_WEATHER_ARGS = {"city": "fake city", "unit": "celsius"}
EMBEDDING_UPSTREAMS = ["fake-embed", "fake-azure", "fake-gemini", "fake-cohere", "fake-local"]

parametrize_upstream = pytest.mark.parametrize("model", UPSTREAMS)


# --- OpenAI SDK ------------------------------------------------------------------------------

@parametrize_upstream
def test_openai_text(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    reply = openai_client(gateway_url, secret).chat.completions.create(
        model=model, max_tokens=200, temperature=0.5, top_p=0.9, stop=["zebra"],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "tell me about otters"}],
    )
    assert "otters" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    event = next(e for e in reversed(events_of(workspace)) if e.model == model)
    assert event.status_code == 200 and event.output_tokens == reply.usage.completion_tokens
    assert not event.usage_estimated and (float(event.cost) > 0 or model == "fake-local")


@parametrize_upstream
def test_openai_stream_assembles_deltas_and_usage(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    chunks = list(openai_client(gateway_url, secret).chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "tell me about badgers [[fake:words=20]]"}],
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "badgers" in text and len(text.split()) == 20
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0 and chunks[-1].usage.prompt_tokens > 0


@parametrize_upstream
def test_openai_tool_call_and_tool_result_round_trip(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = openai_client(gateway_url, secret)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(model=model, messages=messages, tools=OPENAI_TOOLS[:1], tool_choice="auto")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == EXPECTED_WEATHER_ARGS
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    answer = client.chat.completions.create(model=model, messages=messages, tools=OPENAI_TOOLS[:1])
    assert answer.choices[0].finish_reason == "stop" and "18" in answer.choices[0].message.content


@parametrize_upstream
def test_openai_streamed_tool_call_arguments_assemble(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    stream = openai_client(gateway_url, secret).chat.completions.create(
        model=model, stream=True, tools=OPENAI_TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}},
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = delta.id or entry["id"]
                entry["name"] += (delta.function.name or "") if delta.function else ""
                entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("get_weather", EXPECTED_WEATHER_ARGS)]
    assert all(c["id"] for c in calls.values())


@parametrize_upstream
def test_openai_parallel_tool_calls(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = openai_client(gateway_url, secret).chat.completions.create(
        model=model, tools=OPENAI_TOOLS, messages=[{"role": "user", "content": "weather and time in Rome [[fake:parallel]]"}],
    )
    calls = reply.choices[0].message.tool_calls
    assert sorted(c.function.name for c in calls) == ["get_time", "get_weather"]
    assert len({c.id for c in calls}) == 2 and json.loads(calls[0].function.arguments)


@parametrize_upstream
def test_openai_image_input_reaches_the_model(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = openai_client(gateway_url, secret).chat.completions.create(model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
    ]}])
    assert "I see 1 image" in reply.choices[0].message.content


@parametrize_upstream
def test_openai_json_schema_response_format(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = openai_client(gateway_url, secret).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "A city, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True}},
    )
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"name", "population"} and isinstance(value["population"], int)
    assert reply.choices[0].finish_reason == "stop"


@parametrize_upstream
def test_openai_streamed_json_mode_assembles_to_valid_json(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    chunks = list(openai_client(gateway_url, secret).chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "A city, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA}},
    ))
    value = json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    assert set(value) == {"name", "population"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


@parametrize_upstream
def test_openai_max_tokens_stops_with_length(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = openai_client(gateway_url, secret).chat.completions.create(
        model=model, max_completion_tokens=3, messages=[{"role": "user", "content": "a long story please"}]
    )
    assert reply.choices[0].finish_reason == "length" and len(reply.choices[0].message.content.split()) == 3


@pytest.mark.parametrize("model", EMBEDDING_UPSTREAMS)
def test_openai_embeddings(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    result = openai_client(gateway_url, secret).embeddings.create(model=model, input=["red fox", "blue whale"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) > 0 and result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0
    event = next(e for e in reversed(events_of(workspace)) if e.model == model)
    assert event.endpoint == "embeddings" and event.input_tokens == result.usage.prompt_tokens


def test_openai_embeddings_on_anthropic_upstream_is_a_clear_400(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(gateway_url, secret).embeddings.create(model="fake-anthropic", input="x")
    assert "fake-anthropic" in err.value.message and err.value.code == "unsupported_parameter"


# --- Anthropic SDK ----------------------------------------------------------------------------

@parametrize_upstream
def test_anthropic_text(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(
        model=model, max_tokens=200, system="Be brief.", stop_sequences=["zebra"], metadata={"user_id": "u-1"},
        messages=[{"role": "user", "content": "tell me about otters"}],
    )
    assert message.content[0].type == "text" and "otters" in message.content[0].text
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    event = next(e for e in reversed(events_of(workspace)) if e.model == model and e.endpoint == "messages")
    assert event.status_code == 200 and event.output_tokens == message.usage.output_tokens


@parametrize_upstream
def test_anthropic_stream_events_assemble(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with anthropic_client(gateway_url, secret).messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "tell me about badgers [[fake:words=20]]"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "badgers" in text and len(text.split()) == 20
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


@parametrize_upstream
def test_anthropic_tool_use_and_tool_result_round_trip(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = anthropic_client(gateway_url, secret)
    messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    message = client.messages.create(model=model, max_tokens=200, tools=ANTHROPIC_TOOLS[:1], messages=messages)
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == EXPECTED_WEATHER_ARGS and use.id
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 degrees and sunny"}]}]
    answer = client.messages.create(model=model, max_tokens=200, tools=ANTHROPIC_TOOLS[:1], messages=messages)
    assert answer.stop_reason == "end_turn" and "18" in answer.content[0].text


@parametrize_upstream
def test_anthropic_streamed_tool_use_assembles(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with anthropic_client(gateway_url, secret).messages.stream(
        model=model, max_tokens=200, tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [("get_weather", EXPECTED_WEATHER_ARGS)]


@parametrize_upstream
def test_anthropic_parallel_tool_use(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(
        model=model, max_tokens=200, tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather and time in Rome [[fake:parallel]]"}],
    )
    uses = [b for b in message.content if b.type == "tool_use"]
    assert sorted(b.name for b in uses) == ["get_time", "get_weather"] and len({b.id for b in uses}) == 2


@parametrize_upstream
def test_anthropic_image_input_reaches_the_model(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        {"type": "text", "text": "what is in this picture?"},
    ]}])
    assert "I see 1 image" in message.content[0].text


@parametrize_upstream
def test_anthropic_structured_output(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "A city, as JSON."}],
        output_config={"format": {"type": "json_schema", "schema": CITY_SCHEMA}},
    )
    value = json.loads(message.content[0].text)
    assert set(value) == {"name", "population"} and message.stop_reason == "end_turn"


@parametrize_upstream
def test_anthropic_max_tokens_stop_reason(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(
        model=model, max_tokens=3, messages=[{"role": "user", "content": "a long story please"}]
    )
    assert message.stop_reason == "max_tokens" and len(message.content[0].text.split()) == 3


@parametrize_upstream
def test_anthropic_count_tokens(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = anthropic_client(gateway_url, secret)
    short = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    longer = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi " * 200}])
    assert 0 < short.input_tokens < longer.input_tokens


def test_anthropic_models_list(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    ids = {m.id for m in anthropic_client(gateway_url, secret).models.list()}
    assert set(UPSTREAMS) <= ids


# --- errors, both SDKs, every upstream kind ---------------------------------------------------------

OPENAI_ERRORS = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
                 429: openai.RateLimitError, 500: openai.InternalServerError}
ANTHROPIC_ERRORS = {400: anthropic.BadRequestError, 401: anthropic.AuthenticationError, 404: anthropic.NotFoundError,
                    429: anthropic.RateLimitError, 500: anthropic.InternalServerError}


@parametrize_upstream
@pytest.mark.parametrize("status", sorted(OPENAI_ERRORS))
def test_openai_client_gets_upstream_errors_as_sdk_exceptions(gateway_url, sdk_key, model, status):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(OPENAI_ERRORS[status]) as err:
        openai_client(gateway_url, secret).chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"[[fake:status={status}]]"}])
    assert err.value.status_code == status and err.value.message
    if status == 429:
        assert err.value.response.headers["retry-after"] == "1"
    if status == 401:
        assert err.value.code == "upstream_auth_failed" and "sk-upstream-secret-123" not in err.value.response.text


@parametrize_upstream
@pytest.mark.parametrize("status", sorted(ANTHROPIC_ERRORS))
def test_anthropic_client_gets_upstream_errors_as_sdk_exceptions(gateway_url, sdk_key, model, status):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(ANTHROPIC_ERRORS[status]) as err:
        anthropic_client(gateway_url, secret).messages.create(
            model=model, max_tokens=50, messages=[{"role": "user", "content": f"[[fake:status={status}]]"}])
    assert err.value.status_code == status
    assert err.value.body["type"] == "error" and err.value.body["error"]["message"]
    if status == 429:
        assert err.value.response.headers["retry-after"] == "1"


def test_anthropic_overloaded_529_reaches_both_sdks(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    content = [{"role": "user", "content": "[[fake:status=529]]"}]
    with pytest.raises(anthropic.OverloadedError) as err:
        anthropic_client(gateway_url, secret).messages.create(model="fake-anthropic", max_tokens=50, messages=content)
    assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(openai.InternalServerError) as err2:
        openai_client(gateway_url, secret).chat.completions.create(model="fake-anthropic", messages=content)
    assert err2.value.status_code == 503


@parametrize_upstream
def test_upstream_timeout_is_504_for_both_sdks(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    content = [{"role": "user", "content": "[[fake:hang]]"}]
    with pytest.raises(openai.InternalServerError) as err:
        openai_client(gateway_url, secret).chat.completions.create(model=model, messages=content)
    assert err.value.status_code == 504 and err.value.code == "upstream_timeout"
    with pytest.raises(anthropic.InternalServerError) as err2:
        anthropic_client(gateway_url, secret).messages.create(model=model, max_tokens=50, messages=content)
    assert err2.value.status_code == 504 and err2.value.body["error"]["type"] == "timeout_error"


@pytest.mark.parametrize("model", ["fake-openai", "fake-anthropic", "fake-gemini"])
def test_stream_cut_mid_answer_ends_in_an_error_event(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    content = [{"role": "user", "content": "[[fake:cut]] [[fake:words=20]]"}]
    with pytest.raises(openai.APIError):
        list(openai_client(gateway_url, secret).chat.completions.create(model=model, messages=content, stream=True))
    with pytest.raises(anthropic.APIError):
        with anthropic_client(gateway_url, secret).messages.stream(model=model, max_tokens=50, messages=content) as stream:
            list(stream.text_stream)


@parametrize_upstream
def test_upstream_connection_reset_is_502_for_both_sdks(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    content = [{"role": "user", "content": "[[fake:reset]]"}]
    with pytest.raises(openai.APIStatusError) as err:
        openai_client(gateway_url, secret).chat.completions.create(model=model, messages=content)
    assert err.value.status_code == 502 and err.value.code == "upstream_unreachable"
    with pytest.raises(anthropic.APIStatusError) as err2:
        anthropic_client(gateway_url, secret).messages.create(model=model, max_tokens=50, messages=content)
    assert err2.value.status_code == 502 and err2.value.body["error"]["type"] == "api_error"
