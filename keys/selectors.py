"""Reads about keys that need more than a one-line query: spend per period and per day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from gateway.limits import _period
from tenants.models import Workspace

from .models import ApiKey


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    """When the current budget period began (UTC); None for a lifetime budget."""
    now = now or datetime.now(UTC)
    key, reset = _period(period, now)
    if reset is None:
        return None
    if period == "daily":
        return reset - timedelta(days=1)
    if period == "weekly":
        return reset - timedelta(days=7)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_spend_this_period(*, workspace: Workspace, key: ApiKey) -> Decimal:
    start = period_start(key.budget_period)
    with schema_context(workspace.schema_name):
        events = UsageEvent.objects.filter(key_id=key.pk)
        if start is not None:
            events = events.filter(created_at__gte=start)
        return events.aggregate(total=Sum("cost"))["total"] or Decimal("0")


def key_spend_by_day(*, workspace: Workspace, key: ApiKey, days: int = 30) -> list[dict[str, object]]:
    """One row per day for the last `days` days (days without requests included, at zero)."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    with schema_context(workspace.schema_name):
        rows = (
            UsageEvent.objects.filter(key_id=key.pk, created_at__date__gte=first)
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values("day")
            .annotate(cost=Sum("cost"), requests=Count("id"))
        )
        by_day: dict[date, dict[str, object]] = {row["day"]: row for row in rows}
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day, {})
        out.append({"day": day, "cost": row.get("cost") or Decimal("0"), "requests": row.get("requests") or 0})
    return out
