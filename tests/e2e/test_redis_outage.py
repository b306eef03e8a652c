"""Redis stops under load and comes back: keys with a hard budget are refused (503) unless
their workspace chose fail-open, others are served, and no usage is lost: events queued
while Redis was down are spooled and sent when it returns."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import httpx
import pytest

from gateway.catalog.publish import redis_sync
from keys.services import api_key_create, api_key_policy_update
from tenants.services import workspace_policy_update
from tests.e2e.sdk import HI, events_of
from tests.testenv import EXTERNAL_REDIS

pytestmark = pytest.mark.skipif(EXTERNAL_REDIS, reason="stops and restarts the tests' own embedded Redis")


def _post(gateway_url: str, secret: str) -> httpx.Response:
    return httpx.post(gateway_url + "/v1/chat/completions", json={"model": "fake-openai", "messages": HI},
                      headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def test_redis_outage_fails_closed_for_hard_budgets_and_loses_no_usage(gateway_url, fake_models, make_workspace):  # type: ignore[no-untyped-def]
    from aiproxy_site.embedded import redis_url

    plain_ws, guarded_ws, open_ws = make_workspace(), make_workspace(), make_workspace()
    _, plain = api_key_create(workspace=plain_ws, name="no budget")
    guarded_key, guarded = api_key_create(workspace=guarded_ws, name="hard budget")
    api_key_policy_update(workspace=guarded_ws, key=guarded_key, budget_amount=Decimal("100"))
    open_key, opened = api_key_create(workspace=open_ws, name="hard budget, fail-open workspace")
    api_key_policy_update(workspace=open_ws, key=open_key, budget_amount=Decimal("100"))
    workspace_policy_update(workspace=open_ws, limits_fail_open=True)
    time.sleep(0.6)
    for secret in (plain, guarded, opened):  # warm: every gateway process knows these keys
        assert _post(gateway_url, secret).status_code == 200

    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 400 requests
        for _ in range(400):
            if stop.is_set():
                return
            statuses.append(_post(gateway_url, plain).status_code)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(0.5)
    redis_sync().shutdown(nosave=False)  # Redis goes away mid-load
    try:
        time.sleep(0.5)
        down_guarded = _post(gateway_url, guarded)
        down_open = _post(gateway_url, opened)
        time.sleep(0.5)
    finally:
        redis_url()  # and comes back (same data: AOF)
        redis_sync().connection_pool.disconnect()
    time.sleep(0.5)
    stop.set()
    worker.join()

    assert down_guarded.status_code == 503 and down_guarded.json()["error"]["code"] == "limits_unavailable"
    assert down_open.status_code == 200
    assert statuses and set(statuses) == {200}, "keys without a hard budget are served throughout"
    assert _post(gateway_url, plain).status_code == 200  # a request after the outage sends the spool
    deadline = time.monotonic() + 20
    recorded = []
    while time.monotonic() < deadline:
        recorded = [e for e in events_of(plain_ws) if e.status_code == 200]
        if len(recorded) >= len(statuses) + 2:
            break
        time.sleep(0.3)
    assert len(recorded) == len(statuses) + 2, "every answered request is recorded once"
    assert len({e.event_id for e in recorded}) == len(recorded)
    open_events = events_of(open_ws)
    assert [e.status_code for e in open_events] == [200, 200]
    assert [e.status_code for e in events_of(guarded_ws)] == [200, 503]
