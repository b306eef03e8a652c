"""The official openai SDK against the running gateway (daphne) and fake provider."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from keys.models import ApiKey
from keys.services import api_key_create, api_key_revoke
from tests.e2e.sdk import events_of, fake_stats, upstream_abandoned_since


@pytest.fixture
def workspace_key(make_workspace, fake_models):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    key, secret = api_key_create(workspace=workspace, name="sdk test")
    return workspace, key, secret


def _client(gateway_url: str, secret: str, **kwargs) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, max_retries=0, **kwargs)


def _events(workspace) -> list[UsageEvent]:  # type: ignore[no-untyped-def]
    return events_of(workspace)


def test_chat_completion_non_streaming_is_answered_and_recorded(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    workspace, key, secret = workspace_key
    reply = _client(gateway_url, secret).chat.completions.create(
        model="fake-openai", messages=[{"role": "user", "content": "tell me about otters"}]
    )
    assert "otters" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens == 12
    (event,) = _events(workspace)
    assert (event.model, event.provider, event.status_code, event.key_id) == ("fake-openai", "fake", 200, key.pk)
    assert (event.input_tokens, event.output_tokens) == (reply.usage.prompt_tokens, 12)
    expected = (reply.usage.prompt_tokens * 0.15 + 12 * 0.60) / 1_000_000
    assert float(event.cost) == pytest.approx(expected)
    assert event.cache_status == "miss" and not event.stream
    with schema_context(workspace.schema_name):
        assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


def test_streaming_deltas_assemble_and_usage_is_recorded(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = workspace_key
    stream = _client(gateway_url, secret).chat.completions.create(
        model="fake-openai", stream=True, messages=[{"role": "user", "content": "stream about rivers [[fake:words=30]]"}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 30 and "rivers" in text
    assert all(c.usage is None for c in chunks), "usage chunk must not leak when the client did not ask for it"
    (event,) = _events(workspace)
    assert event.stream and event.output_tokens == 30 and not event.usage_estimated


def test_streaming_include_usage_returns_usage_chunk(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    chunks = list(_client(gateway_url, secret).chat.completions.create(
        model="fake-openai", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}],
    ))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


def test_azure_openai_upstream_is_reached_through_deployment_url(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    reply = _client(gateway_url, secret).chat.completions.create(
        model="fake-azure", messages=[{"role": "user", "content": "azure please"}]
    )
    assert reply.model == "gpt-4o-mini-deployment"


def test_models_lists_workspace_models(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    ids = {m.id for m in _client(gateway_url, secret).models.list()}
    assert {"fake-openai", "fake-azure"} <= ids


def test_unknown_key_is_rejected_with_openai_error(gateway_url, fake_models):  # type: ignore[no-untyped-def]
    with pytest.raises(openai.AuthenticationError) as err:
        _client(gateway_url, "sk-aip-not-a-real-key").models.list()
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"


def test_missing_and_malformed_keys_get_401(gateway_url):  # type: ignore[no-untyped-def]
    body = {"model": "fake-openai", "messages": [{"role": "user", "content": "x"}]}
    missing = httpx.post(gateway_url + "/v1/chat/completions", json=body)
    malformed = httpx.post(gateway_url + "/v1/chat/completions", json=body, headers={"Authorization": "Basic abc"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert malformed.status_code == 401 and "Bearer" in malformed.json()["error"]["message"]


def test_revoked_key_stops_working_within_one_second(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    workspace, key, secret = workspace_key
    client = _client(gateway_url, secret)
    client.models.list()  # warm the gateway's in-process cache
    api_key_revoke(workspace=workspace, key=key)
    time.sleep(1.0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.models.list()
    assert err.value.code == "revoked_api_key"


def test_unknown_model_is_404(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    with pytest.raises(openai.NotFoundError) as err:
        _client(gateway_url, secret).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "fake-openai"}, "messages"),
        ({"model": "fake-openai", "messages": []}, "messages"),
        ({"model": "fake-openai", "messages": "hello"}, "messages"),
        ({"model": "fake-openai", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "fake-openai", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "fake-openai", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "fake-openai", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
    ],
)
def test_bad_request_fields_are_named(gateway_url, workspace_key, body, param):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    response = httpx.post(gateway_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_malformed_json_is_400(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    response = httpx.post(gateway_url + "/v1/chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {secret}", "content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_body_over_limit_is_413(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    big = "x" * 12_100_000
    with pytest.raises(openai.APIStatusError) as err:
        _client(gateway_url, secret).chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": big}])
    assert err.value.status_code == 413


def test_unreachable_upstream_is_502_and_nothing_is_half_written(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = workspace_key
    with pytest.raises(openai.APIStatusError) as err:
        _client(gateway_url, secret).chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 502 and err.value.code == "upstream_unreachable"
    (event,) = _events(workspace)
    assert event.status_code == 502 and event.input_tokens == 0 and float(event.cost) == 0


def test_upstream_timeout_is_504(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    with pytest.raises(openai.APIStatusError) as err:
        _client(gateway_url, secret).chat.completions.create(
            model="fake-openai", messages=[{"role": "user", "content": "[[fake:hang]]"}]
        )
    assert err.value.status_code == 504


def test_upstream_429_reaches_client_as_rate_limit_error(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    with pytest.raises(openai.RateLimitError) as err:
        _client(gateway_url, secret).chat.completions.create(
            model="fake-openai", messages=[{"role": "user", "content": "[[fake:status=429]]"}]
        )
    assert err.value.response.headers.get("retry-after") == "1"


def test_key_on_another_workspace_host_is_401(gateway_url, workspace_key, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, secret = workspace_key
    other = make_workspace()
    own = httpx.get(gateway_url + "/v1/models", headers={"Authorization": f"Bearer {secret}", "Host": workspace.host})
    foreign = httpx.get(gateway_url + "/v1/models", headers={"Authorization": f"Bearer {secret}", "Host": other.host})
    assert own.status_code == 200
    assert foreign.status_code == 401 and foreign.json()["error"]["code"] == "wrong_workspace"


def test_client_disconnect_mid_stream_still_records_usage(gateway_url, fake_provider_url, workspace_key):  # type: ignore[no-untyped-def]
    workspace, _, secret = workspace_key
    before = fake_stats(fake_provider_url)
    body = {"model": "fake-openai", "stream": True,
            "messages": [{"role": "user", "content": "slow story [[fake:words=200]] [[fake:chunk_ms=20]]"}]}
    with httpx.Client() as client:
        with client.stream("POST", gateway_url + "/v1/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {secret}"}) as response:
            received = 0
            for line in response.iter_lines():
                if line.startswith("data:"):
                    received += 1
                if received >= 10:
                    break
    deadline = time.monotonic() + 10
    events: list[UsageEvent] = []
    while time.monotonic() < deadline and not events:
        time.sleep(0.3)
        events = _events(workspace)
    (event,) = events
    assert event.client_disconnected and event.usage_estimated
    assert 5 <= event.output_tokens < 200 and event.input_tokens > 0 and float(event.cost) > 0
    assert upstream_abandoned_since(fake_provider_url, before), "the gateway did not cancel the upstream request"


def test_usage_is_isolated_between_workspaces(gateway_url, workspace_key, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, secret = workspace_key
    other = make_workspace()
    _, other_secret = api_key_create(workspace=other, name="other")
    _client(gateway_url, secret).chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "a"}])
    _client(gateway_url, other_secret).chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "b"}])
    _client(gateway_url, other_secret).chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "c"}])
    assert len(_events(workspace)) == 1
    assert len(_events(other)) == 2


def test_upstream_credential_rejection_does_not_echo_upstream_message(gateway_url, workspace_key):  # type: ignore[no-untyped-def]
    _, _, secret = workspace_key
    with pytest.raises(openai.AuthenticationError) as err:
        _client(gateway_url, secret).chat.completions.create(
            model="fake-openai", messages=[{"role": "user", "content": "[[fake:status=401]]"}]
        )
    assert err.value.code == "upstream_auth_failed"
    assert "sk-upstream-secret-123" not in err.value.response.text and "Fake upstream" not in err.value.response.text
