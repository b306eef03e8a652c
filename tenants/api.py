"""Management API for the current workspace's settings (limits, budget, alert recipients,
response cache, routing bounds) and for clearing its response cache."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import Plan
from cache.services import cache_clear
from keys.api import POLICY_FIELDS, thresholds_validate

from .api_auth import api_admin_required
from .api_schema import ErrorSerializer, ManagementApiView, PolicySerializer, RecipientsField
from .models import Workspace
from .services import workspace_policy_update

SETTINGS_FIELDS = [
    *POLICY_FIELDS,
    "budget_alert_recipients",
    "limits_fail_open",
    "cache_enabled",
    "cache_ttl_seconds",
    "cache_scope",
    "cache_nondeterministic",
    "cache_semantic",
    "cache_semantic_threshold",
    "cache_max_mb",
    "routing_max_attempts",
    "routing_overrides",
]
FREE_PLAN_CODE = "free"


class WorkspaceSettingsSerializer(PolicySerializer):
    plan = serializers.SerializerMethodField(help_text="The plan's code; `free` when the workspace has no paid plan.")
    plan_name = serializers.SerializerMethodField(help_text="The plan's name, as the web UI shows it.")

    class Meta:
        model = Workspace
        fields = ["name", "slug", "plan", "plan_name", *SETTINGS_FIELDS]
        read_only_fields = fields

    def _plan(self, workspace: Workspace) -> Plan | None:
        return workspace.plan or Plan.objects.filter(code=FREE_PLAN_CODE).first()

    def get_plan(self, workspace: Workspace) -> str:
        plan = self._plan(workspace)
        return plan.code if plan is not None else FREE_PLAN_CODE

    def get_plan_name(self, workspace: Workspace) -> str:
        plan = self._plan(workspace)
        return plan.name if plan is not None else "Free"


class WorkspaceSettingsUpdateSerializer(PolicySerializer):
    """The workspace's limits, budget, alert recipients, response cache and routing bounds (send only what changes)."""

    budget_alert_recipients = RecipientsField(allow_blank=True, required=False)

    class Meta:
        model = Workspace
        fields = SETTINGS_FIELDS
        extra_kwargs = {"cache_ttl_seconds": {"min_value": 1, "max_value": 30 * 86400}}

    def validate_budget_alert_thresholds(self, value: object) -> list[int]:
        return thresholds_validate(value)

    def validate_budget_alert_recipients(self, value: str) -> str:
        from django.core.validators import validate_email

        emails = [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]
        for email in emails:
            try:
                validate_email(email)
            except Exception as exc:
                raise serializers.ValidationError(f"'{email}' is not an email address.") from exc
        return "\n".join(emails)


class CacheClearedSerializer(serializers.Serializer):
    exact_entries = serializers.IntegerField(help_text="Exact-cache entries deleted.")
    semantic_entries = serializers.IntegerField(help_text="Semantic-cache entries deleted.")


class WorkspaceSettingsView(ManagementApiView):
    @extend_schema(
        responses=WorkspaceSettingsSerializer, summary="The workspace's limits, budget, alert, cache and routing settings"
    )
    def get(self, request: Request) -> Response:
        return Response(WorkspaceSettingsSerializer(request._request.workspace).data)

    @extend_schema(
        request=WorkspaceSettingsUpdateSerializer,
        responses=WorkspaceSettingsSerializer,
        summary="Set the workspace's limits, budget, alert, cache and routing settings (owners and admins)",
    )
    def patch(self, request: Request) -> Response:
        api_admin_required(request, "Only the workspace's owners and admins can change its settings.")
        data = WorkspaceSettingsUpdateSerializer(request._request.workspace, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        workspace = workspace_policy_update(workspace=request._request.workspace, **data.validated_data)
        return Response(WorkspaceSettingsSerializer(workspace).data)


class WorkspaceCacheClearView(ManagementApiView):
    @extend_schema(
        request=None,
        summary="Delete every cached answer of the workspace, exact and semantic (owners and admins)",
        responses={
            200: CacheClearedSerializer,
            503: OpenApiResponse(ErrorSerializer, description="The cache store is unavailable."),
        },
    )
    def post(self, request: Request) -> Response:
        api_admin_required(request, "Only the workspace's owners and admins can clear its cache.")
        try:
            cleared = cache_clear(workspace=request._request.workspace)
        except RedisError:
            return Response(
                {"detail": "The cache store is unavailable; nothing was cleared. Try again shortly."}, status=503
            )
        return Response(CacheClearedSerializer(cleared).data)
