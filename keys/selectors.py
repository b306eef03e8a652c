"""Reads about keys that need more than a one-line query: who may change a key, the models a key
may be limited to, spend per period and per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from gateway.hotpath.limits import _period
from tenants.models import AdminToken, Membership, Workspace

from .models import ApiKey

KeyAction = Literal["rename", "revoke", "policy"]


@dataclass(frozen=True)
class KeyActor:
    """Who acts on a workspace's keys: a member (their user id and whether they are an owner or
    admin) or a workspace admin token (an admin without a user)."""

    user_id: int | None
    is_admin: bool


def key_actor(*, membership: Membership | None, admin_token: AdminToken | None = None) -> KeyActor | None:
    """The actor behind a web session's membership or an admin token; None: neither.

    An admin token acts as a workspace admin: only owners and admins issue them, and demoting or
    removing the member who issued one revokes it (tenants.services)."""
    if admin_token is not None:
        return KeyActor(user_id=None, is_admin=True)
    if membership is not None:
        return KeyActor(user_id=membership.user_id, is_admin=membership.is_admin)
    return None


def api_key_denial(*, actor: KeyActor | None, key: ApiKey, action: KeyAction) -> str | None:
    """Why `actor` may not `action` the key; None when it may. The one place that decides it,
    for the web pages and the management API alike.

    Owners and admins manage every key. A member renames and revokes only the keys they
    created (keys without a recorded creator are the owners' and admins'); limits, budgets and
    cache settings are for owners and admins only."""
    if actor is None:
        return "Sign in and pick a workspace, or send a workspace admin token."
    if actor.is_admin:
        return None
    if action == "policy":
        return "Only the workspace's owners and admins can change a key's limits, budget or cache settings."
    if actor.user_id is None or key.created_by_id != actor.user_id:
        return f"Only the key's creator and the workspace's owners and admins can {action} this key."
    return None


def api_keys_manageable_ids(*, actor: KeyActor | None, keys: list[ApiKey]) -> set[int]:
    """The keys of `keys` that `actor` may rename and revoke (for showing the buttons)."""
    return {key.pk for key in keys if api_key_denial(actor=actor, key=key, action="revoke") is None}


def model_names_offered(*, workspace: Workspace) -> list[str]:
    """The model names a key of this workspace may be limited to, sorted: the enabled models offered
    to every workspace (no workspaces set) or to this one, the catalog's own visibility rule."""
    from gateway.catalog.models import Model

    offered = Model.objects.filter(enabled=True).filter(Q(workspaces=None) | Q(workspaces=workspace))
    return list(offered.order_by("public_name").values_list("public_name", flat=True).distinct())


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
