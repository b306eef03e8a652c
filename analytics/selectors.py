"""Reads over usage events that need more than a one-line query."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django_tenants.utils import schema_context

from tenants.models import Workspace

from .models import UsageEvent


def spend_by_key_and_model(*, workspace: Workspace, since: datetime | None) -> list[dict[str, Any]]:
    """Cost, requests and tokens per (key, model) since `since` (all time when None)."""
    with schema_context(workspace.schema_name):
        events = UsageEvent.objects.all()
        if since is not None:
            events = events.filter(created_at__gte=since)
        rows = (
            events.values("key_id", "key_name", "model")
            .annotate(cost=Sum("cost"), requests=Count("id"), input_tokens=Sum("input_tokens"),
                      output_tokens=Sum("output_tokens"))
            .order_by("key_name", "model")
        )
        return [{**row, "cost": row["cost"] or Decimal("0")} for row in rows]
