from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.decorators import workspace_required

from .models import UsageEvent
from .selectors import cache_savings

PERIODS = {1: "24 hours", 7: "7 days", 30: "30 days", 90: "90 days"}
DEFAULT_PERIOD = 30


@login_required
@workspace_required
def usage_list(request: HttpRequest) -> HttpResponse:
    """Requests and what the response cache saved, over the chosen period (?days=)."""
    days = int(request.GET["days"]) if request.GET.get("days") in {str(d) for d in PERIODS} else DEFAULT_PERIOD
    since = datetime.now(UTC) - timedelta(days=days)
    page = Paginator(UsageEvent.objects.filter(created_at__gte=since), 50).get_page(request.GET.get("page"))
    return render(request, "analytics/usage.html", {
        "page": page, "days": days, "periods": PERIODS, "period_label": PERIODS[days], "savings": cache_savings(workspace=request.workspace, since=since),
    })
