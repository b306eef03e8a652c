"""spend_report prints spend per key and model for the period, matching the database."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from keys.services import api_key_create
from tenants.services import workspace_policy_update


def test_spend_report_matches_the_database_to_the_cent(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    key_a, _ = api_key_create(workspace=workspace, name="alpha")
    key_b, _ = api_key_create(workspace=workspace, name="beta")
    workspace_policy_update(workspace=workspace, budget_amount=Decimal("10.00"), budget_period="monthly")
    now = datetime.now(UTC)
    old = now.replace(day=1) - timedelta(days=2)  # last month: outside the period
    rows = [(key_a, "m1", "0.12345678", now), (key_a, "m1", "0.00000001", now), (key_a, "m2", "1.5", now),
            (key_b, "m1", "2.25", now), (key_b, "m1", "99", old)]
    with schema_context(workspace.schema_name):
        UsageEvent.objects.bulk_create([
            UsageEvent(event_id=uuid.uuid4().hex, created_at=when, key_id=key.pk, key_name=key.name, endpoint="chat.completions",
                       model=model, cost=Decimal(cost), status_code=200, input_tokens=10, output_tokens=5)
            for key, model, cost, when in rows])
        in_period = UsageEvent.objects.filter(created_at__gte=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        expected = in_period.aggregate(total=Sum("cost"))["total"]
    out = io.StringIO()
    call_command("spend_report", workspace=workspace.slug, stdout=out)
    text = out.getvalue()
    lines = {tuple(line.split()[:2]): line.split() for line in text.splitlines() if line.startswith(("alpha", "beta"))}
    assert lines[("alpha", "m1")][2:] == ["2", "20", "10", "0.12345679"]
    assert lines[("alpha", "m2")][-1] == "1.50000000" and lines[("beta", "m1")][-1] == "2.25000000"
    total_line = next(line for line in text.splitlines() if line.startswith("total"))
    assert total_line.split()[-1] == f"{expected:.8f}" == "3.87345679"
    assert "spent $3.87 (38.7%)" in text


def test_spend_report_unknown_workspace_is_a_clear_error():  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="No workspace with the slug 'nope'"):
        call_command("spend_report", workspace="nope")
