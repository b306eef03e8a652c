"""The Gemini adapter against the fake provider's Gemini wire format, plus the pure
translation it does on the way there and back."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.hotpath import upstream
from gateway.hotpath.adapters import gemini
from gateway.hotpath.directory import Deployment
from gateway.hotpath.errors import GatewayError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE: dict[str, Any] = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}


def _deployment(url: str, upstream: str = "gemini-2.5-flash-fake", **kwargs: Any) -> Deployment:
    return Deployment(public_name="gem", upstream_name=upstream, provider_name="fake-gemini", provider_kind="gemini",
                      base_url=url, credential=kwargs.pop("credential", "upstream-secret"),
                      api_version=kwargs.pop("api_version", "v1beta"), input_price_per_mtok=0.0,
                      output_price_per_mtok=0.0, context_window=None, workspace_ids=frozenset(), created=0)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _read(deployment: Deployment, payload: dict[str, Any], timeout: float = 10) -> tuple[dict[str, Any], Any]:
    payload = {"model": "gem", **payload}

    async def run() -> tuple[dict[str, Any], Any]:
        async with upstream.Pool(read_timeout=timeout) as session:
            response = await gemini.chat_send(session, deployment, payload, stream=False)
            return await gemini.chat_read(response, deployment, payload)

    return asyncio.run(run())


def _stream(deployment: Deployment, payload: dict[str, Any]) -> list[dict[str, Any]]:
    payload = {"model": "gem", "stream": True, **payload}

    async def run() -> list[dict[str, Any]]:
        async with upstream.Pool(read_timeout=10) as session:
            response = await gemini.chat_send(session, deployment, payload, stream=True)
            return [c async for c in gemini.chat_chunks(response, deployment, payload)]

    return asyncio.run(run())


def _embed(deployment: Deployment, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    async def run() -> tuple[dict[str, Any], Any]:
        async with upstream.Pool() as session:
            return await gemini.embeddings_create(session, deployment, {"model": "gem-embed", **payload})

    return asyncio.run(run())


def _text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"] and c["choices"][0]["index"] == index)


def _calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for delta in (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk["choices"] else []:
            call = calls.setdefault(delta["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.get("id") or call["id"]
            call["name"] = delta.get("function", {}).get("name") or call["name"]
            call["arguments"] += delta.get("function", {}).get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


# --- against the fake ------------------------------------------------------------------

def test_text_answer_with_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(_deployment(fake_provider_url), {"messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "tell me about otters"}],
        "temperature": 0.3, "top_p": 0.9, "seed": 3, "presence_penalty": 0.1, "frequency_penalty": 0.1})
    (choice,) = body["choices"]
    assert "otters" in choice["message"]["content"] and choice["finish_reason"] == "stop"
    assert body["object"] == "chat.completion" and body["model"] == "gem"
    assert usage.output_tokens == 12 and usage.input_tokens > 0
    assert body["usage"]["completion_tokens"] == 12


def test_stream_assembles_text_then_finish_then_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(_deployment(fake_provider_url), {"messages": _user("stream about rivers [[fake:words=30]]")})
    text = _text(chunks)
    assert len(text.split()) == 30 and "rivers" in text
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 30
    assert len({c["id"] for c in chunks}) == 1


def test_no_usage_from_upstream_means_no_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(_deployment(fake_provider_url), {"messages": _user("quiet [[fake:no_usage]]")})
    assert usage is None and "usage" not in body
    chunks = _stream(_deployment(fake_provider_url), {"messages": _user("quiet [[fake:no_usage]]")})
    assert all(c["choices"] for c in chunks)


def test_tool_call_answer_has_id_name_and_parsed_arguments(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _read(_deployment(fake_provider_url), {"messages": _user("weather in Paris?"), "tools": [WEATHER]})
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert isinstance(orjson.loads(call["function"]["arguments"])["city"], str)


def test_parallel_tool_calls_and_parallel_false_keeps_one(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url)
    payload = {"messages": _user("both [[fake:parallel]]"), "tools": [WEATHER, TIME]}
    body, _ = _read(deployment, payload)
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    single, _ = _read(deployment, {**payload, "parallel_tool_calls": False})
    assert [c["function"]["name"] for c in single["choices"][0]["message"]["tool_calls"]] == ["get_weather"]
    streamed = _stream(deployment, {**payload, "parallel_tool_calls": False})
    assert [c["name"] for c in _calls(streamed)] == ["get_weather"]


def test_streamed_tool_calls_come_as_id_and_name_then_arguments(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(_deployment(fake_provider_url), {"messages": _user("both [[fake:parallel]]"),
                                                       "tools": [WEATHER, TIME]})
    first = next(c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    head = first["choices"][0]["delta"]["tool_calls"][0]
    assert head["index"] == 0 and head["id"].startswith("call_") and head["function"] == {"name": "get_weather", "arguments": ""}
    calls = _calls(chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert all(isinstance(orjson.loads(c["arguments"]), dict) for c in calls)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"]


def test_named_and_required_tool_choice_are_honoured(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url)
    named, _ = _read(deployment, {"messages": _user("anything"), "tools": [WEATHER, TIME],
                                  "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert named["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    none, _ = _read(deployment, {"messages": _user("just talk"), "tools": [WEATHER], "tool_choice": "none"})
    assert "tool_calls" not in none["choices"][0]["message"] and none["choices"][0]["finish_reason"] == "stop"


def test_tool_results_round_trip_with_the_thought_signature(fake_provider_url):  # type: ignore[no-untyped-def]
    """gemini-3 models reject history whose function call lost its signature; the id carries it."""
    deployment = _deployment(fake_provider_url, upstream="gemini-3-pro-fake")
    question = _user("weather in Oslo?")
    first, _ = _read(deployment, {"messages": question, "tools": [WEATHER]})
    (call,) = first["choices"][0]["message"]["tool_calls"]
    assert gemini.signature_of(call["id"])
    follow_up = question + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": "cold and snowy"}'},
    ]
    body, _ = _read(deployment, {"messages": follow_up, "tools": [WEATHER]})
    assert body["choices"][0]["message"]["content"].startswith('The tool said: {"temp":"cold and snowy"}')


def test_tool_call_from_another_model_gets_the_placeholder_signature(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url, upstream="gemini-3-pro-fake")
    messages = _user("weather?") + [
        {"role": "assistant", "tool_calls": [{"id": "toolu_01", "type": "function",
                                              "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"},
    ]
    body, _ = _read(deployment, {"messages": messages, "tools": [WEATHER]})
    assert body["choices"][0]["message"]["content"].startswith("The tool said: sunny")


def test_json_object_and_json_schema(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url)
    plain, _ = _read(deployment, {"messages": _user("a person"), "response_format": {"type": "json_object"}})
    assert isinstance(orjson.loads(plain["choices"][0]["message"]["content"]), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    typed, _ = _read(deployment, {"messages": _user("a person"), "response_format": {
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}}})
    data = orjson.loads(typed["choices"][0]["message"]["content"])
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_data_url_images_reach_the_upstream(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _read(_deployment(fake_provider_url), {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, IMAGE, IMAGE]}]})
    assert body["choices"][0]["message"]["content"].startswith("I see 2 images")


def test_max_tokens_gives_length_and_stop_sequences_stop(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url)
    body, usage = _read(deployment, {"messages": _user("long story"), "max_completion_tokens": 4})
    assert body["choices"][0]["finish_reason"] == "length" and usage.output_tokens == 4
    stopped, _ = _read(deployment, {"messages": _user("long story"), "stop": ["fake"]})
    assert stopped["choices"][0]["message"]["content"] == "This is a" and stopped["choices"][0]["finish_reason"] == "stop"


def test_n_gives_several_choices_streamed_and_not(fake_provider_url):  # type: ignore[no-untyped-def]
    deployment = _deployment(fake_provider_url)
    body, _ = _read(deployment, {"messages": _user("hello"), "n": 2})
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][0]["message"]["content"] == body["choices"][1]["message"]["content"]
    chunks = _stream(deployment, {"messages": _user("hello"), "n": 2})
    assert _text(chunks, 0) == _text(chunks, 1) and "hello" in _text(chunks, 1)


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (404, "invalid_request_error"),
                                              (500, "api_error"), (503, "api_error")])
def test_upstream_error_statuses_are_kept(fake_provider_url, status, kind):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(fake_provider_url), {"messages": _user(f"hi [[fake:status={status}]]")})
    assert caught.value.status == status and caught.value.type == kind and caught.value.message


def test_404_names_the_model(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(fake_provider_url), {"messages": _user("hi [[fake:status=404]]")})
    assert "gemini-2.5-flash-fake" in caught.value.message and caught.value.code == "not_found"


@pytest.mark.parametrize("status", [401, 403])
def test_credential_rejection_does_not_echo_the_upstream(fake_provider_url, status):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(fake_provider_url), {"messages": _user(f"hi [[fake:status={status}]]")})
    assert caught.value.status == status and caught.value.code == "upstream_auth_failed"
    assert "fake-gemini" in caught.value.message and "credential" in caught.value.message
    assert "API Key" not in caught.value.message and "OAuth" not in caught.value.message


def test_rate_limit_keeps_retry_after(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _stream(_deployment(fake_provider_url), {"messages": _user("hi [[fake:status=429]]")})
    assert caught.value.status == 429 and caught.value.headers == {"retry-after": "1"}
    assert caught.value.type == "rate_limit_error" and caught.value.code == "resource_exhausted"


def test_request_the_upstream_rejects_comes_back_as_its_400(fake_provider_url):  # type: ignore[no-untyped-def]
    bad_tool = {"type": "function", "function": {"name": "bad name", "parameters": {"type": "object"}}}
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(fake_provider_url), {"messages": _user("hi"), "tools": [bad_tool]})
    assert caught.value.status == 400 and "Invalid function name" in caught.value.message


def test_hanging_upstream_times_out(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(fake_provider_url), {"messages": _user("hi [[fake:hang]]")}, timeout=0.5)
    assert caught.value.status == 504


def test_stream_cut_midway_raises(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises((upstream.ClientError, GatewayError)):
        _stream(_deployment(fake_provider_url), {"messages": _user("hi [[fake:cut]] [[fake:words=20]]")})


def test_embeddings_in_openai_shape_without_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _embed(_deployment(fake_provider_url, upstream="gemini-embedding-001-fake"),
                         {"input": ["first", "second", "first"], "dimensions": 8, "encoding_format": "float"})
    assert usage is None and body["object"] == "list" and body["model"] == "gem-embed"
    vectors = [d["embedding"] for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and all(len(v) == 8 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    single, _ = _embed(_deployment(fake_provider_url), {"input": "one text"})
    assert len(single["data"]) == 1 and len(single["data"][0]["embedding"]) == 16


def test_more_embedding_inputs_than_one_batch_holds(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _embed(_deployment(fake_provider_url), {"input": [f"text {i}" for i in range(230)]})
    assert [d["index"] for d in body["data"]] == list(range(230))


def test_embedding_errors_are_mapped(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _embed(_deployment(fake_provider_url), {"input": "x [[fake:status=429]]"})
    assert caught.value.status == 429 and caught.value.headers == {"retry-after": "1"}


# --- unsupported: a 400 naming the parameter, before any network call ------------------

DEAD = "http://127.0.0.1:9"  # nothing listens: reaching the network would be a 502, not a 400


@pytest.mark.parametrize(("payload", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"},
                                                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
     "messages[0].content[1].image_url"),
    ({"messages": _user("x"), "logprobs": True}, "logprobs"),
    ({"messages": _user("x"), "top_logprobs": 2}, "top_logprobs"),
    ({"messages": _user("x"), "logit_bias": {"50256": -100}}, "logit_bias"),
    ({"messages": _user("x"), "reasoning_effort": "high"}, "reasoning_effort"),
    ({"messages": _user("x"), "modalities": ["text", "audio"]}, "modalities"),
    ({"messages": _user("x"), "response_format": {"type": "grammar"}}, "response_format"),
    ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": _user("x"), "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
     "messages[0].content[0].file"),
    ({"messages": [{"role": "user", "content": [
        {**IMAGE, "image_url": {**IMAGE["image_url"], "detail": "low"}},
        {**IMAGE, "image_url": {**IMAGE["image_url"], "detail": "high"}}]}]}, "messages"),
])
def test_unmappable_chat_parameters_are_rejected_before_sending(payload, param):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(_deployment(DEAD), payload)
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.code == "unsupported_parameter" and "gem" in caught.value.message


@pytest.mark.parametrize(("payload", "param"), [
    ({"input": "x", "encoding_format": "base64"}, "encoding_format"),
    ({"input": [[1, 2, 3]]}, "input"),
    ({"input": "x", "dimensions": 8, "truncate": "END"}, "truncate"),
])
def test_unmappable_embedding_parameters_are_rejected(payload, param):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _embed(_deployment(DEAD), payload)
    assert caught.value.status == 400 and caught.value.param == param


# --- pure translation ------------------------------------------------------------------

def test_request_translation_of_roles_tools_and_settings():  # type: ignore[no-untyped-def]
    body = gemini.request_build(_deployment(DEAD), {
        "model": "gem", "user": "u-1", "store": False, "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "rule one"},
            {"role": "developer", "content": [{"type": "text", "text": "rule two"}]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "let me check", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
        ],
        "tools": [WEATHER, TIME], "tool_choice": "required", "stop": "END", "max_tokens": 50, "n": 2,
        "response_format": {"type": "json_object"},
    })
    assert body["systemInstruction"] == {"parts": [{"text": "rule one\n\nrule two"}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [
        {"text": "let me check"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        {"functionCall": {"name": "get_time", "args": {}}}]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": {"temp": 20}}}},
        {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}}]
    assert body["tools"][0]["functionDeclarations"][0] == {
        "name": "get_weather", "description": "Weather for a city", "parametersJsonSchema": WEATHER["function"]["parameters"]}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["generationConfig"] == {"maxOutputTokens": 50, "stopSequences": ["END"], "candidateCount": 2,
                                        "responseMimeType": "application/json"}
    assert b"u-1" not in orjson.dumps(body)
    assert gemini.IGNORED_PARAMS == ("user", "store", "metadata")


def test_strict_tools_use_validated_mode_and_allowed_tools_narrow_the_offer():  # type: ignore[no-untyped-def]
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    body = gemini.request_build(_deployment(DEAD), {"messages": _user("x"), "tools": [strict, TIME]})
    assert body["toolConfig"]["functionCallingConfig"] == {"mode": "VALIDATED"}
    narrowed = gemini.request_build(_deployment(DEAD), {"messages": _user("x"), "tools": [WEATHER, TIME], "tool_choice": {
        "type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "get_time"}}]}}})
    assert [d["name"] for d in narrowed["tools"][0]["functionDeclarations"]] == ["get_time"]


def test_tool_message_for_an_unknown_call_is_a_clear_400():  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        gemini.request_build(_deployment(DEAD), {"messages": _user("x") + [
            {"role": "tool", "tool_call_id": "call_zzz", "content": "1"}]})
    assert caught.value.status == 400 and caught.value.param == "messages[1].tool_call_id"


def test_thought_signature_survives_the_tool_call_id():  # type: ignore[no-untyped-def]
    signature = base64.b64encode(bytes(range(200))).decode()
    identifier = gemini.tool_call_id(signature)
    assert identifier.startswith("call_") and identifier.replace("_", "").replace("-", "").isalnum()
    assert gemini.signature_of(identifier) == signature
    assert gemini.signature_of(gemini.tool_call_id(None)) is None
    body = gemini.request_build(_deployment(DEAD), {"messages": _user("x") + [
        {"role": "assistant", "tool_calls": [{"id": identifier, "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": identifier, "content": "done"}]})
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": signature}]


def test_usage_counts_thinking_as_completion_and_finish_reasons_map():  # type: ignore[no-untyped-def]
    usage = gemini.usage_of({"usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7}})
    assert (usage.input_tokens, usage.output_tokens) == (10, 12)
    assert gemini.finish_of("MAX_TOKENS", False) == "length"
    assert gemini.finish_of("SAFETY", False) == gemini.finish_of("PROHIBITED_CONTENT", False) == "content_filter"
    assert gemini.finish_of("STOP", True) == "tool_calls" and gemini.finish_of("STOP", False) == "stop"


class _Body:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def iter_any(self):  # type: ignore[no-untyped-def]
        yield self.raw


def _stub(raw: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(content=_Body(raw), release=lambda: None, status=status, headers=headers or {})


def _chunks_of(raw: bytes) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [c async for c in gemini.chat_chunks(_stub(raw), _deployment(DEAD), {"model": "gem"})]

    return asyncio.run(run())


def test_blocked_prompt_and_safety_stop_become_content_filter():  # type: ignore[no-untyped-def]
    chunks = _chunks_of(b'data: {"promptFeedback": {"blockReason": "SAFETY"}}\r\n\r\n')
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    event = {"candidates": [{"content": {"parts": [{"text": "Once"}], "role": "model"}, "finishReason": "RECITATION"}],
             "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}}
    chunks = _chunks_of(b"data: " + orjson.dumps(event) + b"\n\n")
    assert _text(chunks) == "Once" and chunks[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


def test_thought_parts_are_not_shown_as_answer_text():  # type: ignore[no-untyped-def]
    event = {"candidates": [{"content": {"parts": [{"text": "secret plan", "thought": True}, {"text": "Hi"}]},
                             "finishReason": "STOP"}]}
    assert _text(_chunks_of(b"data: " + orjson.dumps(event) + b"\n\n")) == "Hi"


def test_error_event_or_unfinished_stream_raises():  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _chunks_of(b'data: {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}\n\n')
    assert caught.value.status == 502 and "boom" in caught.value.message
    with pytest.raises(GatewayError):
        _chunks_of(b'data: {"candidates": [{"content": {"parts": [{"text": "half"}]}}]}\n\n')


def test_invalid_api_key_400_is_a_credential_rejection():  # type: ignore[no-untyped-def]
    raw = orjson.dumps({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                  "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}})
    error = gemini.error_from(_stub(b"", 400), _deployment(DEAD), raw)
    assert error.status == 401 and error.code == "upstream_auth_failed" and "API key" not in error.message


def test_retry_delay_in_the_body_becomes_retry_after():  # type: ignore[no-untyped-def]
    raw = orjson.dumps({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}})
    assert gemini.error_from(_stub(b"", 429), _deployment(DEAD), raw).headers == {"retry-after": "37"}
