"""Bad input gets a clear 400 in the inbound API's own error format, before any upstream
call; features an upstream cannot honour are refused by name, never dropped."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
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
