"""Budget alert emails: one per threshold per period, to owners, admins and extra
recipients, never duplicated by several workers; through Django's locmem backend and a
real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from django.core import mail
from django.test import override_settings

from analytics.alerts import budget_alerts_check
from gateway.catalog.publish import redis_sync
from gateway.hotpath.limits import _period
from gateway.hotpath.redis_keys import budget_key
from keys.services import api_key_create, api_key_policy_update
from tenants.services import member_add, workspace_policy_update
from tests.e2e.sdk import HI, PRICEY, events_of, openai_client
from tests.servers import free_port


def _spend(ident: str, period: str, usd: str) -> None:
    from datetime import UTC, datetime

    period_key, _ = _period(period, datetime.now(UTC))
    redis_sync().hset(budget_key(ident, period_key), "spent", int(Decimal(usd) * 10**8))


def test_crossing_thresholds_through_the_gateway_sends_one_email_each(gateway_url, make_user, make_workspace, pricey_model):  # type: ignore[no-untyped-def]
    owner, admin, member = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=admin, role="admin")
    member_add(workspace=workspace, user=member, role="member")
    workspace_policy_update(workspace=workspace, budget_alert_recipients="finance@example.com")
    key, secret = api_key_create(workspace=workspace, name="batch job")
    api_key_policy_update(workspace=workspace, key=key, budget_amount=Decimal("0.04"), budget_period="monthly",
                          budget_hard=False, budget_alert_thresholds=[25, 50, 100])
    time.sleep(0.6)
    mail.outbox.clear()
    client = openai_client(gateway_url, secret)
    client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=30)  # $0.016 of $0.04: 40%
    events_of(workspace)  # the worker's flush: persists, then checks budgets
    assert [m.subject for m in mail.outbox] == [
        f"[AIProxy] {workspace.name}: key “batch job” reached 25% of its monthly budget"]
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([owner.email, admin.email, "finance@example.com"])
    assert "$0.04" in message.body and "Spent so far:    $0.016\n" in message.body and "/usage/" in message.body
    client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=30)  # $0.032: 80%
    client.chat.completions.create(model=PRICEY, messages=HI, max_tokens=30)  # $0.048: 120% (soft budget)
    events_of(workspace)
    events_of(workspace)
    subjects = [m.subject for m in mail.outbox]
    assert [s.split(" reached ")[1].split("%")[0] for s in subjects] == ["25", "50", "100"]


def test_several_workers_send_each_alert_once(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace(owner=make_user())
    workspace_policy_update(workspace=workspace, budget_amount=Decimal("10.00"), budget_period="daily")
    _spend(f"ws:{workspace.pk}", "daily", "8.50")
    mail.outbox.clear()
    threads = [threading.Thread(target=budget_alerts_check, kwargs={"schema": workspace.schema_name, "key_ids": set()})
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(m.subject.split(" reached ")[1][:3] for m in mail.outbox) == ["50%", "80%"]
    budget_alerts_check(schema=workspace.schema_name, key_ids=set())
    assert len(mail.outbox) == 2


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    received = []

    class Collect(Message):
        def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
            received.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, received
    controller.stop()


def test_alert_goes_out_through_a_real_smtp_server(make_user, make_workspace, smtp_server):  # type: ignore[no-untyped-def]
    controller, received = smtp_server
    owner = make_user()
    workspace = make_workspace(owner=owner)
    workspace_policy_update(workspace=workspace, budget_amount=Decimal("2.00"), budget_period="weekly",
                            budget_alert_thresholds=[100])
    _spend(f"ws:{workspace.pk}", "weekly", "2.10")
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=controller.port, EMAIL_USE_TLS=False, EMAIL_USE_SSL=False):
        assert budget_alerts_check(schema=workspace.schema_name, key_ids=set()) == 1
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    (message,) = received
    assert message["To"] == owner.email and "reached 100% of its weekly budget" in message["Subject"]
    body = message.get_payload(decode=True).decode()
    assert "Spent so far:    $2.10" in body and "hard limit" in body
