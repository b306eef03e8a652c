"""The key page (limits, budget, spend this period, spend by day) and workspace settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from django.test import Client
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from billing.money import usd_format
from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import key_record_key
from keys.services import api_key_create, api_key_policy_update
from keys.tokens import token_hash
from tenants.services import member_add


def _event(key_id: int, cost: str, when: datetime) -> UsageEvent:
    return UsageEvent(event_id=uuid.uuid4().hex, created_at=when, key_id=key_id, endpoint="chat.completions",
                      model="fake-openai", cost=Decimal(cost), status_code=200)


def test_key_page_shows_limits_budget_spend_and_a_day_chart(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    key, _ = api_key_create(workspace=workspace, name="reports")
    other, _ = api_key_create(workspace=workspace, name="other")
    api_key_policy_update(workspace=workspace, key=key, rpm_limit=120, budget_amount=Decimal("10.00"), budget_period="monthly")
    now = datetime.now(UTC)
    with schema_context(workspace.schema_name):
        UsageEvent.objects.bulk_create([
            _event(key.pk, "1.25", now), _event(key.pk, "0.75", now),
            _event(key.pk, "0.50", now - timedelta(days=3)), _event(other.pk, "9.00", now),
        ])
    client = Client()
    client.force_login(owner)
    page = client.get(f"/keys/{key.pk}/").content.decode()
    assert "120 requests / minute" in page and "$10.00" in page and "monthly, hard limit" in page
    this_month = Decimal("2.00") + (Decimal("0.50") if (now - timedelta(days=3)).month == now.month else 0)
    assert usd_format(this_month) in page and f"{int(this_month * 10)}% of the budget" in page
    assert f'data-day="{now:%Y-%m-%d}" data-cost="2.00000000"' in page
    assert f'data-day="{now - timedelta(days=3):%Y-%m-%d}" data-cost="0.50000000"' in page
    assert page.count('class="bar"') == 30


def test_admins_change_key_limits_on_its_page_and_the_gateway_gets_them(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, member = make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=member, role="member")
    key, secret = api_key_create(workspace=workspace, name="reports")
    form = {"rpm_limit": "30", "tpm_limit": "", "budget_amount": "5", "budget_period": "daily", "budget_hard": "on",
            "budget_alert_thresholds": "90, 50"}
    member_client = Client()
    member_client.force_login(member)
    session = member_client.session
    session["workspace_id"] = workspace.pk
    session.save()
    member_client.post(f"/keys/{key.pk}/", form)
    assert "key" not in (orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")["policy"] or {})
    client = Client()
    client.force_login(owner)
    page = client.post(f"/keys/{key.pk}/", form, follow=True).content.decode()
    assert "Settings saved" in page and "30 requests / minute" in page and "alerts at 50%, 90%" in page
    policy = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")["policy"]["key"]
    assert policy == {"rpm": 30, "budget": {"amount": "5.00", "period": "daily", "hard": True, "thresholds": [50, 90]}}
    bad = client.post(f"/keys/{key.pk}/", {**form, "budget_alert_thresholds": "lots"}).content.decode()
    assert "Whole percentages" in bad


def test_workspace_settings_page_sets_budget_and_recipients(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    _, secret = api_key_create(workspace=workspace, name="k")
    client = Client()
    client.force_login(owner)
    page = client.get("/workspaces/settings/").content.decode()
    assert "Free" in page and "1000 requests a month" in page
    response = client.post("/workspaces/settings/", {
        "rpm_limit": "", "tpm_limit": "", "budget_amount": "250.00", "budget_period": "monthly", "budget_hard": "on",
        "budget_alert_thresholds": "50, 80, 100", "budget_alert_recipients": "finance@example.com\nops@example.com",
        "cache_enabled": "on", "cache_ttl_seconds": "600", "cache_scope": "key",
    }, follow=True)
    assert "Settings saved" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.budget_amount == Decimal("250.00") and workspace.budget_alert_recipients == "finance@example.com\nops@example.com"
    shared = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")["policy"]["workspace"]
    assert shared["budget"]["amount"] == "250.00" and not shared.get("fail_open")
    cache = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")["policy"]["cache"]
    assert cache == {"ttl": 600, "scope": "key", "nondeterministic": False, "semantic": False}
    bad = client.post("/workspaces/settings/", {"budget_period": "monthly", "budget_alert_recipients": "nope"}).content.decode()
    assert "is not an email address" in bad
