"""The official cohere SDK (ClientV2) against the running gateway: Cohere's API v2 inbound,
every upstream kind behind it (each served by the fake provider in its own wire format).
Each test asserts the parsed SDK objects."""

from __future__ import annotations

import base64
import json
import struct

import cohere
import httpx
import pytest

from tests.e2e.sdk import CITY_SCHEMA, PNG_BASE64, TIME_SCHEMA, UPSTREAMS, WEATHER_SCHEMA, events_of

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a timezone", "parameters": TIME_SCHEMA}},
]
EXPECTED_WEATHER_ARGS = {"city": "fake city", "unit": "celsius"}
EMBEDDING_UPSTREAMS = ["fake-embed", "fake-azure", "fake-gemini", "fake-cohere", "fake-local"]

parametrize_upstream = pytest.mark.parametrize("model", UPSTREAMS)


def _client(gateway_url: str, secret: str) -> cohere.ClientV2:
    return cohere.ClientV2(api_key=secret, base_url=gateway_url, max_retries=0, timeout=20)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _post(gateway_url: str, secret: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(gateway_url + path, json=body, headers={"authorization": f"Bearer {secret}"}, timeout=20)


# --- chat -------------------------------------------------------------------------------------

@parametrize_upstream
def test_text_answer_with_finish_reason_usage_and_usage_event(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    reply = _client(gateway_url, secret).chat(
        model=model, max_tokens=200, temperature=0.5, p=0.9, stop_sequences=["zebra"], seed=7,
        messages=[{"role": "system", "content": "Be brief."}, *_user("tell me about otters")],
    )
    assert reply.finish_reason == "COMPLETE" and reply.message.role == "assistant"
    assert reply.message.content[0].type == "text" and "otters" in reply.message.content[0].text
    assert reply.usage.tokens.input_tokens > 0 and reply.usage.tokens.output_tokens > 0
    assert reply.usage.billed_units.output_tokens == reply.usage.tokens.output_tokens
    event = next(e for e in reversed(events_of(workspace)) if e.model == model and e.endpoint == "chat")
    assert event.status_code == 200 and event.output_tokens == reply.usage.tokens.output_tokens and not event.stream


@parametrize_upstream
def test_stream_events_assemble_and_end_with_usage(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    events = list(_client(gateway_url, secret).chat_stream(model=model, messages=_user("tell me about badgers [[fake:words=20]]")))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message-start", "content-start"] and kinds[-2:] == ["content-end", "message-end"]
    assert set(kinds[2:-2]) == {"content-delta"}
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert "badgers" in text and len(text.split()) == 20
    end = events[-1].delta
    assert end.finish_reason == "COMPLETE" and end.usage.tokens.output_tokens > 0 and end.usage.tokens.input_tokens > 0
    event = next(e for e in reversed(events_of(workspace)) if e.model == model and e.stream)
    assert event.endpoint == "chat" and event.output_tokens == end.usage.tokens.output_tokens


@parametrize_upstream
def test_tool_call_and_tool_result_round_trip(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = _client(gateway_url, secret)
    messages: list = _user("What is the weather in Paris?")
    reply = client.chat(model=model, messages=messages, tools=TOOLS[:1])
    assert reply.finish_reason == "TOOL_CALL"
    (call,) = reply.message.tool_calls
    assert call.id and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == EXPECTED_WEATHER_ARGS
    assistant = {"role": "assistant", "tool_calls": [call.dict()]}
    if reply.message.tool_plan:
        assistant["tool_plan"] = reply.message.tool_plan
    messages += [assistant, {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"}]
    answer = client.chat(model=model, messages=messages, tools=TOOLS[:1])
    assert answer.finish_reason == "COMPLETE" and "18 degrees" in answer.message.content[0].text


@parametrize_upstream
def test_tool_result_documents_reach_the_model(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    messages = [
        *_user("What is the weather in Paris?"),
        {"role": "assistant", "tool_plan": "I will check the weather.", "tool_calls": [
            {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "get_weather_1",
         "content": [{"type": "document", "document": {"data": {"forecast": "rainy"}}}, {"type": "text", "text": "and 9C"}]},
    ]
    answer = _client(gateway_url, secret).chat(model=model, messages=messages, tools=TOOLS[:1])
    assert "rainy" in answer.message.content[0].text and "9C" in answer.message.content[0].text


@parametrize_upstream
def test_streamed_required_tool_call_assembles(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    events = list(_client(gateway_url, secret).chat_stream(
        model=model, tools=TOOLS, tool_choice="REQUIRED", messages=_user("weather in Oslo?")))
    starts = [e for e in events if e.type == "tool-call-start"]
    assert [(s.index, s.delta.message.tool_calls.function.name) for s in starts] == [(0, "get_weather")]
    assert starts[0].delta.message.tool_calls.id
    arguments = "".join(e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta")
    assert json.loads(arguments) == EXPECTED_WEATHER_ARGS
    assert [e.index for e in events if e.type == "tool-call-end"] == [0]
    assert events[-1].type == "message-end" and events[-1].delta.finish_reason == "TOOL_CALL"


@parametrize_upstream
def test_parallel_tool_calls(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = _client(gateway_url, secret)
    reply = client.chat(model=model, tools=TOOLS, messages=_user("weather and time in Rome [[fake:parallel]]"))
    calls = reply.message.tool_calls
    assert sorted(c.function.name for c in calls) == ["get_time", "get_weather"]
    assert len({c.id for c in calls}) == 2 and all(json.loads(c.function.arguments) for c in calls)
    events = list(client.chat_stream(model=model, tools=TOOLS, messages=_user("weather and time in Rome [[fake:parallel]]")))
    starts = {e.index: e.delta.message.tool_calls.function.name for e in events if e.type == "tool-call-start"}
    assert sorted(starts.values()) == ["get_time", "get_weather"] and sorted(starts) == [0, 1]


@parametrize_upstream
def test_tool_choice_none_answers_in_text(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = _client(gateway_url, secret).chat(model=model, tools=TOOLS, tool_choice="NONE", messages=_user("weather in Oslo?"))
    assert reply.finish_reason == "COMPLETE" and not reply.message.tool_calls and "Oslo" in reply.message.content[0].text


@parametrize_upstream
def test_image_input_reaches_the_model(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    reply = _client(gateway_url, secret).chat(model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
    ]}])
    assert "I see 1 image" in reply.message.content[0].text


@parametrize_upstream
def test_json_mode_with_schema(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = _client(gateway_url, secret)
    fmt = {"type": "json_object", "json_schema": CITY_SCHEMA}
    reply = client.chat(model=model, messages=_user("A city, as JSON."), response_format=fmt)
    value = json.loads(reply.message.content[0].text)
    assert set(value) == {"name", "population"} and isinstance(value["population"], int)
    events = list(client.chat_stream(model=model, messages=_user("A city, as JSON."), response_format=fmt))
    streamed = json.loads("".join(e.delta.message.content.text for e in events if e.type == "content-delta"))
    assert set(streamed) == {"name", "population"} and events[-1].delta.finish_reason == "COMPLETE"


@parametrize_upstream
def test_max_tokens_finishes_with_max_tokens(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    client = _client(gateway_url, secret)
    reply = client.chat(model=model, max_tokens=3, messages=_user("a long story please"))
    assert reply.finish_reason == "MAX_TOKENS" and len(reply.message.content[0].text.split()) == 3
    events = list(client.chat_stream(model=model, max_tokens=3, messages=_user("a long story please")))
    assert events[-1].delta.finish_reason == "MAX_TOKENS"


def test_hints_the_gateway_ignores_are_named_in_a_header(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = _post(gateway_url, secret, "/v2/chat", {
        "model": "fake-openai", "messages": _user("hi"), "priority": 1, "citation_options": {"mode": "FAST"}, "k": 0})
    assert response.status_code == 200
    assert set(response.headers["x-aiproxy-ignored-params"].split(",")) == {"priority", "citation_options"}


# --- embed ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", EMBEDDING_UPSTREAMS)
def test_embed_float_and_base64(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, secret = sdk_key
    texts = ["red fox", "blue whale"]
    reply = _client(gateway_url, secret).embed(model=model, texts=texts, input_type="search_document",
                                                embedding_types=["float", "base64"])
    vectors = reply.embeddings.float_
    assert len(vectors) == 2 and len(vectors[0]) > 0 and vectors[0] != vectors[1]
    assert reply.texts == texts and reply.meta.billed_units.input_tokens > 0
    packed = base64.b64decode(reply.embeddings.base64[1])
    assert list(struct.unpack(f"<{len(vectors[1])}f", packed)) == pytest.approx(vectors[1], abs=1e-6)
    event = next(e for e in reversed(events_of(workspace)) if e.model == model)
    assert event.endpoint == "embeddings" and event.input_tokens == reply.meta.billed_units.input_tokens


@pytest.mark.parametrize("model", ["fake-openai", "fake-cohere"])
def test_embed_text_inputs_and_output_dimension(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    model = "fake-embed" if model == "fake-openai" else model
    reply = _client(gateway_url, secret).embed(
        model=model, input_type="search_query", output_dimension=256,
        inputs=[{"content": [{"type": "text", "text": "red fox"}]}, {"content": [{"type": "text", "text": "blue whale"}]}])
    assert [len(v) for v in reply.embeddings.float_] == [256, 256] and reply.texts == ["red fox", "blue whale"]


def test_embed_on_an_anthropic_upstream_is_a_clear_400(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.BadRequestError) as caught:
        _client(gateway_url, secret).embed(model="fake-anthropic", texts=["x"], input_type="search_document")
    assert caught.value.status_code == 400 and "fake-anthropic" in caught.value.body["message"]


# --- errors -----------------------------------------------------------------------------------

ERRORS = {400: cohere.BadRequestError, 401: cohere.UnauthorizedError, 404: cohere.NotFoundError,
          429: cohere.TooManyRequestsError, 500: cohere.InternalServerError}


@parametrize_upstream
@pytest.mark.parametrize("status", sorted(ERRORS))
def test_upstream_errors_raise_the_sdk_error_classes(gateway_url, sdk_key, model, status):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(ERRORS[status]) as caught:
        _client(gateway_url, secret).chat(model=model, messages=_user(f"[[fake:status={status}]]"))
    assert caught.value.status_code == status
    assert isinstance(caught.value.body["message"], str) and caught.value.body["message"] and caught.value.body["id"]
    if status == 429:
        assert caught.value.headers["retry-after"] == "1"
    if status == 401:
        assert "sk-upstream-secret-123" not in caught.value.body["message"]


def test_rate_limit_on_a_stream_keeps_retry_after(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.TooManyRequestsError) as caught:
        list(_client(gateway_url, secret).chat_stream(model="fake-gemini", messages=_user("[[fake:status=429]]")))
    assert caught.value.status_code == 429 and caught.value.headers["retry-after"] == "1"


def test_anthropic_overloaded_is_service_unavailable(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.ServiceUnavailableError) as caught:
        _client(gateway_url, secret).chat(model="fake-anthropic", messages=_user("[[fake:status=529]]"))
    assert caught.value.status_code == 503 and caught.value.body["message"]


@parametrize_upstream
def test_upstream_timeout_is_gateway_timeout(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.GatewayTimeoutError) as caught:
        _client(gateway_url, secret).chat(model=model, messages=_user("[[fake:hang]]"))
    assert caught.value.status_code == 504 and "did not answer in time" in caught.value.body["message"]


@pytest.mark.parametrize("model", ["fake-openai", "fake-anthropic", "fake-cohere"])
def test_stream_cut_mid_answer_ends_with_an_error_finish(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    events = list(_client(gateway_url, secret).chat_stream(model=model, messages=_user("[[fake:cut]] [[fake:words=20]]")))
    end = events[-1]
    assert end.type == "message-end" and end.delta.finish_reason == "ERROR" and end.delta.error
    assert events[0].type == "message-start"


def test_wrong_key_and_unknown_model(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.UnauthorizedError) as caught:
        _client(gateway_url, "sk-not-a-real-key").chat(model="fake-openai", messages=_user("hi"))
    assert caught.value.status_code == 401 and caught.value.body["message"]
    with pytest.raises(cohere.NotFoundError) as missing:
        _client(gateway_url, secret).chat(model="no-such-model", messages=_user("hi"))
    assert missing.value.status_code == 404 and "no-such-model" in missing.value.body["message"]


# --- bad input --------------------------------------------------------------------------------

BAD_CHAT = [
    ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant"}]}, "messages[0]"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}, "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": 3}}}]},
     "tools[0].function.parameters"),
    ({"tool_choice": "REQUIRED"}, "tool_choice"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"p": 1.0}, "p"),
    ({"k": 40}, "k"),
    ({"documents": ["Otters hold hands."]}, "documents"),
    ({"thinking": {"type": "enabled"}}, "thinking"),
    ({"logprobs": True}, "logprobs"),
    ({"safety_mode": "OFF"}, "safety_mode"),
    ({"top_p": 0.5}, "top_p"),
    ({"response_format": {"type": "json_object"}, "tools": TOOLS}, "response_format"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"stop_sequences": "zebra"}, "stop_sequences"),
]


@pytest.mark.parametrize(("patch", "field"), BAD_CHAT)
def test_bad_chat_input_is_a_400_naming_the_field(gateway_url, sdk_key, patch, field):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    body = {"model": "fake-openai", "messages": _user("hi"), **patch}
    response = _post(gateway_url, secret, "/v2/chat", body)
    assert response.status_code == 400
    assert field in response.json()["message"] and response.json()["id"]


BAD_EMBED = [
    ({"input_type": None}, "input_type"),
    ({"texts": []}, "texts"),
    ({"texts": None}, "texts"),
    ({"embedding_types": ["int8"]}, "embedding_types"),
    ({"images": ["data:image/png;base64,AAAA"]}, "images"),
    ({"texts": None, "inputs": [{"content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
     "inputs[0].content[0]"),
    ({"truncate": "END"}, "truncate"),
    ({"max_tokens": 10}, "max_tokens"),
    ({"input": ["x"]}, "input"),
]


@pytest.mark.parametrize(("patch", "field"), BAD_EMBED)
def test_bad_embed_input_is_a_400_naming_the_field(gateway_url, sdk_key, patch, field):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    body = {"model": "fake-cohere", "texts": ["x"], "input_type": "search_document", **patch}
    response = _post(gateway_url, secret, "/v2/embed", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400 and field in response.json()["message"]


def test_the_sdk_surfaces_a_bad_request(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(cohere.BadRequestError) as caught:
        _client(gateway_url, secret).chat(model="fake-cohere", messages=_user("hi"), k=40)
    assert caught.value.status_code == 400 and "'k'" in caught.value.body["message"]
