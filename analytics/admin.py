"""Staff see the usage events that could not be stored (how many, the latest with their
errors), read from the dead-letter stream: the admin's model list links to it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from gateway.hotpath.redis_keys import USAGE_DEAD_STREAM

from .models import UsageDeadLetter
from .tasks import usage_dead_letters

LATEST = 50


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        count, latest = usage_dead_letters(count=LATEST)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage dead letters",
            "count": count,
            "latest": latest,
            "stream": USAGE_DEAD_STREAM,
        }
        return TemplateResponse(request, "admin/analytics/usage_dead_letters.html", context)
