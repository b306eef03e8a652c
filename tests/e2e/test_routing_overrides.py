"""The workspace's routing bounds on the running gateway: with overrides off, a request
sending x-aiproxy-max-attempts is refused in its client's format; the workspace's cap on
attempts holds against the demo failover group (`demo-failover`: "down" always answers 503,
then "up")."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from gateway.catalog.demo import FAILOVER_GROUP
from keys.services import api_key_create
from tenants.services import workspace_policy_update
from tests.e2e.sdk import HI, openai_client

KEY_REREAD = 0.6  # seconds: a gateway re-reads a key's record at most every 0.5 s


@pytest.fixture
def routed(make_workspace, fake_models):  # type: ignore[no-untyped-def]
    """A workspace without the response cache (every request must be routed) and its key."""
    workspace = make_workspace()
    workspace_policy_update(workspace=workspace, cache_enabled=False)
    _, secret = api_key_create(workspace=workspace, name="routing")
    return workspace, secret


def test_override_headers_are_a_400_in_each_clients_format_when_the_workspace_turned_them_off(  # type: ignore[no-untyped-def]
        gateway_url, routed):
    workspace, secret = routed
    headers = {"x-aiproxy-max-attempts": "2"}
    allowed = openai_client(gateway_url, secret).chat.completions.with_raw_response.create(
        model="fake-openai", messages=HI, extra_headers=headers)
    assert allowed.status_code == 200
    workspace_policy_update(workspace=workspace, routing_overrides=False)
    time.sleep(KEY_REREAD)
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(gateway_url, secret).chat.completions.create(model="fake-openai", messages=HI,
                                                                   extra_headers=headers)
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "overrides_not_allowed"
    assert "x-aiproxy-max-attempts" in error["message"] and "workspace" in error["message"]
    anthropic_style = httpx.post(f"{gateway_url}/v1/messages", headers={"x-api-key": secret, **headers},
                                 json={"model": "fake-anthropic", "max_tokens": 10, "messages": HI})
    assert anthropic_style.status_code == 400
    body = anthropic_style.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "x-aiproxy-max-attempts" in body["error"]["message"]
    timeout_only = httpx.post(f"{gateway_url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}",
                                                                            "x-aiproxy-timeout": "30"},
                              json={"model": "fake-openai", "messages": HI})
    assert timeout_only.status_code == 200, "x-aiproxy-timeout can only shorten timeouts: still allowed"


def test_the_workspaces_cap_on_attempts_stops_a_failover(gateway_url, routed):  # type: ignore[no-untyped-def]
    workspace, secret = routed
    url, auth = f"{gateway_url}/v1/chat/completions", {"authorization": f"Bearer {secret}"}
    workspace_policy_update(workspace=workspace, routing_max_attempts=1)
    time.sleep(KEY_REREAD)
    for headers in ({}, {"x-aiproxy-max-attempts": "5"}):  # neither the group (3) nor the header passes the cap
        capped = httpx.post(url, headers={**auth, **headers}, json={"model": FAILOVER_GROUP, "messages": HI})
        assert capped.status_code == 503, capped.text
    workspace_policy_update(workspace=workspace, routing_max_attempts=2)
    time.sleep(KEY_REREAD)
    served = httpx.post(url, headers=auth, json={"model": FAILOVER_GROUP, "messages": HI})
    assert served.status_code == 200, served.text
    assert served.headers["x-aiproxy-attempts"] == "2" and served.headers["x-aiproxy-deployment"] == f"{FAILOVER_GROUP}/up"
