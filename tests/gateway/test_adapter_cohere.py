"""The Cohere adapter against the fake provider's Cohere wire module: OpenAI-shaped
requests in, OpenAI-shaped answers out, errors mapped, and every parameter Cohere
cannot honour refused before any network call."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import pytest

from gateway.hotpath import upstream
from gateway.hotpath.adapters import cohere
from gateway.hotpath.directory import Deployment
from gateway.hotpath.errors import GatewayError
from tests.gateway.chunks import calls_of as _calls_of
from tests.gateway.chunks import finish_of as _finish_of
from tests.gateway.chunks import text_of as _text_of

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time"}}  # no parameters: OpenAI allows it, Cohere needs them
DEAD_URL = "http://127.0.0.1:9"  # nothing listens: a request reaching the network would fail with 502


def _deployment(base_url: str, credential: str = "co-secret-key") -> Deployment:
    return Deployment(
        public_name="cohere-chat", upstream_name="command-a-03-2025", provider_name="cohere-test", provider_kind="cohere",
        base_url=base_url, credential=credential, api_version="", input_price_per_mtok=1.0, output_price_per_mtok=2.0,
        context_window=None, workspace_ids=frozenset(), created=0,
    )


def _chat(text: str = "tell me about otters", **extra: Any) -> dict[str, Any]:
    return {"model": "cohere-chat", "messages": [{"role": "user", "content": text}], **extra}


def _read(url: str, payload: dict[str, Any], timeout: float = 10, credential: str = "co-secret-key") -> tuple[dict, Any]:
    async def go() -> tuple[dict, Any]:
        deployment = _deployment(url, credential)
        async with upstream.Pool(read_timeout=timeout) as session:
            response = await cohere.chat_send(session, deployment, payload, stream=False)
            return await cohere.chat_read(response, deployment, payload)
    return asyncio.run(go())


def _stream(url: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        deployment = _deployment(url)
        async with upstream.Pool(read_timeout=10) as session:
            response = await cohere.chat_send(session, deployment, payload, stream=True)
            try:
                return [chunk async for chunk in cohere.chat_chunks(response, deployment, payload)]
            finally:
                response.release()
    return asyncio.run(go())


def _embed(url: str, payload: dict[str, Any]) -> tuple[dict, Any]:
    async def go() -> tuple[dict, Any]:
        async with upstream.Pool(read_timeout=10) as session:
            return await cohere.embeddings_create(session, _deployment(url), payload)
    return asyncio.run(go())


# --- chat against the fake ------------------------------------------------------------------

def test_text_answer_with_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat())
    assert body["object"] == "chat.completion" and body["model"] == "cohere-chat"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and "otters" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert (usage.output_tokens, body["usage"]["completion_tokens"]) == (12, 12)
    assert usage.input_tokens == body["usage"]["prompt_tokens"] > 0


def test_stream_assembles_text_then_finish_then_usage(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(fake_provider_url, _chat("stream about rivers [[fake:words=25]]", stream=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = _text_of(chunks)
    assert len(text.split()) == 25 and "rivers" in text
    assert _finish_of(chunks) == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 25
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_tool_call_has_parsed_arguments_and_the_plan_as_content(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _read(fake_provider_url, _chat("weather in Paris?", tools=[WEATHER]))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert "get_weather" in choice["message"]["content"]  # Cohere's tool_plan
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather" and call["id"]
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)


def test_parallel_tool_calls_and_parallel_false_keeps_only_the_first(fake_provider_url):  # type: ignore[no-untyped-def]
    payload = _chat("both [[fake:parallel]]", tools=[WEATHER, TIME])
    body, _ = _read(fake_provider_url, payload)
    assert [c["function"]["name"] for c in body["choices"][0]["message"]["tool_calls"]] == ["get_weather", "get_time"]
    assert json.loads(body["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"]) == {}
    single, _ = _read(fake_provider_url, {**payload, "parallel_tool_calls": False})
    assert [c["function"]["name"] for c in single["choices"][0]["message"]["tool_calls"]] == ["get_weather"]
    chunks = _stream(fake_provider_url, {**payload, "stream": True, "parallel_tool_calls": False})
    assert [c["name"] for c in _calls_of(chunks)] == ["get_weather"]


def test_streamed_parallel_tool_calls_assemble_by_index(fake_provider_url):  # type: ignore[no-untyped-def]
    chunks = _stream(fake_provider_url, _chat("both [[fake:parallel]]", tools=[WEATHER, TIME], stream=True))
    calls = _calls_of(chunks)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert all(c["id"] for c in calls) and calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[0]["arguments"])["city"] and json.loads(calls[1]["arguments"]) == {}
    assert "get_weather" in _text_of(chunks)  # the tool plan, streamed as content
    assert _finish_of(chunks) == ["tool_calls"] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_tool_choice_required_and_none(fake_provider_url):  # type: ignore[no-untyped-def]
    forced, _ = _read(fake_provider_url, _chat("hi [[fake:text]]", tools=[WEATHER], tool_choice="none"))
    assert forced["choices"][0]["finish_reason"] == "stop" and "tool_calls" not in forced["choices"][0]["message"]
    required, _ = _read(fake_provider_url, _chat("hi", tools=[WEATHER], tool_choice="required"))
    assert required["choices"][0]["finish_reason"] == "tool_calls"
    plain, _ = _read(fake_provider_url, _chat("hi", tool_choice="none"))  # no tools: nothing to forbid
    assert plain["choices"][0]["finish_reason"] == "stop"


def test_a_whole_tool_conversation_reaches_cohere_in_its_shape(fake_provider_url):  # type: ignore[no-untyped-def]
    payload = {"model": "cohere-chat", "tools": [WEATHER], "messages": [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": "Let me check.", "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny and 21C"},
    ]}
    body, _ = _read(fake_provider_url, payload)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "sunny and 21C" in body["choices"][0]["message"]["content"]


def test_json_object_and_json_schema_modes(fake_provider_url):  # type: ignore[no-untyped-def]
    body, _ = _read(fake_provider_url, _chat("a JSON please", response_format={"type": "json_object"}))
    assert isinstance(json.loads(body["choices"][0]["message"]["content"]), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    body, _ = _read(fake_provider_url, _chat("a person", response_format=fmt))
    value = json.loads(body["choices"][0]["message"]["content"])
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_images_reach_the_upstream_as_data_and_web_urls(fake_provider_url):  # type: ignore[no-untyped-def]
    content = [{"type": "text", "text": "what are these?"}, {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    body, _ = _read(fake_provider_url, {"model": "cohere-chat", "messages": [{"role": "user", "content": content}]})
    assert body["choices"][0]["message"]["content"].startswith("I see 2 images")


def test_max_tokens_finishes_with_length(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat(max_tokens=4))
    assert body["choices"][0]["finish_reason"] == "length" and usage.output_tokens == 4
    chunks = _stream(fake_provider_url, _chat(max_completion_tokens=3, stream=True))
    assert _finish_of(chunks) == ["length"] and len(_text_of(chunks).split()) == 3


def test_stop_sampling_and_seed_are_accepted_by_cohere(fake_provider_url):  # type: ignore[no-untyped-def]
    payload = _chat("about foxes", stop="fake", top_p=1, temperature=1.5, seed=7, presence_penalty=0.5,
                    frequency_penalty=0, n=1, stream_options={"include_usage": True}, logprobs=False)
    body, _ = _read(fake_provider_url, payload)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"] == "This is a"  # cut before the stop sequence "fake"


def test_ignored_params_are_not_sent_upstream(fake_provider_url):  # type: ignore[no-untyped-def]
    assert set(cohere.IGNORED_PARAMS) == {"user", "store", "metadata"}
    body, _ = _read(fake_provider_url, _chat(user="end-user-42", store=False, metadata={"a": "b"}))
    assert body["choices"][0]["finish_reason"] == "stop"  # the fake rejects fields Cohere does not know


def test_no_usage_reported_means_none(fake_provider_url):  # type: ignore[no-untyped-def]
    body, usage = _read(fake_provider_url, _chat("hi [[fake:no_usage]]"))
    assert usage is None and "usage" not in body
    chunks = _stream(fake_provider_url, _chat("hi [[fake:no_usage]]", stream=True))
    assert all(c["choices"] for c in chunks) and _finish_of(chunks) == ["stop"]


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (404, "invalid_request_error"), (422, "invalid_request_error"),
    (499, "api_error"), (500, "api_error"), (503, "api_error"),
])
def test_upstream_error_statuses_are_kept_with_cohere_message(fake_provider_url, status, kind):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat(f"hi [[fake:status={status}]]"))
    assert caught.value.status == status and caught.value.type == kind
    assert "cohere-test" in caught.value.message and f"answered {status}:" in caught.value.message


def test_not_found_names_the_model_problem(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat("hi [[fake:status=404]]"))
    assert caught.value.code == "model_not_found" and "not found" in caught.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_credential_rejection_never_echoes_the_upstream_text(fake_provider_url, status):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat(f"hi [[fake:status={status}]]"))
    assert caught.value.status == status and caught.value.code == "upstream_auth_failed"
    assert "invalid api token" not in caught.value.message and "forbidden" not in caught.value.message


def test_a_deployment_without_credential_is_rejected_by_cohere(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat(), credential="")
    assert caught.value.status == 401 and "no api key" not in caught.value.message


def test_rate_limit_keeps_retry_after(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _stream(fake_provider_url, _chat("hi [[fake:status=429]]", stream=True))
    assert caught.value.status == 429 and caught.value.type == "rate_limit_error"
    assert caught.value.headers == {"retry-after": "1"}


def test_payment_required_is_kept_without_cohere_account_details(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat("hi [[fake:status=402]]"))
    assert caught.value.status == 402 and caught.value.code == "upstream_payment_required"
    assert "dashboard.cohere.com" not in caught.value.message


def test_a_hanging_upstream_times_out_with_504(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat("hi [[fake:hang]]"), timeout=0.5)
    assert caught.value.status == 504 and caught.value.code == "upstream_timeout"


def test_a_reset_connection_is_502(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat("hi [[fake:reset]]"))
    assert caught.value.status == 502 and caught.value.code == "upstream_unreachable"


def test_a_stream_cut_mid_way_raises(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(upstream.PayloadError):
        _stream(fake_provider_url, _chat("cut me [[fake:cut]] [[fake:words=20]]", stream=True))


# --- Cohere answers the fake never gives (finish ERROR/TIMEOUT, billed-only usage, early end) ------

class _Stub:
    """Just enough of an upstream response to feed chat_read/chat_chunks a canned answer."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.content = self

    async def read(self) -> bytes:
        return self.body

    async def iter_any(self):  # type: ignore[no-untyped-def]
        yield self.body

    def release(self) -> None:
        pass


def _read_canned(answer: dict[str, Any]) -> tuple[dict, Any]:
    return asyncio.run(cohere.chat_read(_Stub(json.dumps(answer).encode()), _deployment(DEAD_URL), _chat()))  # type: ignore[arg-type]


def _stream_canned(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    raw = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)

    async def go() -> list[dict[str, Any]]:
        return [c async for c in cohere.chat_chunks(_Stub(raw), _deployment(DEAD_URL), _chat())]  # type: ignore[arg-type]
    return asyncio.run(go())


def test_usage_falls_back_to_billed_units():
    answer = {"id": "x", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
              "usage": {"billed_units": {"input_tokens": 9, "output_tokens": 2}}}
    body, usage = _read_canned(answer)
    assert (usage.input_tokens, usage.output_tokens) == (9, 2) and body["usage"]["total_tokens"] == 11
    answer["usage"]["tokens"] = {"input_tokens": 180, "output_tokens": 2}
    assert _read_canned(answer)[1].input_tokens == 180


@pytest.mark.parametrize(("reason", "status"), [("ERROR", 502), ("TIMEOUT", 504)])
def test_error_and_timeout_finish_reasons_are_upstream_failures(reason, status):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read_canned({"id": "x", "finish_reason": reason, "message": {"role": "assistant", "content": []}})
    assert caught.value.status == status


def test_stream_error_at_message_end_raises_with_its_reason():
    events = [{"type": "message-start", "id": "x", "delta": {"message": {"role": "assistant"}}},
              {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}},
              {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "generation failed"}}]
    with pytest.raises(GatewayError) as caught:
        _stream_canned(events)
    assert caught.value.status == 502 and "generation failed" in caught.value.message


def test_stream_that_ends_without_message_end_raises():
    events = [{"type": "message-start", "id": "x", "delta": {"message": {"role": "assistant"}}},
              {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}]
    with pytest.raises(GatewayError) as caught:
        _stream_canned(events)
    assert caught.value.status == 502 and caught.value.code == "upstream_stream_error"


# --- the request Cohere gets ------------------------------------------------------------------

def test_chat_body_translates_roles_tools_and_sampling():
    payload = {
        "model": "cohere-chat", "tools": [WEATHER, TIME], "tool_choice": "required", "stop": "END", "top_p": 0.0,
        "max_tokens": 50, "temperature": 0.2, "seed": 3,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": PNG}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "noon"}]},
        ],
    }
    body = cohere.chat_body(_deployment(DEAD_URL), payload, stream=True)
    assert body["model"] == "command-a-03-2025" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": PNG}}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "noon"},
    ]
    assert body["tools"][1] == {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    assert body["tools"][0]["function"]["description"] == "Current weather for a city."
    assert (body["tool_choice"], body["stop_sequences"], body["p"], body["max_tokens"]) == ("REQUIRED", ["END"], 0.01, 50)
    assert (body["temperature"], body["seed"]) == (0.2, 3) and "strict_tools" not in body


def test_chat_body_maps_json_schema_and_strict_tools():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = cohere.chat_body(_deployment(DEAD_URL), _chat(response_format=fmt), stream=False)
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    assert cohere.chat_body(_deployment(DEAD_URL), _chat(tools=[strict]), stream=False)["strict_tools"] is True


# --- unsupported, before any network call -----------------------------------------------------

@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"presence_penalty": -0.5}, "presence_penalty"),
    ({"frequency_penalty": 1.5}, "frequency_penalty"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ({"tools": [{"type": "function", "function": {**WEATHER["function"], "strict": True}}, TIME]}, "tools"),
    ({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages[0].name"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]},
     "messages[0].content[0]"),
])
def test_unmappable_parameters_are_refused_before_the_network(extra, param):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(DEAD_URL, _chat(**extra))
    assert caught.value.status == 400 and caught.value.code == "unsupported_parameter" and caught.value.param == param


def test_named_tool_choice_offers_only_that_tool_and_requires_a_call():  # type: ignore[no-untyped-def]
    choice = {"type": "function", "function": {"name": "get_time"}}
    body = cohere.chat_body(_deployment(DEAD_URL), _chat(tools=[WEATHER, TIME], tool_choice=choice), stream=False)
    assert [t["function"]["name"] for t in body["tools"]] == ["get_time"] and body["tool_choice"] == "REQUIRED"


@pytest.mark.parametrize(("payload", "param"), [
    ({"input": [[1, 2, 3]]}, "input"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x", "input_type": "query"}, "input_type"),
])
def test_unmappable_embedding_parameters_are_refused(payload, param):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _embed(DEAD_URL, {"model": "cohere-embed", **payload})
    assert caught.value.status == 400 and caught.value.param == param


# --- embeddings -----------------------------------------------------------------------------------

def test_embeddings_for_a_string_and_a_list(fake_provider_url):  # type: ignore[no-untyped-def]
    one, usage = _embed(fake_provider_url, {"model": "cohere-embed", "input": "hello world"})
    assert one["object"] == "list" and one["model"] == "cohere-embed" and len(one["data"]) == 1
    assert one["data"][0]["object"] == "embedding" and all(isinstance(v, float) for v in one["data"][0]["embedding"])
    assert usage.input_tokens == one["usage"]["prompt_tokens"] == 2
    many, _ = _embed(fake_provider_url, {"model": "cohere-embed", "input": ["a b", "hello world"], "user": "u1"})
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert many["data"][1]["embedding"] == one["data"][0]["embedding"]  # same text, same vector


def test_embedding_dimensions_and_base64(fake_provider_url):  # type: ignore[no-untyped-def]
    floats, _ = _embed(fake_provider_url, {"model": "cohere-embed", "input": "x", "dimensions": 256})
    assert len(floats["data"][0]["embedding"]) == 256
    packed, _ = _embed(fake_provider_url, {"model": "cohere-embed", "input": "x", "dimensions": 256, "encoding_format": "base64"})
    decoded = struct.unpack("<256f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


def test_more_than_96_inputs_are_sent_in_batches_and_kept_in_order(fake_provider_url):  # type: ignore[no-untyped-def]
    texts = [f"text number {i}" for i in range(200)]
    body, usage = _embed(fake_provider_url, {"model": "cohere-embed", "input": texts})
    assert [d["index"] for d in body["data"]] == list(range(200)) and usage.input_tokens == 600
    last, _ = _embed(fake_provider_url, {"model": "cohere-embed", "input": texts[-1]})
    assert body["data"][-1]["embedding"] == last["data"][0]["embedding"]


def test_embedding_errors_are_mapped(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _embed(fake_provider_url, {"model": "cohere-embed", "input": ["fine", "busy [[fake:status=429]]"]})
    assert caught.value.status == 429 and caught.value.headers == {"retry-after": "1"}
    with pytest.raises(GatewayError) as caught:
        _embed(fake_provider_url, {"model": "cohere-embed", "input": "x", "dimensions": 100})
    assert caught.value.status == 400 and "output_dimension" in caught.value.message


def test_a_credential_http_cannot_carry_is_a_clear_502_that_does_not_echo_it(fake_provider_url):  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        _read(fake_provider_url, _chat(), credential="co-secret-key\u200b")  # pasted with a zero-width space
    error = caught.value
    assert error.status == 502 and error.code == "upstream_request_invalid"
    assert "co-secret" not in str(error) and "co-secret" not in repr(error.__cause__) and error.__cause__ is None
