"""The official cohere SDK (ClientV2) against the fake provider's Cohere wire module:
what the SDK parses from the fake is what it would parse from api.cohere.com."""

from __future__ import annotations

import json

import cohere
import httpx
import pytest
from cohere.core.api_error import ApiError

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time.", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}


@pytest.fixture
def co(fake_provider_url):  # type: ignore[no-untyped-def]
    return cohere.ClientV2(api_key="test-key", base_url=fake_provider_url, max_retries=0, timeout=10)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_chat_answers_text_with_finish_reason_and_usage(co):  # type: ignore[no-untyped-def]
    reply = co.chat(model="command-a-03-2025", messages=[{"role": "system", "content": "Be brief."},
                                                         *_user("tell me about otters")])
    assert reply.finish_reason == "COMPLETE"
    assert reply.message.role == "assistant"
    assert "otters" in reply.message.content[0].text
    assert reply.usage.tokens.output_tokens == 12
    assert reply.usage.billed_units.input_tokens == reply.usage.tokens.input_tokens > 0


def test_chat_stream_events_assemble_text_and_end_with_usage(co):  # type: ignore[no-untyped-def]
    events = list(co.chat_stream(model="command-a-03-2025", messages=_user("stream about rivers [[fake:words=20]]")))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message-start", "content-start"] and kinds[-2:] == ["content-end", "message-end"]
    assert set(kinds[2:-2]) == {"content-delta"}
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert len(text.split()) == 20 and "rivers" in text
    end = events[-1]
    assert end.delta.finish_reason == "COMPLETE" and end.delta.usage.tokens.output_tokens == 20


def test_chat_calls_a_tool_with_a_plan_and_schema_valid_arguments(co):  # type: ignore[no-untyped-def]
    reply = co.chat(model="command-a-03-2025", messages=_user("weather in Paris?"), tools=[WEATHER])
    assert reply.finish_reason == "TOOL_CALL"
    assert reply.message.tool_plan
    (call,) = reply.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)


def test_chat_stream_parallel_tool_calls_have_their_own_index(co):  # type: ignore[no-untyped-def]
    events = list(co.chat_stream(model="command-a-03-2025", messages=_user("both please [[fake:parallel]]"),
                                 tools=[WEATHER, TIME]))
    plan = "".join(e.delta.message.tool_plan for e in events if e.type == "tool-plan-delta")
    assert "get_weather" in plan
    starts = [e for e in events if e.type == "tool-call-start"]
    assert [(s.index, s.delta.message.tool_calls.function.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    arguments: dict[int, str] = {0: "", 1: ""}
    for e in events:
        if e.type == "tool-call-delta":
            arguments[e.index] += e.delta.message.tool_calls.function.arguments
    assert json.loads(arguments[0])["city"] and "zone" in json.loads(arguments[1])
    assert events[-1].delta.finish_reason == "TOOL_CALL"


def test_tool_choice_none_answers_in_text_and_required_needs_tools(co):  # type: ignore[no-untyped-def]
    reply = co.chat(model="command-a-03-2025", messages=_user("weather?"), tools=[WEATHER], tool_choice="NONE")
    assert reply.finish_reason == "COMPLETE" and not reply.message.tool_calls
    with pytest.raises(cohere.BadRequestError) as caught:
        co.chat(model="command-a-03-2025", messages=_user("weather?"), tool_choice="REQUIRED")
    assert "tool" in caught.value.body["message"]


def test_tool_results_at_the_end_are_answered_in_text(co):  # type: ignore[no-untyped-def]
    messages = [
        *_user("weather in Paris?"),
        {"role": "assistant", "tool_plan": "I will check.", "tool_calls": [
            {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "get_weather_1", "content": [{"type": "text", "text": "sunny and 21C"}]},
    ]
    reply = co.chat(model="command-a-03-2025", messages=messages, tools=[WEATHER])
    assert reply.finish_reason == "COMPLETE" and "sunny and 21C" in reply.message.content[0].text


def test_json_mode_follows_the_schema(co):  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name"]}
    reply = co.chat(model="command-a-03-2025", messages=_user("a person as JSON"),
                    response_format={"type": "json_object", "json_schema": schema})
    value = json.loads(reply.message.content[0].text)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_images_in_the_last_user_turn_are_seen(co):  # type: ignore[no-untyped-def]
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PNG}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}]
    reply = co.chat(model="command-a-vision-07-2025", messages=[{"role": "user", "content": content}])
    assert reply.message.content[0].text.startswith("I see 2 images")


def test_max_tokens_and_stop_sequences_set_the_finish_reason(co):  # type: ignore[no-untyped-def]
    short = co.chat(model="command-a-03-2025", messages=_user("long story"), max_tokens=3)
    assert short.finish_reason == "MAX_TOKENS" and len(short.message.content[0].text.split()) == 3
    stopped = co.chat(model="command-a-03-2025", messages=_user("about foxes"), stop_sequences=["fake"])
    assert stopped.finish_reason == "STOP_SEQUENCE" and "fake" not in stopped.message.content[0].text


def test_no_usage_directive_leaves_usage_out(co):  # type: ignore[no-untyped-def]
    reply = co.chat(model="command-a-03-2025", messages=_user("hi [[fake:no_usage]]"))
    assert reply.usage is None


def test_fields_the_real_api_does_not_know_are_rejected(co):  # type: ignore[no-untyped-def]
    with pytest.raises(cohere.BadRequestError) as caught:
        co.chat(model="command-a-03-2025", messages=_user("hi"), request_options={"additional_body_parameters": {"top_p": 0.5}})
    assert "top_p" in caught.value.body["message"]
    with pytest.raises(cohere.BadRequestError):
        co.chat(model="command-a-03-2025", messages=_user("hi"), p=1.0)


def test_embed_returns_float_and_int8_embeddings_with_billed_units(co):  # type: ignore[no-untyped-def]
    reply = co.embed(model="embed-v4.0", texts=["one text", "another text here"], input_type="search_document",
                     embedding_types=["float", "int8"], output_dimension=256)
    assert len(reply.embeddings.float_) == 2 and len(reply.embeddings.float_[0]) == 256
    assert len(reply.embeddings.int8[1]) == 256 and all(-128 <= v <= 127 for v in reply.embeddings.int8[1])
    assert reply.texts == ["one text", "another text here"]
    assert reply.meta.billed_units.input_tokens == 5
    again = co.embed(model="embed-v4.0", texts=["one text"], input_type="search_document", embedding_types=["float"],
                     output_dimension=256)
    assert again.embeddings.float_[0] == reply.embeddings.float_[0]


def test_embed_without_input_type_is_rejected(co):  # type: ignore[no-untyped-def]
    with pytest.raises(cohere.BadRequestError) as caught:
        co.embed(model="embed-v4.0", texts=["x"], input_type=None)  # type: ignore[arg-type]
    assert "input_type" in caught.value.body["message"]


@pytest.mark.parametrize(("status", "error_class"), [
    (400, cohere.BadRequestError), (401, cohere.UnauthorizedError), (404, cohere.NotFoundError),
    (422, cohere.UnprocessableEntityError), (429, cohere.TooManyRequestsError), (499, cohere.ClientClosedRequestError),
    (500, cohere.InternalServerError), (503, cohere.ServiceUnavailableError),
])
def test_error_statuses_raise_the_sdk_error_classes(co, status, error_class):  # type: ignore[no-untyped-def]
    with pytest.raises(error_class) as caught:
        co.chat(model="command-a-03-2025", messages=_user(f"hi [[fake:status={status}]]"))
    assert caught.value.status_code == status
    assert isinstance(caught.value.body["message"], str) and caught.value.body["message"]


def test_rate_limit_carries_retry_after_also_when_streaming(co):  # type: ignore[no-untyped-def]
    with pytest.raises(cohere.TooManyRequestsError) as caught:
        list(co.chat_stream(model="command-a-03-2025", messages=_user("hi [[fake:status=429]]")))
    assert caught.value.headers["retry-after"] == "1"


def test_payment_required_is_an_api_error_with_cohere_message(co):  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as caught:
        co.embed(model="embed-v4.0", texts=["x [[fake:status=402]]"], input_type="search_query")
    assert caught.value.status_code == 402 and "payment" in caught.value.body["message"]


def test_missing_api_key_is_unauthorized(fake_provider_url):  # type: ignore[no-untyped-def]
    response = httpx.post(fake_provider_url + "/v2/chat", json={"model": "m", "messages": _user("hi")})
    assert response.status_code == 401 and response.json()["message"] == "no api key supplied"


def test_stream_cut_mid_way_fails_the_sdk_iteration(co):  # type: ignore[no-untyped-def]
    with pytest.raises(httpx.HTTPError):
        list(co.chat_stream(model="command-a-03-2025", messages=_user("cut me [[fake:cut]] [[fake:words=20]]")))
