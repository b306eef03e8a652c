from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.decorators import workspace_required

from .models import UsageEvent


@login_required
@workspace_required
def usage_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(UsageEvent.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "analytics/usage.html", {"page": page})
