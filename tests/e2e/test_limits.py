"""Rate limits, budgets and the plan quota, enforced by the running gateway in one Redis
round trip, seen through the official SDKs."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from gateway.catalog.publish import redis_sync
from gateway.hotpath.limits import UNITS_PER_USD, budget_reserved
from gateway.hotpath.redis_keys import budget_key, key_ident, key_record_key, workspace_ident
from keys.models import ApiKey
from keys.services import api_key_create, api_key_policy_update
from tenants.services import workspace_policy_update
from tests.e2e.sdk import HI, PRICEY, anthropic_client, events_of, openai_client


@pytest.fixture
def key(make_workspace, fake_models):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    api_key, secret = api_key_create(workspace=workspace, name="limited")
    return workspace, api_key, secret


def _wait_policy() -> None:
    time.sleep(0.6)  # key records are re-read from Redis at most every 0.5 s


def test_requests_per_minute_per_key_with_openai_headers(gateway_url, key):  # type: ignore[no-untyped-def]
    workspace, api_key, secret = key
    api_key_policy_update(workspace=workspace, key=api_key, rpm_limit=3)
    _wait_policy()
    client = openai_client(gateway_url, secret)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="fake-openai", messages=HI)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="fake-openai", messages=HI)
    response = err.value.response
    assert err.value.code == "rate_limit_exceeded" and "requests per minute (key 'limited')" in err.value.message
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-remaining-requests"] == "0" and response.headers["x-ratelimit-reset-requests"]
    # the same limit reaches an Anthropic client in Anthropic's error format
    with pytest.raises(anthropic.RateLimitError) as err2:
        anthropic_client(gateway_url, secret).messages.create(model="fake-anthropic", max_tokens=10, messages=HI)
    assert err2.value.body["error"]["type"] == "rate_limit_error" and "limit 3" in err2.value.body["error"]["message"]


def test_tokens_per_minute_reserves_max_output_and_gives_back_the_unused(gateway_url, key):  # type: ignore[no-untyped-def]
    workspace, api_key, secret = key
    api_key_policy_update(workspace=workspace, key=api_key, tpm_limit=100)
    _wait_policy()
    client = openai_client(gateway_url, secret)
    first = client.chat.completions.with_raw_response.create(model="fake-openai", messages=HI, max_tokens=80)
    assert first.headers["x-ratelimit-limit-tokens"] == "100"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 20  # prompt + 80 reserved
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="fake-openai", messages=HI, max_tokens=80)
    assert "tokens per minute" in err.value.message
    # the first answer used far fewer than 80 tokens: a small request fits in what was given back
    client.chat.completions.create(model="fake-openai", messages=HI, max_tokens=30)
    with pytest.raises(openai.RateLimitError) as err2:
        client.chat.completions.create(model="fake-openai", messages=HI, max_tokens=500)
    assert "more than the whole limit" in err2.value.message


def test_hard_key_budget_refuses_before_the_upstream_and_says_which_and_when(gateway_url, key, pricey_model):  # type: ignore[no-untyped-def]
    workspace, api_key, secret = key
    api_key_policy_update(workspace=workspace, key=api_key, budget_amount=Decimal("0.05"), budget_period="daily")
    _wait_policy()
    client = openai_client(gateway_url, secret)
    # reserves (7 prompt + 30 output tokens) x $0.001 = $0.037; the answer costs $0.016
    client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=30)
    with pytest.raises(openai.RateLimitError) as err:  # $0.016 spent + $0.037 could pass $0.05
        client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=30)
    message = err.value.message
    assert err.value.code == "budget_exceeded" and err.value.type == "insufficient_quota"
    assert "key 'limited'" in message and "daily budget of $0.05" in message and "resets at" in message
    assert int(err.value.response.headers["retry-after"]) <= 86400
    events = events_of(workspace)
    assert [e.status_code for e in events] == [200, 429] and float(events[1].cost) == 0


def test_soft_budget_only_alerts_and_lets_requests_through(gateway_url, key, pricey_model):  # type: ignore[no-untyped-def]
    workspace, api_key, secret = key
    api_key_policy_update(workspace=workspace, key=api_key, budget_amount=Decimal("0.01"), budget_hard=False)
    _wait_policy()
    client = openai_client(gateway_url, secret)
    for _ in range(3):
        client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=20)
    assert sum(Decimal(e.cost) for e in events_of(workspace)) > Decimal("0.01")


def test_plan_quota_is_enforced_by_the_same_check(gateway_url, key):  # type: ignore[no-untyped-def]
    from billing.models import Plan

    workspace, _, secret = key
    plan, _ = Plan.objects.get_or_create(code="tiny-test", defaults={"name": "Tiny", "monthly_request_quota": 2})
    workspace_policy_update(workspace=workspace, plan=plan)
    _wait_policy()
    client = openai_client(gateway_url, secret)
    client.chat.completions.create(model="fake-openai", messages=HI)
    client.embeddings.create(model="fake-embed", input="counts too")
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="fake-openai", messages=HI)
    assert err.value.code == "quota_exceeded" and "monthly quota of 2 requests" in err.value.message


def test_free_plan_quota_is_published_with_every_key(key):  # type: ignore[no-untyped-def]
    import orjson

    _, api_key, _ = key
    record = orjson.loads(redis_sync().get(key_record_key(api_key.key_hash)))
    assert record["policy"]["workspace"]["quota"] == 1000


def test_two_hundred_concurrent_requests_never_overshoot_a_workspace_budget(gateway_url, key, pricey_model):  # type: ignore[no-untyped-def]
    """Every request reserves its maximum cost; spend stays within the budget, and the
    spend counted in Redis equals the costs stored in PostgreSQL to the last unit."""
    workspace, _, secret = key
    budget = Decimal("0.50")
    workspace_policy_update(workspace=workspace, budget_amount=budget, budget_period="monthly")
    _wait_policy()
    max_cost = Decimal("0.001") * (20 + 30)  # generous bound: prompt under 20 tokens, 30 output at most

    async def fire() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=60) as client:
            async def one() -> int:
                response = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                                             json={"model": PRICEY, "messages": HI, "max_tokens": 30})
                return response.status_code
            return await asyncio.gather(*(one() for _ in range(200)))

    statuses = asyncio.run(fire())
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 5 and statuses.count(429) >= 100
    deadline = time.monotonic() + 30
    events: list[UsageEvent] = []
    while time.monotonic() < deadline and len(events) < 200:
        events = events_of(workspace)
        time.sleep(0.2)
    assert len(events) == 200
    spent_db = sum(Decimal(e.cost) for e in events)
    assert spent_db <= budget + max_cost
    assert sum(1 for e in events if e.status_code == 200) == statuses.count(200)
    month = time.strftime("m%Y-%m", time.gmtime())
    state = redis_sync().hgetall(budget_key(workspace_ident(workspace.pk), month))
    assert int(state[b"spent"]) == int(spent_db * UNITS_PER_USD), "every settled unit is accounted for"
    assert budget_reserved(state) == 0


def test_key_limits_are_visible_in_its_record_and_revoked_with_it(key):  # type: ignore[no-untyped-def]
    workspace, api_key, _ = key
    api_key_policy_update(workspace=workspace, key=api_key, rpm_limit=7, budget_amount=Decimal("12.50"))
    with schema_context(workspace.schema_name):
        stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.rpm_limit == 7 and stored.budget_amount == Decimal("12.50")
    with pytest.raises(TypeError):
        api_key_policy_update(workspace=workspace, key=api_key, name="not a policy field")


def test_model_provider_and_global_limits_set_in_admin_apply_to_every_workspace(gateway_url, key, make_workspace):  # type: ignore[no-untyped-def]
    from gateway.catalog.models import GlobalLimits, Provider
    from gateway.catalog.services import model_group_create

    _, _, secret = key
    _, other_secret = api_key_create(workspace=make_workspace(), name="other")
    provider = Provider.objects.create(name="limited-provider", kind="fake", base_url=Provider.objects.get(name="fake").base_url,
                                       rpm_limit=3)
    model_group_create(public_name="limited-model", provider=provider, upstream_name="x", rpm_limit=2)
    model_group_create(public_name="limited-model-b", provider=provider, upstream_name="y")
    time.sleep(1.1)
    clients = [openai_client(gateway_url, secret), openai_client(gateway_url, other_secret)]
    clients[0].chat.completions.create(model="limited-model", messages=HI)
    clients[1].chat.completions.create(model="limited-model", messages=HI)
    with pytest.raises(openai.RateLimitError) as err:
        clients[0].chat.completions.create(model="limited-model", messages=HI)
    assert "model 'limited-model'" in err.value.message
    clients[1].chat.completions.create(model="limited-model-b", messages=HI)  # the provider's third request
    with pytest.raises(openai.RateLimitError) as err2:
        clients[0].chat.completions.create(model="limited-model-b", messages=HI)
    assert "provider 'limited-provider'" in err2.value.message
    limits = GlobalLimits.current()
    limits.rpm_limit = 1
    limits.save()
    try:
        time.sleep(1.1)
        with pytest.raises(openai.RateLimitError) as err3:
            for _ in range(2):
                clients[1].chat.completions.create(model="fake-openai", messages=HI)
        assert "(gateway)" in err3.value.message
    finally:
        limits.rpm_limit = None
        limits.save()
        time.sleep(1.1)


def test_member_limit_covers_every_key_the_member_created(gateway_url, make_user, make_workspace, fake_models):  # type: ignore[no-untyped-def]
    from django.test import Client

    from tenants.models import Membership
    from tenants.services import member_add

    owner, member = make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=member, role="member")
    _, first = api_key_create(workspace=workspace, name="one", created_by_id=member.pk)
    _, second = api_key_create(workspace=workspace, name="two", created_by_id=member.pk)
    _, owners = api_key_create(workspace=workspace, name="owner's", created_by_id=owner.pk)
    membership = Membership.objects.get(workspace=workspace, user=member)
    web = Client()
    web.force_login(owner)
    page = web.post(f"/workspaces/members/{membership.pk}/limits/", {"rpm_limit": "2", "tpm_limit": ""}, follow=True)
    assert "Rate limits for" in page.content.decode()
    _wait_policy()
    openai_client(gateway_url, first).chat.completions.create(model="fake-openai", messages=HI)
    openai_client(gateway_url, second).chat.completions.create(model="fake-openai", messages=HI)
    with pytest.raises(openai.RateLimitError) as err:
        openai_client(gateway_url, first).chat.completions.create(model="fake-openai", messages=HI)
    assert "(member)" in err.value.message
    openai_client(gateway_url, owners).chat.completions.create(model="fake-openai", messages=HI)  # not the member's


def test_failed_and_cut_upstream_calls_release_their_reservations(gateway_url, key, pricey_model):  # type: ignore[no-untyped-def]
    workspace, api_key, secret = key
    api_key_policy_update(workspace=workspace, key=api_key, budget_amount=Decimal("1.00"), budget_period="lifetime")
    _wait_policy()
    client = openai_client(gateway_url, secret)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=PRICEY, messages=[{"role": "user", "content": "[[fake:status=500]]"}],
                                       max_tokens=500)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model=PRICEY, stream=True, max_tokens=500,
                                            messages=[{"role": "user", "content": "[[fake:cut]] [[fake:words=50]]"}]))
    events = events_of(workspace)
    state = redis_sync().hgetall(budget_key(key_ident(workspace.schema_name, api_key.pk), "lifetime"))
    assert budget_reserved(state) == 0
    # the cut stream's streamed tokens are billed; the failed call costs nothing
    assert int(state[b"spent"]) == int(sum(Decimal(e.cost) for e in events) * UNITS_PER_USD) > 0
