"""The exact response cache: served without an upstream call, replayed in the client's own
format (also as a stream), isolated per workspace, steered by headers, never storing errors."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

from keys.services import api_key_create
from tenants.services import workspace_policy_update
from tests.e2e.sdk import events_of, fake_stats, openai_client


def _ask(client, prompt: str, **kwargs):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "fake-gemini"), temperature=0, messages=[{"role": "user", "content": prompt}], **kwargs)


@pytest.fixture
def cache_key(make_workspace, fake_models):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="cached")
    return workspace, secret


def test_repeat_is_served_from_the_cache_without_an_upstream_call(gateway_url, fake_provider_url, cache_key):  # type: ignore[no-untyped-def]
    workspace, secret = cache_key
    client = openai_client(gateway_url, secret)
    first = _ask(client, "capital of France?")
    assert first.headers["x-aiproxy-cache"] == "miss"
    before = fake_stats(fake_provider_url)["requests"]
    second = _ask(client, "capital of France?")
    assert second.headers["x-aiproxy-cache"] == "hit-exact"
    assert fake_stats(fake_provider_url)["requests"] == before, "a hit never reaches the upstream"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert _ask(client, "capital of Germany?").headers["x-aiproxy-cache"] == "miss"
    statuses = [(e.cache_status, float(e.cost)) for e in events_of(workspace)]
    assert statuses[0][0] == "miss" and statuses[0][1] > 0 and statuses[1] == ("hit-exact", 0.0)


def test_a_cached_answer_is_replayed_as_a_stream_in_each_clients_format(gateway_url, cache_key):  # type: ignore[no-untyped-def]
    _, secret = cache_key
    client = openai_client(gateway_url, secret)
    text = _ask(client, "tell me about otters", model="fake-openai").parse().choices[0].message.content
    chunks = list(client.chat.completions.create(model="fake-openai", temperature=0, stream=True,
                                                 messages=[{"role": "user", "content": "tell me about otters"}],
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None
    # an Anthropic client asking the same question of the same model gets it too, as Anthropic events
    claude = anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0)
    first = claude.messages.create(model="fake-cohere", max_tokens=100, extra_body={"temperature": 0},
                                   messages=[{"role": "user", "content": "tell me about badgers"}])
    with claude.messages.stream(model="fake-cohere", max_tokens=100, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "tell me about badgers"}]) as stream:
        replayed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert replayed == first.content[0].text and final.stop_reason == "end_turn"


def test_cache_is_isolated_between_workspaces(gateway_url, fake_provider_url, cache_key, make_workspace):  # type: ignore[no-untyped-def]
    _, secret = cache_key
    _, other = api_key_create(workspace=make_workspace(), name="other")
    _ask(openai_client(gateway_url, secret), "the same secret question")
    assert _ask(openai_client(gateway_url, secret), "the same secret question").headers["x-aiproxy-cache"] == "hit-exact"
    assert _ask(openai_client(gateway_url, other), "the same secret question").headers["x-aiproxy-cache"] == "miss"


def test_nondeterministic_requests_bypass_unless_the_workspace_opts_in(gateway_url, cache_key):  # type: ignore[no-untyped-def]
    workspace, secret = cache_key
    client = openai_client(gateway_url, secret)
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-aiproxy-cache"] == "bypass"  # temperature omitted: 1.0
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert _ask(client, "call f", tools=tools).headers["x-aiproxy-cache"] == "bypass"
    workspace_policy_update(workspace=workspace, cache_nondeterministic=True)
    time.sleep(0.6)
    raw = client.chat.completions.with_raw_response.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-aiproxy-cache"] in ("miss", "hit-exact")
    again = client.chat.completions.with_raw_response.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
    assert again.headers["x-aiproxy-cache"] == "hit-exact"


def test_request_headers_steer_the_cache(gateway_url, cache_key):  # type: ignore[no-untyped-def]
    _, secret = cache_key
    client = openai_client(gateway_url, secret)
    assert _ask(client, "q1", extra_headers={"x-aiproxy-cache": "no-store"}).headers["x-aiproxy-cache"] == "miss"
    assert _ask(client, "q1").headers["x-aiproxy-cache"] == "miss"  # nothing was stored
    assert _ask(client, "q1").headers["x-aiproxy-cache"] == "hit-exact"
    assert _ask(client, "q1", extra_headers={"x-aiproxy-cache": "no-cache"}).headers["x-aiproxy-cache"] == "bypass"
    assert _ask(client, "q2", extra_headers={"x-aiproxy-cache-ttl": "1"}).headers["x-aiproxy-cache"] == "miss"
    time.sleep(1.2)
    assert _ask(client, "q2").headers["x-aiproxy-cache"] == "miss"  # expired
    bad = httpx.post(gateway_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {secret}", "x-aiproxy-cache": "maybe"},
                     json={"model": "fake-openai", "temperature": 0, "messages": [{"role": "user", "content": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-aiproxy-cache"


def test_errors_and_cut_streams_are_never_stored(gateway_url, fake_provider_url, cache_key):  # type: ignore[no-untyped-def]
    import openai

    _, secret = cache_key
    client = openai_client(gateway_url, secret)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _ask(client, "[[fake:status=500]]")
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="fake-openai", temperature=0, stream=True,
                                            messages=[{"role": "user", "content": "[[fake:cut]] [[fake:words=20]]"}]))
    assert _ask(client, "[[fake:cut]] [[fake:words=20]]", model="fake-openai").headers["x-aiproxy-cache"] == "miss"


def test_per_key_scope_keeps_keys_apart(gateway_url, cache_key):  # type: ignore[no-untyped-def]
    workspace, secret = cache_key
    _, second = api_key_create(workspace=workspace, name="second")
    _ask(openai_client(gateway_url, secret), "shared by the workspace?")
    assert _ask(openai_client(gateway_url, second), "shared by the workspace?").headers["x-aiproxy-cache"] == "hit-exact"
    workspace_policy_update(workspace=workspace, cache_scope="key")
    time.sleep(0.6)
    _ask(openai_client(gateway_url, secret), "per key?")
    assert _ask(openai_client(gateway_url, second), "per key?").headers["x-aiproxy-cache"] == "miss"
    assert _ask(openai_client(gateway_url, secret), "per key?").headers["x-aiproxy-cache"] == "hit-exact"
