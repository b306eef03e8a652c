"""Money as people read it: budgets take sub-cent amounts, and every amount shown (pages,
emails, refusals, the API) keeps enough digits that a non-zero cost never reads as zero."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
import redis.asyncio as aioredis
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django_tenants.utils import schema_context
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from analytics.alerts import budget_alert_send
from analytics.models import UsageEvent
from billing.money import usd_format
from gateway.catalog.publish import redis_sync
from gateway.hotpath import limits
from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.errors import GatewayError
from gateway.hotpath.key_policy import BudgetPolicy, KeyPolicy, LimitScope
from gateway.hotpath.redis_keys import key_record_key
from keys.models import ApiKey
from keys.services import api_key_create
from keys.tokens import token_hash
from tenants.services import admin_token_create
from tests.gateway.deployments import deployment_make

AMOUNT = re.compile(r"-?<?\$[\d,]+\.\d+")


def _value(shown: str) -> Decimal:
    return Decimal(shown.replace("<", "").replace("$", "").replace(",", ""))


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "$0.00"),
        ("1234.5", "$1,234.50"),
        ("0.5", "$0.50"),
        ("0.0123", "$0.012"),
        ("0.0001", "$0.0001"),
        ("0.00012345", "$0.00012"),
        ("0.00000034", "$0.00000034"),
        ("0.000000001", "<$0.00000001"),
        ("-0.004", "-$0.004"),
        ("12.345", "$12.35"),
        ("0.01", "$0.01"),
    ],
)
def test_usd_format_keeps_two_significant_digits_under_a_dollar(amount, shown):  # type: ignore[no-untyped-def]
    assert usd_format(Decimal(amount)) == shown


@hsettings(max_examples=300, database=None, derandomize=True)
@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("100000000"), places=8))
def test_a_nonzero_amount_never_reads_as_zero_and_stays_close(amount):  # type: ignore[no-untyped-def]
    shown = usd_format(amount)
    assert AMOUNT.fullmatch(shown), shown
    assert _value(shown) > 0
    assert abs(_value(shown) - amount) <= max(amount * Decimal("0.05"), Decimal("0.005")), (amount, shown)


def _owner_client(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    client = Client()
    client.force_login(owner)
    return owner, workspace, client


def test_key_budget_of_a_hundredth_of_a_cent_is_kept_exactly_and_reaches_the_gateway(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, workspace, client = _owner_client(make_user, make_workspace)
    key, secret = api_key_create(workspace=workspace, name="tiny")
    response = client.post(
        f"/keys/{key.pk}/",
        {
            "rpm_limit": "",
            "tpm_limit": "",
            "budget_amount": "0.0001",
            "budget_period": "daily",
            "budget_hard": "on",
            "budget_alert_thresholds": "50",
        },
    )
    assert response.status_code == 302
    with schema_context(workspace.schema_name):
        assert ApiKey.objects.get(pk=key.pk).budget_amount == Decimal("0.0001")
    record = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))))
    assert record["policy"]["key"]["budget"]["amount"] == "0.0001"
    page = client.get(f"/keys/{key.pk}/").content.decode()
    assert 'data-testid="budget"><strong>$0.0001</strong>' in page
    assert 'value="0.0001"' in page  # the form shows what was typed, not 0.00010000


def test_workspace_budget_takes_sub_cent_amounts_through_the_api(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, workspace, _ = _owner_client(make_user, make_workspace)
    _, token = admin_token_create(workspace=workspace, name="ci", created_by=owner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.patch("/api/workspace/", {"budget_amount": "0.00025"}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert Decimal(response.json()["budget_amount"]) == Decimal("0.00025")
    workspace.refresh_from_db()
    assert workspace.budget_amount == Decimal("0.00025")


DEPLOYMENT = deployment_make(input_price_per_mtok=0.5, output_price_per_mtok=1.5)


def test_budget_refusal_names_sub_cent_amounts():  # type: ignore[no-untyped-def]
    unique = 10**6 + uuid.uuid4().int % 10**6
    key = KeyRecord(
        key_hash="h",
        workspace_id=unique,
        schema="ws_unit",
        slug="unit",
        key_id=unique,
        key_name="unit",
        revoked=False,
        policy=KeyPolicy(key=LimitScope(budget=BudgetPolicy(amount=Decimal("0.00001"), period="lifetime"))),
    )

    async def run() -> GatewayError:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            with pytest.raises(GatewayError) as err:  # up to 10 x $0.5 + 20 x $1.5 per million tokens: $0.000035
                await limits.limits_reserve(client, key, DEPLOYMENT, {}, prompt_tokens=10, max_output_tokens=20)
            return err.value
        finally:
            await client.aclose()

    error = asyncio.run(run())
    assert error.code == "budget_exceeded"
    assert "budget of $0.00001 " in error.message and "could cost up to $0.000035" in error.message
    assert "spent $0.00;" in error.message  # nothing spent yet reads as zero, correctly


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_budget_alert_email_shows_sub_cent_budget_and_spend(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, workspace, _ = _owner_client(make_user, make_workspace)
    key, _ = api_key_create(workspace=workspace, name="tiny")
    key.budget_amount = Decimal("0.0002")
    mail.outbox.clear()
    budget_alert_send(
        workspace=workspace,
        scope="key 'tiny'",
        owner=key,
        threshold=50,
        spent=Decimal("0.00012345"),
        reset_at=None,
        key_id=key.pk,
    )
    body = mail.outbox[0].body
    assert "Budget:          $0.0002 (" in body and "Spent so far:    $0.00012\n" in body


def test_usage_pages_show_tiny_costs_and_savings(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, workspace, client = _owner_client(make_user, make_workspace)
    now = datetime.now(UTC)
    with schema_context(workspace.schema_name):
        UsageEvent.objects.bulk_create(
            [
                UsageEvent(
                    event_id=uuid.uuid4().hex,
                    created_at=now,
                    key_id=1,
                    endpoint="chat.completions",
                    model="fake-openai",
                    cost=Decimal("0.00000034"),
                    status_code=200,
                ),
                UsageEvent(
                    event_id=uuid.uuid4().hex,
                    created_at=now,
                    key_id=1,
                    endpoint="chat.completions",
                    model="fake-openai",
                    cost=Decimal("0"),
                    cost_saved=Decimal("0.00000012"),
                    status_code=200,
                    cache_status="hit-exact",
                ),
            ]
        )
    usage = client.get("/usage/").content.decode()
    dashboard = client.get("/").content.decode()
    assert "$0.00000034" in usage and "$0.00000012" in usage
    assert "$0.00000034" in dashboard
    for page in (usage, dashboard):
        shown = AMOUNT.findall(page)
        assert shown and all(s == "$0.00" or _value(s) > 0 for s in shown)
        assert "$0.0000<" not in page and "$0.000000<" not in page
