"""Bad input gets a clear 400 in the inbound API's own error format, before any upstream
call; features an upstream cannot honour are refused by name, never dropped."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.e2e.sdk import (
    PNG_BASE64,
    anthropic_client,
    events_of,
    fake_stats,
    openai_client,
    upstream_abandoned_since,
)

BAD_SCHEMA = {"type": "object", "properties": {"city": {"type": "strng"}}}


def _openai_post(gateway_url: str, secret: str, body: object, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    content = body if isinstance(body, bytes) else None
    return httpx.post(gateway_url + "/v1/chat/completions", json=None if content else body, content=content,
                      headers={"Authorization": f"Bearer {secret}", "content-type": "application/json"}, timeout=30, **kwargs)


def _anthropic_post(gateway_url: str, secret: str, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    return httpx.post(gateway_url + "/v1/messages", json=None if content else body, content=content, timeout=30,
                      headers={"x-api-key": secret, "anthropic-version": "2023-06-01", "content-type": "application/json"})


USER = {"role": "user", "content": "hi"}
OPENAI_CASES = [
    ({"model": "fake-openai", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"model": "fake-openai", "messages": []}, "messages"),
    ({"model": "fake-openai", "messages": "hi"}, "messages"),
    ({"model": "fake-openai", "messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
    ({"model": "fake-openai", "messages": [USER], "temperature": "hot"}, "temperature"),
    ({"model": "fake-openai", "messages": [USER], "tools": [{"type": "function", "function": {"name": "w", "parameters": BAD_SCHEMA}}]},
     "tools[0].function.parameters"),
    ({"model": "fake-openai", "messages": [USER], "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
     "tools[0].function.name"),
    ({"model": "fake-openai", "messages": [USER], "tool_choice": {"type": "function", "function": {"name": "nope"}},
      "tools": [{"type": "function", "function": {"name": "w"}}]}, "tool_choice"),
    ({"model": "fake-openai", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%not-base64%%%"}}]}]}, "messages[0].content[0].image_url.url"),
    ({"model": "fake-openai", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "fake-openai", "messages": [USER], "response_format": {"type": "yaml"}}, "response_format.type"),
]


@pytest.mark.parametrize(("body", "param"), OPENAI_CASES, ids=[c[1] + f"-{i}" for i, c in enumerate(OPENAI_CASES)])
def test_openai_bad_input_is_a_400_naming_the_field(gateway_url, sdk_key, body, param):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = _openai_post(gateway_url, secret, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and param.split("[")[0] in error["message"]


ANTHROPIC_CASES = [
    ({"model": "fake-anthropic", "max_tokens": 10, "messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
    ({"model": "fake-anthropic", "max_tokens": 10, "messages": []}, "messages"),
    ({"model": "fake-anthropic", "messages": [USER]}, "max_tokens"),
    ({"model": "fake-anthropic", "max_tokens": "ten", "messages": [USER]}, "max_tokens"),
    ({"model": "fake-anthropic", "max_tokens": 10, "messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
    ({"model": "fake-anthropic", "max_tokens": 10, "messages": [USER], "tools": [{"name": "w", "input_schema": BAD_SCHEMA}]},
     "tools.0.input_schema"),
    ({"model": "fake-anthropic", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%not-base64%%%"}}]}]},
     "messages.0.content.0.source.data"),
]


@pytest.mark.parametrize(("body", "field"), ANTHROPIC_CASES, ids=[c[1] + f"-{i}" for i, c in enumerate(ANTHROPIC_CASES)])
def test_anthropic_bad_input_is_a_400_in_anthropic_format(gateway_url, sdk_key, body, field):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = _anthropic_post(gateway_url, secret, body)
    assert response.status_code == 400
    data = response.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error" and field in data["error"]["message"]


def test_invalid_utf8_is_a_400_for_both_apis(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    raw = b'{"model": "fake-openai", "messages": [{"role": "user", "content": "caf\xe9"}]}'
    response = _openai_post(gateway_url, secret, raw)
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]
    response = _anthropic_post(gateway_url, secret, raw.replace(b'"messages"', b'"max_tokens": 5, "messages"'))
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]


def test_ten_megabyte_prompt_over_the_context_window_is_refused_before_the_upstream(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    """tiny-window's upstream is unreachable: a 400 (not a 502) proves no upstream call."""
    workspace, secret = sdk_key
    prompt = "lorem ipsum dolor sit amet " * 400_000  # ~10.8 MB
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(gateway_url, secret).chat.completions.create(model="tiny-window", messages=[{"role": "user", "content": prompt}])
    assert err.value.code == "context_length_exceeded" and "1000 tokens" in err.value.message
    with pytest.raises(anthropic.BadRequestError) as err2:
        anthropic_client(gateway_url, secret).messages.create(model="tiny-window", max_tokens=10,
                                                              messages=[{"role": "user", "content": prompt}])
    assert "maximum context length" in err2.value.message
    # a prompt that fits goes up (and fails there, the upstream being unreachable)
    with pytest.raises(openai.APIStatusError) as err3:
        openai_client(gateway_url, secret).chat.completions.create(model="tiny-window", messages=[{"role": "user", "content": "hi"}])
    assert err3.value.status_code == 502


@pytest.mark.parametrize(("model", "kwargs", "param"), [
    ("fake-anthropic", {"n": 2}, "n"),
    ("fake-anthropic", {"temperature": 1.5}, "temperature"),
    ("fake-cohere", {"n": 3}, "n"),
    ("fake-cohere", {"logit_bias": {"50256": -100}}, "logit_bias"),
])
def test_openai_features_an_upstream_cannot_honour_are_refused_by_name(gateway_url, sdk_key, model, kwargs, param):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(gateway_url, secret).chat.completions.create(model=model, messages=[USER], **kwargs)
    assert err.value.param == param and err.value.code == "unsupported_parameter" and model in err.value.message


def test_remote_image_url_to_gemini_is_refused_by_name(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(gateway_url, secret).chat.completions.create(model="fake-gemini", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert err.value.code == "unsupported_parameter" and "image_url" in err.value.param


@pytest.mark.parametrize("model", ["fake-openai", "fake-gemini", "fake-cohere"])
def test_anthropic_only_fields_are_refused_for_other_upstreams(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    with pytest.raises(anthropic.BadRequestError) as err:
        anthropic_client(gateway_url, secret).messages.create(
            model=model, max_tokens=50, messages=[USER], thinking={"type": "enabled", "budget_tokens": 1024})
    assert "thinking" in err.value.message and model in err.value.message


def test_anthropic_only_fields_pass_through_to_an_anthropic_upstream(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    message = anthropic_client(gateway_url, secret).messages.create(
        model="fake-anthropic", max_tokens=50, messages=[USER], service_tier="auto")
    assert message.content and message.stop_reason == "end_turn"


def test_ignored_hint_is_reported_in_a_header(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    raw = openai_client(gateway_url, secret).chat.completions.with_raw_response.create(
        model="fake-anthropic", messages=[USER], seed=7)
    assert "seed" in raw.headers["x-aiproxy-ignored-params"] and raw.parse().choices[0].message.content


@pytest.mark.parametrize(("path", "model"), [("/v1/messages", "fake-gemini"), ("/v1/chat/completions", "fake-anthropic"),
                                           ("/v1/messages", "fake-anthropic")])
def test_client_disconnect_mid_stream_cancels_the_upstream_and_bills_streamed_tokens(gateway_url, fake_provider_url, sdk_key, make_workspace,  # type: ignore[no-untyped-def]
                                                                              path, model):
    from keys.services import api_key_create

    before = fake_stats(fake_provider_url)
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="disconnect")
    body = {"model": model, "stream": True, "max_tokens": 1000,
            "messages": [{"role": "user", "content": "slow story [[fake:words=200]] [[fake:chunk_ms=20]]"}]}
    headers = {"Authorization": f"Bearer {secret}", "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", gateway_url + path, json=body, headers=headers) as response:
            assert response.status_code == 200
            received = 0
            for line in response.iter_lines():
                received += line.startswith("data:")
                if received >= 12:
                    break
    deadline = time.monotonic() + 10
    events = []
    while time.monotonic() < deadline and not events:
        time.sleep(0.3)
        events = events_of(workspace)
    (event,) = events
    assert event.client_disconnected and event.usage_estimated
    assert 3 <= event.output_tokens < 200 and event.input_tokens > 0 and float(event.cost) > 0
    assert upstream_abandoned_since(fake_provider_url, before), "the gateway did not cancel the upstream request"


def test_image_parts_only_in_user_messages(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = _openai_post(gateway_url, secret, {"model": "fake-openai", "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}]}]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0].content[0]"


def _post(gateway_url: str, secret: str, path: str, raw: bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}", "x-api-key": secret, "x-goog-api-key": secret,
               "anthropic-version": "2023-06-01", "content-type": "application/json"}
    return httpx.post(gateway_url + path, content=raw, headers=headers, timeout=30)


def _error_message(path: str, response: httpx.Response) -> str:
    """The error's message, read in the API's own error format (asserting that format)."""
    data = response.json()
    if path.startswith("/v1/messages"):
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
        return data["error"]["message"]  # type: ignore[no-any-return]
    if path.startswith("/v1beta/"):
        assert data["error"]["code"] == response.status_code and data["error"]["status"]
        return data["error"]["message"]  # type: ignore[no-any-return]
    if path.startswith("/v2/"):
        assert set(data) == {"id", "message"}
        return data["message"]  # type: ignore[no-any-return]
    assert data["error"]["type"] == "invalid_request_error"
    return data["error"]["message"]  # type: ignore[no-any-return]


DEEP_BODIES = [  # (path, body with DEEP where the nesting goes)
    ("/v1/chat/completions", '{"model": "fake-openai", "messages": [{"role": "user", "content": "hi"}], "metadata": DEEP}'),
    ("/v1/chat/completions", '{"model": "fake-gemini", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": '
                             '"function", "function": {"name": "w", "parameters": {"type": "object", "properties": {"a": DEEP}}}}]}'),
    ("/v1/chat/completions", '{"model": "fake-anthropic", "messages": [{"role": "user", "content": "hi", "x": DEEP}]}'),
    ("/v1/embeddings", '{"model": "fake-openai", "input": "hi", "user": DEEP}'),
    ("/v1/messages", '{"model": "fake-anthropic", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "x": DEEP}'),
    ("/v1/messages", '{"model": "fake-openai", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": '
                     '"tool_use", "id": "t", "name": "w", "input": {"a": DEEP}}]}, {"role": "user", "content": "hi"}]}'),
    ("/v1/messages/count_tokens", '{"model": "fake-openai", "messages": [{"role": "user", "content": "hi"}], '
                                  '"tools": [{"name": "w", "input_schema": {"type": "object", "properties": {"a": DEEP}}}]}'),
    ("/v1beta/models/fake-openai:generateContent", '{"contents": [{"parts": [{"functionCall": {"name": "w", "args": DEEP}}]}]}'),
    ("/v1beta/models/fake-gemini:countTokens", '{"contents": [{"parts": [{"text": "hi"}]}], "x": DEEP}'),
    ("/v1beta/models/fake-openai:embedContent", '{"content": {"parts": [{"text": "hi"}]}, "title": DEEP}'),
    ("/v2/chat", '{"model": "fake-cohere", "messages": [{"role": "user", "content": "hi"}], "response_format": '
                 '{"type": "json_object", "json_schema": DEEP}}'),
    ("/v2/embed", '{"model": "fake-cohere", "texts": ["hi"], "input_type": "search_query", "x": DEEP}'),
]


@pytest.mark.parametrize("depth", [254, 300, 1024])
@pytest.mark.parametrize(("path", "template"), DEEP_BODIES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(DEEP_BODIES)])
def test_json_nested_too_deep_in_any_field_is_a_400_in_the_apis_format(gateway_url, sdk_key, path, template, depth):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = _post(gateway_url, secret, path, template.replace("DEEP", nested).encode())
        assert response.status_code == 400, response.text[:300]
        assert "nest" in _error_message(path, response) or "depth" in _error_message(path, response)


def test_json_nested_within_the_limit_still_works(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    nested = '{"a":' * 60 + "1" + "}" * 60
    raw = '{"model": "fake-openai", "messages": [{"role": "user", "content": "hi"}], "metadata": {"k": "v"}, "x": NEST}'
    response = _post(gateway_url, secret, "/v1/chat/completions", raw.replace("NEST", nested).encode())
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("metadata", ["user-1", 7, ["user_id"], True, {"user_id": ["x"]}])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("model", ["fake-anthropic", "fake-openai"])
def test_anthropic_metadata_of_the_wrong_type_is_a_400(gateway_url, sdk_key, metadata, path, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    body = {"model": model, "max_tokens": 5, "messages": [USER], "metadata": metadata}
    response = _post(gateway_url, secret, path, httpx.Request("POST", "/", json=body).content)
    assert response.status_code == 400 and "metadata" in _error_message(path, response)


WRONG_TYPES = [["user"], {"role": "user"}, 1, 1.5, True]


@pytest.mark.parametrize("role", WRONG_TYPES, ids=repr)
@pytest.mark.parametrize(("path", "extra"), [
    ("/v1/chat/completions", {"model": "fake-openai"}), ("/v1/chat/completions", {"model": "fake-gemini"}),
    ("/v1/messages", {"model": "fake-anthropic", "max_tokens": 5}), ("/v1/messages", {"model": "fake-cohere", "max_tokens": 5}),
    ("/v1/messages/count_tokens", {"model": "fake-openai"}), ("/v2/chat", {"model": "fake-cohere"}),
])
def test_a_role_of_the_wrong_type_is_a_400(gateway_url, sdk_key, role, path, extra):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    body = {**extra, "messages": [{"role": role, "content": "hi"}]}
    response = _post(gateway_url, secret, path, httpx.Request("POST", "/", json=body).content)
    assert response.status_code == 400 and "role" in _error_message(path, response)


@pytest.mark.parametrize("part_type", [["text"], {"t": 1}, 3])
def test_a_content_block_type_of_the_wrong_type_is_a_400(gateway_url, sdk_key, part_type):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    for path, body in [
        ("/v1/chat/completions", {"model": "fake-openai", "messages": [{"role": "user", "content": [{"type": part_type, "text": "hi"}]}]}),
        ("/v1/messages", {"model": "fake-anthropic", "max_tokens": 5,
                          "messages": [{"role": "user", "content": [{"type": part_type, "text": "hi"}]}]}),
    ]:
        response = _post(gateway_url, secret, path, httpx.Request("POST", "/", json=body).content)
        assert response.status_code == 400 and "type" in _error_message(path, response)


@pytest.mark.parametrize("tool_calls", [1.5, "x", {"a": 1}, [1, "x", {"function": 5}]], ids=repr)
def test_odd_tool_calls_in_an_over_long_prompt_are_counted_not_crashed_on(gateway_url, sdk_key, tool_calls):  # type: ignore[no-untyped-def]
    """tiny-window's context check counts the prompt before anything else reads the tool calls."""
    _, secret = sdk_key
    body = {"model": "tiny-window", "messages": [{"role": "user", "content": "lorem ipsum " * 2000, "tool_calls": tool_calls}]}
    response = _openai_post(gateway_url, secret, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize(("field", "value"), [("stream_options", "yes"), ("stream_options", {"include_usage": "yes"}),
                                              ("user", ["u"]), ("metadata", "m"), ("parallel_tool_calls", "no"),
                                              ("logprobs", 1), ("seed", "7")])
@pytest.mark.parametrize("model", ["fake-openai", "fake-anthropic", "fake-gemini", "fake-cohere"])
def test_optional_openai_fields_of_the_wrong_type_are_a_400(gateway_url, sdk_key, field, value, model):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = _openai_post(gateway_url, secret, {"model": model, "messages": [USER], "stream": True, field: value})
    assert response.status_code == 400 and response.json()["error"]["param"].startswith(field)


METHOD_CASES = [  # (method, path, allowed)
    ("GET", "/v1/chat/completions", "POST"), ("PUT", "/v1/chat/completions", "POST"), ("DELETE", "/v1/embeddings", "POST"),
    ("GET", "/v1/messages", "POST"), ("GET", "/v1/messages/count_tokens", "POST"), ("PATCH", "/v2/chat", "POST"),
    ("GET", "/v2/embed", "POST"), ("GET", "/v1beta/models/fake-gemini:generateContent", "POST"),
    ("GET", "/v1beta/models/fake-gemini:embedContent", "POST"), ("POST", "/v1/models", "GET"),
    ("DELETE", "/v1/models/fake-openai", "GET"), ("POST", "/v1beta/models", "GET"), ("PUT", "/v1beta/models/fake-gemini", "GET"),
]


@pytest.mark.parametrize(("method", "path", "allowed"), METHOD_CASES, ids=[f"{m} {p}" for m, p, _ in METHOD_CASES])
@pytest.mark.parametrize("with_key", [True, False])
def test_a_wrong_method_on_a_gateway_url_is_a_405_naming_the_allowed_one(gateway_url, sdk_key, method, path, allowed, with_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    headers = {"authorization": f"Bearer {secret}", "x-api-key": secret} if with_key else {}
    if path.startswith("/v1/messages"):
        headers["anthropic-version"] = "2023-06-01"
    response = httpx.request(method, gateway_url + path, headers=headers, timeout=30)
    assert response.status_code == 405 and response.headers["allow"] == allowed
    data = response.json()
    if path.startswith("/v1/messages"):
        assert data["type"] == "error" and allowed in data["error"]["message"]
    elif path.startswith("/v1beta/"):
        assert data["error"]["code"] == 405 and allowed in data["error"]["message"]
    elif path.startswith("/v2/"):
        assert allowed in data["message"]
    else:
        assert data["error"]["code"] == "method_not_allowed" and allowed in data["error"]["message"]


def test_an_unknown_gateway_url_is_still_a_404(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = httpx.get(gateway_url + "/v1/nothing-here", headers={"authorization": f"Bearer {secret}"}, timeout=30)
    assert response.status_code == 404


@pytest.mark.parametrize("model", ["fake-anthropic", "fake-gemini", "fake-cohere", "fake-openai"])
def test_json_strings_nested_too_deep_are_a_400_when_translated(gateway_url, sdk_key, model):  # type: ignore[no-untyped-def]
    """Tool-call arguments and tool results are JSON inside strings; adapters parse them into
    the upstream's body, where nesting past the limit is the client's 400."""
    _, secret = sdk_key
    deep = '{"a":' * 300 + "1" + "}" * 300
    body = {"model": model, "messages": [
        USER, {"role": "assistant", "content": None,
               "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": deep}}]},
        {"role": "tool", "tool_call_id": "c1", "content": deep}]}
    response = _openai_post(gateway_url, secret, body)
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"


CHAT_BODIES = {
    "/v1/chat/completions": {"model": "fake-openai", "messages": [USER]},
    "/v1/messages": {"model": "fake-anthropic", "max_tokens": 5, "messages": [USER]},
    "/v2/chat": {"model": "fake-cohere", "messages": [USER]},
    "/v1beta/models/fake-gemini:generateContent": {"contents": [{"parts": [{"text": "hi"}]}]},
}
# "²" and "¹²" are digits to str.isdigit() (latin-1 headers can hold them) but not to int()
BAD_TTLS = [b"\xb2", b"\xb9\xb2", b"1\xb2", b"0", b"-1", b"1.5", b"ten", b"", b"9" * 5000, b"2592001"]


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=[repr(t[:8]) for t in BAD_TTLS])
@pytest.mark.parametrize("path", list(CHAT_BODIES))
def test_an_invalid_cache_ttl_header_is_a_400_naming_it_in_the_apis_format(gateway_url, sdk_key, path, ttl):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    headers = {"authorization": f"Bearer {secret}", "x-api-key": secret, "x-goog-api-key": secret,
               "anthropic-version": "2023-06-01", "content-type": "application/json", "x-aiproxy-cache-ttl": ttl}
    response = httpx.post(gateway_url + path, content=orjson.dumps(CHAT_BODIES[path]), headers=headers, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert "x-aiproxy-cache-ttl" in _error_message(path, response)


def test_a_valid_cache_ttl_header_is_served(gateway_url, sdk_key):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    headers = {"authorization": f"Bearer {secret}", "content-type": "application/json", "x-aiproxy-cache-ttl": "60"}
    response = httpx.post(gateway_url + "/v1/chat/completions", content=orjson.dumps(CHAT_BODIES["/v1/chat/completions"]),
                          headers=headers, timeout=30)
    assert response.status_code == 200, response.text[:300]


MIXED_INPUTS = [
    [1] + [[2]] * 3000,  # over the input bound, hidden behind a leading token
    [1, [2, 3]],
    [[1, 2], 3],
    [[1, 2], "three"],
    ["one", [2]],
    ["one", 2],
    [1, "two"],
    [[1, 2], []],
    [[1, "2"]],
    [True, False],
    [[1.5]],
]


@pytest.mark.parametrize("value", MIXED_INPUTS, ids=[repr(v)[:20] for v in MIXED_INPUTS])
def test_embedding_input_mixing_tokens_token_arrays_and_strings_is_a_400_naming_input(gateway_url, sdk_key, value):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = httpx.post(gateway_url + "/v1/embeddings", json={"model": "fake-embed", "input": value},
                          headers={"authorization": f"Bearer {secret}"}, timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["param"] == "input"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_a_gemini_method_the_gateway_does_not_serve_is_a_404_for_every_http_method(gateway_url, sdk_key, method):  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = httpx.request(method, gateway_url + "/v1beta/models/fake-gemini:fooBar", timeout=30,
                             headers={"x-goog-api-key": secret, "content-type": "application/json"}, content=b"{}")
    assert response.status_code == 404, response.text[:300]
    assert "allow" not in response.headers
