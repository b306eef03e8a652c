"""Management API for API keys (DRF). Serializers translate; services do the work."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api_schema import ManagementApiView, NameField, PolicySerializer
from tenants.models import AdminToken

from .models import ApiKey
from .selectors import KeyAction, api_key_denial, key_actor
from .services import (
    api_key_create,
    api_key_get,
    api_key_policy_update,
    api_key_rename,
    api_key_revoke,
    api_keys_list,
)

POLICY_FIELDS = ["rpm_limit", "tpm_limit", "budget_amount", "budget_period", "budget_hard", "budget_alert_thresholds"]
# a key's response cache overrides; null: as the workspace
CACHE_FIELDS = ["cache_enabled", "cache_semantic", "cache_semantic_threshold", "cache_ttl_seconds"]


def thresholds_validate(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in value):
        raise serializers.ValidationError("A list of whole percentages from 1 to 1000, e.g. [50, 80, 100].")
    return sorted(set(value))


class ApiKeySerializer(PolicySerializer):
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "revoked", *POLICY_FIELDS,
                  *CACHE_FIELDS]
        read_only_fields = fields

    def get_revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None


class ApiKeyCreateSerializer(serializers.Serializer):
    name = NameField()


class ApiKeyUpdateSerializer(PolicySerializer):
    """Rename a key, set its limits and budget, and its response cache overrides (send only
    what changes; null clears a limit, or makes a cache setting the workspace's again)."""

    name = NameField(required=False)

    class Meta:
        model = ApiKey
        fields = ["name", *POLICY_FIELDS, *CACHE_FIELDS]

    def validate_budget_alert_thresholds(self, value: object) -> list[int]:
        return thresholds_validate(value)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The secret key. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = ApiKeySerializer.Meta.fields + ["key"]
        read_only_fields = fields


def _created_by(request: Request) -> int | None:
    return request.user.pk if request.user.is_authenticated else None


def _permission_check(request: Request, key: ApiKey, action: KeyAction) -> None:
    token = request.auth if isinstance(request.auth, AdminToken) else None
    actor = key_actor(membership=getattr(request._request, "membership", None), admin_token=token)
    if denial := api_key_denial(actor=actor, key=key, action=action):
        raise exceptions.PermissionDenied(denial)


class ApiKeyListView(ManagementApiView):
    @extend_schema(responses=ApiKeySerializer(many=True), summary="List the workspace's API keys")
    def get(self, request: Request) -> Response:
        keys = api_keys_list(workspace=request._request.workspace)
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer}, summary="Create an API key")
    def post(self, request: Request) -> Response:
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_key_create(
            workspace=request._request.workspace, name=data.validated_data["name"], created_by_id=_created_by(request)
        )
        key.key = secret  # type: ignore[attr-defined]
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(ManagementApiView):
    def _key(self, request: Request, key_id: int) -> ApiKey:
        from django.http import Http404

        key = api_key_get(workspace=request._request.workspace, key_id=key_id)
        if key is None:
            raise Http404
        return key

    @extend_schema(responses=ApiKeySerializer, summary="Get an API key")
    def get(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeySerializer(self._key(request, key_id)).data)

    @extend_schema(request=ApiKeyUpdateSerializer, responses=ApiKeySerializer,
                   summary="Rename an API key or set its limits, budget and cache settings")
    def patch(self, request: Request, key_id: int) -> Response:
        key = self._key(request, key_id)
        data = ApiKeyUpdateSerializer(key, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        workspace = request._request.workspace
        if set(fields) - {"name"}:
            _permission_check(request, key, "policy")
        if "name" in fields:
            _permission_check(request, key, "rename")
            key = api_key_rename(workspace=workspace, key=key, name=fields.pop("name"))
        if fields:
            key = api_key_policy_update(workspace=workspace, key=key, **fields)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(responses={200: ApiKeySerializer}, summary="Revoke an API key",
                   description="The gateway refuses the key from now on. The key stays listed, with `revoked_at` "
                   "set, and revoking it again changes nothing.")
    def delete(self, request: Request, key_id: int) -> Response:
        key = self._key(request, key_id)
        _permission_check(request, key, "revoke")
        key = api_key_revoke(workspace=request._request.workspace, key=key)
        return Response(ApiKeySerializer(key).data)
