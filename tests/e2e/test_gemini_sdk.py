"""The Gemini API inbound: the official google-genai SDK, pointed at the running gateway,
against every upstream kind (each served by the fake provider in its own wire format).
Each test asserts the parsed SDK objects, as tests/e2e/test_conformance.py does for the
OpenAI and Anthropic SDKs."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.e2e.sdk import CITY_SCHEMA, PNG_BASE64, TIME_SCHEMA, UPSTREAMS, WEATHER_SCHEMA, events_of

EXPECTED_WEATHER_ARGS = {"city": "fake city", "unit": "celsius"}
EMBEDDING_UPSTREAMS = ["fake-embed", "fake-azure", "fake-gemini", "fake-cohere", "fake-local"]
WEATHER = types.FunctionDeclaration(name="get_weather", description="Weather in a city",
                                    parameters_json_schema=WEATHER_SCHEMA)
TIME = types.FunctionDeclaration(name="get_time", description="Time in a timezone", parameters_json_schema=TIME_SCHEMA)
# the same weather function in Gemini's OpenAPI-subset schema (upper-case types)
WEATHER_OPENAPI = types.FunctionDeclaration(
    name="get_weather", description="Weather in a city",
    parameters=types.Schema(type=types.Type.OBJECT, required=["city", "unit"], properties={
        "city": types.Schema(type=types.Type.STRING),
        "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"]),
    }),
)

parametrize_upstream = pytest.mark.parametrize("model", UPSTREAMS)


def gemini_client(gateway_url: str, secret: str, api_version: str = "v1beta") -> genai.Client:
    return genai.Client(api_key=secret, http_options=types.HttpOptions(
        base_url=gateway_url, api_version=api_version, timeout=20_000,
        retry_options=types.HttpRetryOptions(attempts=1)))


@pytest.fixture(scope="module")
def client(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    return gemini_client(gateway_url, sdk_key[1])


def _event_for(workspace, model: str, endpoint: str):  # type: ignore[no-untyped-def]
    """The latest usage event for the model (recorded just after the answer is sent)."""
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in events_of(workspace) if e.model == model and e.endpoint == endpoint]
        if found or time.monotonic() > deadline:
            assert found, f"no {endpoint} usage event was recorded for {model}"
            return found[-1]
        time.sleep(0.1)


def _post(gateway_url: str, secret: str, model: str, method: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway_url}/v1beta/models/{model}:{method}", json=body,
                      headers={"x-goog-api-key": secret}, timeout=20)


# --- generateContent ----------------------------------------------------------------------------

@parametrize_upstream
def test_text_answer_with_usage_is_recorded(client, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, _ = sdk_key
    reply = client.models.generate_content(
        model=model, contents="tell me about otters",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.5, top_p=0.9,
                                           max_output_tokens=200, stop_sequences=["zebra"]),
    )
    assert "otters" in reply.text
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.candidates[0].content.role == "model"
    usage = reply.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert reply.model_version == model and reply.response_id
    event = _event_for(workspace, model, "generateContent")
    assert event.status_code == 200 and event.output_tokens == usage.candidates_token_count
    assert event.input_tokens == usage.prompt_token_count and not event.usage_estimated


@parametrize_upstream
def test_stream_assembles_and_last_event_carries_finish_and_usage(client, model):  # type: ignore[no-untyped-def]
    chunks = list(client.models.generate_content_stream(
        model=model, contents="tell me about badgers [[fake:words=20]]"))
    text = "".join(c.text or "" for c in chunks)
    assert "badgers" in text and len(text.split()) == 20
    assert len(chunks) > 2
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count > 0 and chunks[-1].usage_metadata.prompt_token_count > 0


@parametrize_upstream
def test_function_call_and_function_response_round_trip(client, model):  # type: ignore[no-untyped-def]
    tools = [types.Tool(function_declarations=[WEATHER])]
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Paris?")])
    reply = client.models.generate_content(model=model, contents=[question],
                                           config=types.GenerateContentConfig(tools=tools))
    (call,) = reply.function_calls
    assert call.name == "get_weather" and call.args == EXPECTED_WEATHER_ARGS and call.id
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    answer = client.models.generate_content(model=model, config=types.GenerateContentConfig(tools=tools), contents=[
        question, reply.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_weather", response={"output": "18 degrees and sunny"})]),
    ])
    assert answer.function_calls is None and "18 degrees" in answer.text


@parametrize_upstream
def test_history_without_call_ids_matches_responses_by_name(client, model):  # type: ignore[no-untyped-def]
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather and time in Rome?")]),
        types.Content(role="model", parts=[
            types.Part.from_function_call(name="get_weather", args={"city": "Rome", "unit": "celsius"}),
            types.Part.from_function_call(name="get_time", args={"timezone": "Europe/Rome"}),
        ]),
        types.Content(role="user", parts=[
            types.Part.from_function_response(name="get_time", response={"output": "noon"}),
            types.Part.from_function_response(name="get_weather", response={"output": "warm"}),
        ]),
    ]
    reply = client.models.generate_content(
        model=model, contents=contents,
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])]))
    assert reply.text.startswith("The tool said:") and "noon" in reply.text and "warm" in reply.text


@pytest.fixture(scope="module")
def gemini_3(gateway_url, sdk_key, django_db_blocker, fake_models):  # type: ignore[no-untyped-def]
    """A catalog model on the fake's gemini-3 upstream, which rejects function calls sent
    back without the thought signature it issued (as the real Gemini 3 models do)."""
    from gateway.catalog.models import Model, Provider
    from gateway.catalog.services import model_group_create

    with django_db_blocker.unblock():
        if not Model.objects.filter(public_name="fake-gemini-3").exists():
            model_group_create(public_name="fake-gemini-3", provider=Provider.objects.get(name="fake-gemini"),
                               upstream_name="gemini-3-pro-fake")
    deadline = time.monotonic() + 10  # the gateway re-reads the catalog about once a second
    url, headers = f"{gateway_url}/v1beta/models/fake-gemini-3", {"x-goog-api-key": sdk_key[1]}
    while httpx.get(url, headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the new model never reached the gateway's catalog"
        time.sleep(0.1)
    return "fake-gemini-3"


def test_gemini_3_thought_signature_survives_the_round_trip(client, gemini_3):  # type: ignore[no-untyped-def]
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])])
    question = types.Content(role="user", parts=[types.Part(text="weather and time in Oslo? [[fake:parallel]]")])
    reply = client.models.generate_content(model=gemini_3, contents=[question], config=config)
    assert [c.name for c in reply.function_calls] == ["get_weather", "get_time"]
    answer = client.models.generate_content(model=gemini_3, config=config, contents=[
        question, reply.candidates[0].content,
        types.Content(role="user", parts=[
            types.Part.from_function_response(name="get_weather", response={"output": "cold"}),
            types.Part.from_function_response(name="get_time", response={"output": "dawn"})]),
    ])
    assert answer.text.startswith("The tool said: cold dawn")


@parametrize_upstream
def test_chat_session_keeps_history_across_turns(client, model):  # type: ignore[no-untyped-def]
    chat = client.chats.create(model=model, config=types.GenerateContentConfig(system_instruction="Be brief."))
    assert "otters" in chat.send_message("tell me about otters").text
    streamed = "".join(chunk.text or "" for chunk in chat.send_message_stream("and now beavers"))
    assert "beavers" in streamed
    history = chat.get_history()  # the SDK keeps each streamed chunk as its own model turn
    assert [c.role for c in history[:3]] == ["user", "model", "user"] and {c.role for c in history[3:]} == {"model"}
    assert "".join(p.text or "" for c in history[3:] for p in c.parts) == streamed
    assert "herons" in chat.send_message("finally herons").text  # all that history goes back up


@parametrize_upstream
def test_forced_function_streams_as_one_whole_call(client, model):  # type: ignore[no-untyped-def]
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER_OPENAPI, TIME])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"])))
    chunks = list(client.models.generate_content_stream(model=model, contents="weather in Oslo?", config=config))
    calls = [call for chunk in chunks for call in (chunk.function_calls or [])]
    assert [(c.name, c.args) for c in calls] == [("get_weather", EXPECTED_WEATHER_ARGS)]
    assert calls[0].id and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count > 0


@parametrize_upstream
def test_parallel_function_calls(client, model):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=model, contents="weather and time in Rome [[fake:parallel]]",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])]))
    calls = reply.function_calls
    assert sorted(c.name for c in calls) == ["get_time", "get_weather"]
    assert len({c.id for c in calls}) == 2 and all(c.args for c in calls)


@parametrize_upstream
def test_mode_none_answers_with_text_despite_tools(client, model):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(
        model=model, contents="just talk about lakes", config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])],
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))))
    assert reply.function_calls is None and "lakes" in reply.text


@parametrize_upstream
def test_inline_image_reaches_the_model(client, model):  # type: ignore[no-untyped-def]
    image = types.Part.from_bytes(data=base64.b64decode(PNG_BASE64), mime_type="image/png")
    reply = client.models.generate_content(model=model, contents=["what is in this picture?", image])
    assert "I see 1 image" in reply.text


@parametrize_upstream
def test_json_mode_with_a_json_schema(client, model):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(model=model, contents="A city, as JSON.", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=CITY_SCHEMA))
    value = json.loads(reply.text)
    assert set(value) == {"name", "population"} and isinstance(value["population"], int)
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("model", ["fake-openai", "fake-gemini"])
def test_json_mode_with_an_openapi_schema_and_plain_json(client, model):  # type: ignore[no-untyped-def]
    typed = client.models.generate_content(model=model, contents="a flag", config=types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=types.Schema(type="OBJECT", properties={"ok": types.Schema(type="BOOLEAN")}, required=["ok"])))
    assert json.loads(typed.text) == {"ok": True}
    plain = client.models.generate_content(model=model, contents="anything", config=types.GenerateContentConfig(
        response_mime_type="application/json"))
    assert isinstance(json.loads(plain.text), dict)


@parametrize_upstream
def test_max_output_tokens_gives_max_tokens_finish(client, model):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(model=model, contents="a long story please",
                                           config=types.GenerateContentConfig(max_output_tokens=3))
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS and len(reply.text.split()) == 3


@pytest.mark.parametrize("model", ["fake-openai", "fake-gemini"])
def test_candidate_count_gives_several_candidates(client, model):  # type: ignore[no-untyped-def]
    reply = client.models.generate_content(model=model, contents="hello there",
                                           config=types.GenerateContentConfig(candidate_count=2))
    assert [c.index for c in reply.candidates] == [0, 1]
    assert all("hello" in c.content.parts[0].text for c in reply.candidates)


def test_v1_api_version_is_served_too(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    client = gemini_client(gateway_url, sdk_key[1], api_version="v1")
    assert "herons" in client.models.generate_content(model="fake-openai", contents="herons").text


def test_snake_case_body_and_ignored_hints_header(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    response = _post(gateway_url, sdk_key[1], "fake-anthropic", "generateContent", {
        "contents": [{"role": "user", "parts": [{"text": "snakes"}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {"max_output_tokens": 3, "thinking_config": {"thinking_budget": 0}},
        "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
    })
    assert response.status_code == 200
    candidate = response.json()["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS" and len(candidate["content"]["parts"][0]["text"].split()) == 3
    assert set(response.headers["x-aiproxy-ignored-params"].split(",")) == {
        "safetySettings", "generationConfig.thinkingConfig"}


# --- countTokens, embeddings, models -------------------------------------------------------------

@parametrize_upstream
def test_count_tokens(client, model):  # type: ignore[no-untyped-def]
    short = client.models.count_tokens(model=model, contents="hi")
    longer = client.models.count_tokens(model=model, contents="hi " * 200)
    assert 0 < short.total_tokens < longer.total_tokens


@pytest.mark.parametrize("model", EMBEDDING_UPSTREAMS)
def test_embed_content(client, sdk_key, model):  # type: ignore[no-untyped-def]
    workspace, _ = sdk_key
    result = client.models.embed_content(model=model, contents=["red fox", "blue whale", "red fox"])
    vectors = [e.values for e in result.embeddings]
    assert len(vectors) == 3 and len(vectors[0]) > 0
    assert vectors[0] == vectors[2] != vectors[1]
    event = _event_for(workspace, model, "embeddings")
    assert event.status_code == 200 and event.input_tokens > 0


def test_single_embed_content_method(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    response = _post(gateway_url, sdk_key[1], "fake-gemini", "embedContent",
                     {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8})
    assert response.status_code == 200 and len(response.json()["embedding"]["values"]) == 8


def test_embedding_hints_without_an_equivalent_are_named_in_a_header(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    response = _post(gateway_url, sdk_key[1], "fake-cohere", "embedContent",
                     {"content": {"parts": [{"text": "hello"}]}, "taskType": "RETRIEVAL_QUERY", "title": "greeting"})
    assert response.status_code == 200 and response.json()["embedding"]["values"]
    assert response.headers["x-aiproxy-ignored-params"] == "taskType,title"


def test_embeddings_on_anthropic_upstream_is_a_clear_400(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ClientError) as caught:
        client.models.embed_content(model="fake-anthropic", contents=["x"])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "fake-anthropic" in caught.value.message


def test_models_list_and_get(client):  # type: ignore[no-untyped-def]
    names = {m.name for m in client.models.list()}
    assert {f"models/{m}" for m in UPSTREAMS} <= names
    model = client.models.get(model="fake-gemini")
    assert model.name == "models/fake-gemini" and model.display_name == "fake-gemini"
    assert "generateContent" in model.supported_actions


# --- errors ---------------------------------------------------------------------------------------

SDK_ERRORS = {400: ("INVALID_ARGUMENT", errors.ClientError), 401: ("UNAUTHENTICATED", errors.ClientError),
              404: ("NOT_FOUND", errors.ClientError), 429: ("RESOURCE_EXHAUSTED", errors.ClientError),
              500: ("INTERNAL", errors.ServerError)}


@parametrize_upstream
@pytest.mark.parametrize("status", sorted(SDK_ERRORS))
def test_upstream_errors_raise_the_sdk_exceptions(client, model, status):  # type: ignore[no-untyped-def]
    name, kind = SDK_ERRORS[status]
    with pytest.raises(kind) as caught:
        client.models.generate_content(model=model, contents=f"hi [[fake:status={status}]]")
    assert caught.value.code == status and caught.value.status == name and caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
        assert retry in caught.value.details["error"]["details"]
    if status == 401:
        assert "sk-upstream-secret-123" not in caught.value.response.text


def test_anthropic_overloaded_is_503_unavailable(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model="fake-anthropic", contents="hi [[fake:status=529]]")
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"


@parametrize_upstream
def test_upstream_timeout_is_504_deadline_exceeded(client, model):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=model, contents="[[fake:hang]]")
    assert caught.value.code == 504 and caught.value.status == "DEADLINE_EXCEEDED"


def test_streaming_error_before_the_first_event_raises(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ServerError) as caught:
        list(client.models.generate_content_stream(model="fake-gemini", contents="hi [[fake:status=500]]"))
    assert caught.value.code == 500


@pytest.mark.parametrize("model", ["fake-openai", "fake-anthropic", "fake-gemini"])
def test_stream_cut_mid_answer_raises_in_the_sdk(client, model):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ServerError) as caught:
        list(client.models.generate_content_stream(model=model, contents="[[fake:cut]] [[fake:words=20]]"))
    assert caught.value.code == 502 and caught.value.status == "UNAVAILABLE"


def test_wrong_key_and_unknown_model(gateway_url, client):  # type: ignore[no-untyped-def]
    stranger = gemini_client(gateway_url, "sk-wrong")  # held: a collected Client closes its connection pool
    with pytest.raises(errors.ClientError) as caught:
        stranger.models.generate_content(model="fake-openai", contents="hi")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_unsupported_fields_from_the_sdk_are_named(client):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fake-openai", contents="hi", config=types.GenerateContentConfig(top_k=5))
    assert caught.value.code == 400 and "generationConfig.topK" in caught.value.message
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fake-gemini", contents="hi", config=types.GenerateContentConfig(
            tools=[types.Tool(google_search=types.GoogleSearch())]))
    assert caught.value.code == 400 and "tools[0].googleSearch" in caught.value.message


TEXT = {"parts": [{"text": "x"}]}


@pytest.mark.parametrize(("body", "fragment"), [
    ({}, "contents is not specified"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
    ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": [TEXT], "max_tokens": 5}, 'Unknown name "max_tokens"'),
    ({"contents": [TEXT], "generationConfig": {"maxTokens": 5}}, "generationConfig.maxTokens"),
    ({"contents": [TEXT], "generationConfig": {"temperature": "hot"}}, "generationConfig.temperature"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]},
     "contents[0].parts[0].inlineData.data"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": PNG_BASE64}}]}]},
     "contents[0].parts[0].inlineData.mimeType"),
    ({"contents": [{"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "https://x/y.png"}}]}]},
     "contents[0].parts[0].fileData"),
    ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "text"}}]}]},
     "contents[0].parts[0].functionResponse.response"),
    ({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {"output": 1}}}]}]},
     "no functionCall named 'f'"),
    ({"contents": [TEXT], "tools": [{"functionDeclarations": [{"name": "bad name"}]}]},
     "tools[0].functionDeclarations[0].name"),
    ({"contents": [TEXT], "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "STRNG"}}]}]},
     "tools[0].functionDeclarations[0].parameters.type"),
    ({"contents": [TEXT],
      "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "array"}}]}]},
     "tools[0].functionDeclarations[0].parametersJsonSchema"),
    ({"contents": [TEXT], "tools": [{"functionDeclarations": [{"name": "f"}]}],
      "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}}},
     "toolConfig.functionCallingConfig.allowedFunctionNames"),
    ({"contents": [TEXT], "generationConfig": {"responseJsonSchema": {"type": "object"}}},
     "generationConfig.responseMimeType"),
    ({"contents": [TEXT], "generationConfig": {"responseMimeType": "text/x.enum"}},
     "generationConfig.responseMimeType"),
    ({"contents": [TEXT], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
     "generationConfig.thinkingConfig.includeThoughts"),
    ({"contents": [TEXT], "cachedContent": "cachedContents/abc"}, "cachedContent"),
])
def test_bad_input_is_a_400_naming_the_field(gateway_url, sdk_key, body, fragment):  # type: ignore[no-untyped-def]
    response = _post(gateway_url, sdk_key[1], "fake-openai", "generateContent", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and fragment in error["message"]


def test_bad_embedding_input_is_a_400(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    response = _post(gateway_url, sdk_key[1], "fake-embed", "batchEmbedContents",
                     {"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]})
    assert response.status_code == 400 and "requests[0].model" in response.json()["error"]["message"]
