"""Reads over usage events that need more than a one-line query."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django_tenants.utils import schema_context

from keys.models import ApiKey
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


HIT_EXACT, HIT_SEMANTIC = "hit-exact", "hit-semantic"


def _savings_row(row: dict[str, Any]) -> dict[str, Any]:
    requests = row["requests"] or 0
    exact, semantic = row["hits_exact"] or 0, row["hits_semantic"] or 0
    return {
        **row,
        "hits": exact + semantic,
        "hit_rate": (exact + semantic) / requests if requests else 0.0,
        "exact_rate": exact / requests if requests else 0.0,
        "semantic_rate": semantic / requests if requests else 0.0,
        "saved": row["saved"] or Decimal("0"),
    }


def cache_savings(*, workspace: Workspace, since: datetime | None, key_id: int | None = None) -> dict[str, Any]:
    """What the response cache did since `since`: requests, exact and semantic hits, hit
    rates (hits / requests, 0-1) and money saved (sum of cost_saved), in total, per key
    and per model (only the given key's requests when key_id is set)."""
    figures = {"requests": Count("id"), "hits_exact": Count("id", filter=Q(cache_status=HIT_EXACT)),
               "hits_semantic": Count("id", filter=Q(cache_status=HIT_SEMANTIC)), "saved": Sum("cost_saved")}
    with schema_context(workspace.schema_name):
        events: QuerySet[UsageEvent] = UsageEvent.objects.all()
        if since is not None:
            events = events.filter(created_at__gte=since)
        if key_id is not None:
            events = events.filter(key_id=key_id)
        total = _savings_row(events.aggregate(**figures))
        by_key = [_savings_row(row) for row in events.values("key_id").annotate(key_name=Max("key_name"), **figures)]
        names = dict(ApiKey.objects.filter(pk__in=[row["key_id"] for row in by_key]).values_list("id", "name"))
        by_model = [_savings_row(row) for row in events.values("model").annotate(**figures).order_by("-saved", "model")]
    for row in by_key:  # a renamed key: its current name
        row["key_name"] = names.get(row["key_id"], row["key_name"])
    by_key.sort(key=lambda row: (-row["saved"], row["key_name"]))
    return {"total": total, "by_key": by_key, "by_model": by_model}
