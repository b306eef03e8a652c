"""Management API for API keys (DRF). Serializers translate; services do the work."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api_schema import ManagementApiView, NameField, PolicySerializer
from tenants.models import AdminToken

from .models import MODEL_NAME_LENGTH_MAX, MODEL_NAMES_MAX, ApiKey
from .selectors import KeyAction, api_key_denial, key_actor
from .services import (
    api_key_create,
    api_key_get,
    api_key_policy_update,
    api_key_rename,
    api_key_revoke,
    api_keys_list,
    model_names_clean,
)

POLICY_FIELDS = ["rpm_limit", "tpm_limit", "budget_amount", "budget_period", "budget_hard", "budget_alert_thresholds"]
# a key's response cache overrides; null: as the workspace
CACHE_FIELDS = ["cache_enabled", "cache_semantic", "cache_semantic_threshold", "cache_ttl_seconds"]


def thresholds_validate(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in value):
        raise serializers.ValidationError("A list of whole percentages from 1 to 1000, e.g. [50, 80, 100].")
    return sorted(set(value))


class ModelNamesField(serializers.JSONField):
    """The model names a key may call, [] for every model the workspace can use (checked against the
    workspace's catalog by the serializer: a JSON type alone cannot say which names exist)."""


class ModelNamesFieldScheme(OpenApiSerializerFieldExtension):
    target_class = ModelNamesField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": MODEL_NAME_LENGTH_MAX},
            "maxItems": MODEL_NAMES_MAX,
            "description": "The model names (as clients send them) this key may call; [] for every model the "
            "workspace can use. Each must be offered to the workspace (or already be on the key); a model "
            "renamed or deleted later no longer matches. Answered sorted, without repeats.",
        }


def _model_names_check(serializer: serializers.Serializer, value: object) -> list[str]:
    """The serializer's model list checked against its workspace (context["workspace"]); names the
    key already has are kept even when no longer offered."""
    key = serializer.instance if isinstance(serializer.instance, ApiKey) else None
    return model_names_clean(workspace=serializer.context["workspace"], names=value,
                             kept=key.allowed_models if key is not None else ())


class ApiKeySerializer(PolicySerializer):
    revoked = serializers.SerializerMethodField()
    allowed_models = ModelNamesField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "revoked", *POLICY_FIELDS,
                  *CACHE_FIELDS, "allowed_models"]
        read_only_fields = fields

    def get_revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None


class ApiKeyCreateSerializer(serializers.Serializer):
    name = NameField()
    allowed_models = ModelNamesField(required=False)

    def validate_allowed_models(self, value: object) -> list[str]:
        return _model_names_check(self, value)


class ApiKeyUpdateSerializer(PolicySerializer):
    """Rename a key, set its limits and budget, its response cache overrides and its models (send
    only what changes; null clears a limit, or makes a cache setting the workspace's again; [] lets
    the key call every model)."""

    name = NameField(required=False)
    allowed_models = ModelNamesField(required=False)

    class Meta:
        model = ApiKey
        fields = ["name", *POLICY_FIELDS, *CACHE_FIELDS, "allowed_models"]

    def validate_budget_alert_thresholds(self, value: object) -> list[int]:
        return thresholds_validate(value)

    def validate_allowed_models(self, value: object) -> list[str]:
        return _model_names_check(self, value)


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
        workspace = request._request.workspace
        data = ApiKeyCreateSerializer(data=request.data, context={"workspace": workspace})
        data.is_valid(raise_exception=True)
        key, secret = api_key_create(
            workspace=workspace, name=data.validated_data["name"], created_by_id=_created_by(request),
            allowed_models=data.validated_data.get("allowed_models"),
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
                   summary="Rename an API key or set its limits, budget, cache settings and models")
    def patch(self, request: Request, key_id: int) -> Response:
        key = self._key(request, key_id)
        workspace = request._request.workspace
        data = ApiKeyUpdateSerializer(key, data=request.data, partial=True, context={"workspace": workspace})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
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
