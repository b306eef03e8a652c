"""The official google-genai SDK against the fake provider's Gemini wire format: what the
SDK sends is accepted and what the fake answers is what the SDK parses."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from google import genai
from google.genai import errors, types

MODEL = "gemini-2.5-flash-fake"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = types.FunctionDeclaration(
    name="get_time", description="Local time in a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}),
)


@pytest.fixture(scope="module")
def client(fake_provider_url):  # type: ignore[no-untyped-def]
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=fake_provider_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))


def test_text_answer_with_usage_and_finish_reason(client):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=MODEL, contents="tell me about otters",
        config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.2, top_p=0.9, seed=7),
    )
    assert "otters" in reply.text and len(reply.text.split()) == 12
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.candidates_token_count == 12
    assert reply.usage_metadata.total_token_count == reply.usage_metadata.prompt_token_count + 12
    assert reply.model_version == MODEL and reply.response_id


def test_v1_api_version_is_served_too(fake_provider_url):  # type: ignore[no-untyped-def]
    client = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=fake_provider_url, api_version="v1", retry_options=types.HttpRetryOptions(attempts=1)))
    assert "lakes" in client.models.generate_content(model=MODEL, contents="lakes").text


def test_streaming_pieces_assemble_and_last_event_carries_finish_and_usage(client):  # type: ignore[no-untyped-def]
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream about rivers [[fake:words=30]]"))
    text = "".join(c.text or "" for c in chunks)
    assert len(chunks) == 30 and len(text.split()) == 30 and "rivers" in text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count == 30


def test_max_output_tokens_gives_max_tokens_finish(client):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=MODEL, contents="long story", config=types.GenerateContentConfig(max_output_tokens=5))
    assert len(reply.text.split()) == 5 and reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_candidate_count_gives_several_candidates(client):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=MODEL, contents="hello", config=types.GenerateContentConfig(candidate_count=3))
    assert [c.index for c in reply.candidates] == [0, 1, 2]


def test_tool_call_is_a_function_call_part_with_schema_valid_args(client):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=MODEL, contents="weather in Paris?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]),
    )
    (call,) = reply.function_calls
    assert call.name == "get_weather" and isinstance(call.args["city"], str)
    assert reply.candidates[0].content.parts[0].thought_signature  # opaque bytes, sent back on the next turn


def test_parallel_tool_calls_and_forced_function(client):  # type: ignore[no-untyped-def]
    tools = [types.Tool(function_declarations=[WEATHER, TIME])]
    reply = client.models.generate_content(
        model=MODEL, contents="weather and time [[fake:parallel]]", config=types.GenerateContentConfig(tools=tools))
    assert [c.name for c in reply.function_calls] == ["get_weather", "get_time"]
    forced = client.models.generate_content(
        model=MODEL, contents="anything", config=types.GenerateContentConfig(
            tools=tools, tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_time"]))))
    assert [c.name for c in forced.function_calls] == ["get_time"]
    none = client.models.generate_content(
        model=MODEL, contents="just talk", config=types.GenerateContentConfig(
            tools=tools, tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))))
    assert none.function_calls is None and "talk" in none.text


def test_function_response_turn_is_answered_from_the_result(client):  # type: ignore[no-untyped-def]
    first = client.models.generate_content(
        model=MODEL, contents="weather in Oslo?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]))
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather in Oslo?")]),
        first.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_weather", response={"output": "cold and snowy"})]),
    ]
    reply = client.models.generate_content(
        model="gemini-3-pro-fake", contents=contents,
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]))
    assert reply.text.startswith("The tool said: cold and snowy")


def test_gemini_3_rejects_a_function_call_sent_back_without_its_signature(client):  # type: ignore[no-untyped-def]
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather in Oslo?")]),
        types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Oslo"})]),
        types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})]),
    ]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-pro-fake", contents=contents)
    assert caught.value.code == 400 and "thought_signature" in caught.value.message
    contents[1].parts[0].thought_signature = b"made up"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-pro-fake", contents=contents)
    assert caught.value.code == 400 and "Corrupted thought signature" in caught.value.message


def test_streamed_tool_call_arrives_whole_in_one_event(client):  # type: ignore[no-untyped-def]
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="weather?", config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])])))
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert [c.name for c in calls] == ["get_weather"] and "city" in calls[0].args
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_json_mode_with_json_schema_and_openapi_schema(client):  # type: ignore[no-untyped-def]
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    reply = client.models.generate_content(model=MODEL, contents="a person", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema))
    data = json.loads(reply.text)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    typed = client.models.generate_content(model=MODEL, contents="a person", config=types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=types.Schema(type="OBJECT", properties={"ok": types.Schema(type="BOOLEAN")})))
    assert json.loads(typed.text) == {"ok": True}
    plain = client.models.generate_content(model=MODEL, contents="anything", config=types.GenerateContentConfig(
        response_mime_type="application/json"))
    assert isinstance(json.loads(plain.text), dict)


def test_inline_images_are_seen(client):  # type: ignore[no-untyped-def]
    image = types.Part.from_bytes(data=PNG, mime_type="image/png")
    reply = client.models.generate_content(model=MODEL, contents=[image, image, "what is this?"])
    assert reply.text.startswith("I see 2 images")


def test_embeddings_and_count_tokens(client):  # type: ignore[no-untyped-def]
    result = client.models.embed_content(
        model="gemini-embedding-001-fake", contents=["first text", "second text", "first text"],
        config=types.EmbedContentConfig(output_dimensionality=8))
    vectors = [e.values for e in result.embeddings]
    assert len(vectors) == 3 and all(len(v) == 8 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert client.models.count_tokens(model=MODEL, contents="one two three").total_tokens == 6


def test_single_embed_content_endpoint(fake_provider_url):  # type: ignore[no-untyped-def]
    response = httpx.post(f"{fake_provider_url}/v1beta/models/gemini-embedding-001-fake:embedContent",
                          headers={"x-goog-api-key": "k"}, json={"content": {"parts": [{"text": "hello"}]}})
    assert response.status_code == 200 and len(response.json()["embedding"]["values"]) == 16


def test_rate_limit_is_a_client_error_with_retry_info(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi [[fake:status=429]]")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "1s"


@pytest.mark.parametrize(("status", "name", "kind"), [
    (400, "INVALID_ARGUMENT", errors.ClientError), (403, "PERMISSION_DENIED", errors.ClientError),
    (404, "NOT_FOUND", errors.ClientError), (500, "INTERNAL", errors.ServerError),
    (503, "UNAVAILABLE", errors.ServerError),
])
def test_error_statuses_raise_the_sdk_exceptions(client, status, name, kind):  # type: ignore[no-untyped-def]
    with pytest.raises(kind) as caught:
        client.models.generate_content(model=MODEL, contents=f"hi [[fake:status={status}]]")
    assert caught.value.code == status and caught.value.status == name


def test_streaming_error_before_first_event_raises(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ServerError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents="hi [[fake:status=500]]"))
    assert caught.value.code == 500


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "contents is not specified"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
    ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "must have one initialized field"),
    ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
    ({"contents": [{"parts": [{"text": "x"}]}], "max_tokens": 5}, 'Unknown name "max_tokens"'),
    ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxTokens": 5}}, "Unknown name"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]}, "Base64"),
    ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "text"}}]}]}, "Struct"),
    ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"name": "bad name"}]}]},
     "Invalid function name"),
    ({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseJsonSchema": {"type": "object"}}},
     "response_mime_type"),
])
def test_requests_the_real_api_rejects_get_its_400(fake_provider_url, body, fragment):  # type: ignore[no-untyped-def]
    response = httpx.post(f"{fake_provider_url}/v1beta/models/{MODEL}:generateContent", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]


def test_snake_case_field_names_are_accepted_like_protobuf_json(fake_provider_url):  # type: ignore[no-untyped-def]
    response = httpx.post(f"{fake_provider_url}/v1beta/models/{MODEL}:generateContent", json={
        "contents": [{"role": "user", "parts": [{"text": "snakes"}]}],
        "generation_config": {"max_output_tokens": 3}, "system_instruction": {"parts": [{"text": "hi"}]}})
    candidate = response.json()["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS" and len(candidate["content"]["parts"][0]["text"].split()) == 3


def test_stream_without_alt_sse_is_a_json_array(fake_provider_url):  # type: ignore[no-untyped-def]
    response = httpx.post(f"{fake_provider_url}/v1beta/models/{MODEL}:streamGenerateContent",
                          json={"contents": [{"parts": [{"text": "array [[fake:words=4]]"}]}]})
    events = response.json()
    assert len(events) == 4 and events[-1]["candidates"][0]["finishReason"] == "STOP"
