"""Budget alert emails: after usage events are persisted, the worker compares each
affected budget's spend (the gateway's Redis counters, the same figures it enforces)
with its alert thresholds. Each threshold alerts once per budget period: a Redis
SET NX marker decides which worker sends it, so several workers never send it twice.
If sending fails the marker is removed and the next flush tries again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.limits import _period, usd_units
from gateway.hotpath.redis_keys import budget_alert_marker, budget_key, key_ident, workspace_ident
from keys.models import ApiKey
from keys.selectors import period_start
from tenants.models import Membership, Workspace

logger = logging.getLogger("aiproxy.alerts")
MARKER_TTL_S = 400 * 86400  # longer than any period but lifetime, whose markers should stay


def alert_recipients(workspace: Workspace) -> list[str]:
    admins = Membership.objects.filter(workspace=workspace, role__in=["owner", "admin"]).select_related("user")
    emails = [m.user.email for m in admins if m.user.email]
    emails += [line.strip() for line in workspace.budget_alert_recipients.splitlines() if line.strip()]
    return list(dict.fromkeys(emails))


def _budgets(workspace: Workspace, key_ids: set[int]) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    with schema_context(workspace.schema_name):
        for key in ApiKey.objects.filter(pk__in=key_ids, budget_amount__isnull=False):
            out.append((f"key “{key.name}”", key_ident(workspace.schema_name, key.pk), key))
    if workspace.budget_amount is not None:
        out.append(("workspace", workspace_ident(workspace.pk), workspace))
    return out


def budget_alerts_check(*, schema: str, key_ids: set[int]) -> int:
    """Send the alerts whose thresholds the workspace's and these keys' budgets have crossed."""
    workspace = Workspace.objects.filter(schema_name=schema).first()
    if workspace is None:
        return 0
    client = redis_sync()
    now = datetime.now(UTC)
    sent = 0
    for label, ident, owner in _budgets(workspace, key_ids):
        period_key, reset_at = _period(owner.budget_period, now)
        spent = int(client.hget(budget_key(ident, period_key), "spent") or 0)  # type: ignore[arg-type]
        amount = usd_units(owner.budget_amount)
        for threshold in sorted(owner.budget_alert_thresholds or []):
            if spent * 100 < threshold * amount or spent == 0:
                continue
            marker = budget_alert_marker(ident, period_key, threshold)
            if not client.set(marker, now.isoformat(), nx=True, ex=MARKER_TTL_S):
                continue  # already sent (or being sent) by a worker
            try:
                budget_alert_send(workspace=workspace, scope=label, owner=owner, threshold=threshold,
                                  spent=Decimal(spent) / 10**8, reset_at=reset_at, key_id=owner.pk if isinstance(owner, ApiKey) else None)
                sent += 1
            except Exception:
                client.delete(marker)
                logger.exception("budget alert for %s in workspace %s could not be sent; will retry", label, workspace.slug)
    return sent


def budget_alert_send(*, workspace: Workspace, scope: str, owner: Any, threshold: int, spent: Decimal,
                      reset_at: datetime | None, key_id: int | None) -> None:
    recipients = alert_recipients(workspace)
    if not recipients:
        return
    context = {
        "workspace": workspace, "scope": scope, "threshold": threshold, "spent": spent, "amount": owner.budget_amount,
        "period": owner.budget_period, "period_start": period_start(owner.budget_period), "reset_at": reset_at,
        "hard": owner.budget_hard, "usage_url": f"{settings.SITE_URL.rstrip('/')}/usage/",
        "key_url": f"{settings.SITE_URL.rstrip('/')}/keys/{key_id}/" if key_id else None,
    }
    subject = f"[AIProxy] {workspace.name}: {scope} reached {threshold}% of its {owner.budget_period} budget"
    send_mail(subject, render_to_string("analytics/budget_alert.txt", context), None, recipients)
