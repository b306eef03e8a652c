"""The management API's OpenAPI description beyond what drf-spectacular infers: how to authenticate,
the error answers every operation can give, and exact shapes for fields it would leave loose.
Generated clients and the schemathesis run in the suite (tests/e2e/test_api_schema.py) read it
as the contract, so it says what the server really sends."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import models
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction
from rest_framework import serializers
from rest_framework.views import APIView

from billing.money import usd_plain

from .api_parsers import StrictJSONParser

VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "Each refused field with its messages; `non_field_errors` for the body as a whole, "
    "or `detail` alone when the body is not JSON.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
WWW_AUTHENTICATE = {
    "description": "The scheme to authenticate with.",
    "schema": {"type": "string"},
    "required": True,
}


class AdminTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api_auth.AdminTokenAuthentication"
    name = "adminToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "aip-admin-...",
            "description": "A workspace admin token, created on the workspace's Admin tokens page.",
        }


class BudgetAmountField(serializers.DecimalField):
    """A budget in USD: a non-negative decimal string (numbers are accepted too), answered
    with every stored digit and no trailing zeros past the cents ("25.00", "0.0001")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        return usd_plain(Decimal(str(value)))


class BudgetAmountFieldScheme(OpenApiSerializerFieldExtension):
    target_class = BudgetAmountField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        field: BudgetAmountField = self.target
        whole = (field.max_digits or 12) - (field.decimal_places or 0)
        places = field.decimal_places or 0
        fraction = rf"(?:\.\d{{1,{places}}})?" if places else ""
        return {
            "type": "string",
            "format": "decimal",
            "pattern": rf"^\d{{1,{whole}}}{fraction}$",
            "example": "25.00" if places else "25",
        }


# a name: up to 100 characters, not only whitespace (DRF trims it), no NUL (PostgreSQL cannot store it)
NAME_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
_EMAIL = (r"[A-Za-z0-9_%+-]{1,32}(?:\.[A-Za-z0-9_%+-]{1,32}){0,2}"
          r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,20}")
# email addresses separated by commas or new lines
RECIPIENTS_PATTERN = rf"^(?:{_EMAIL}(?:(?:, ?|\n){_EMAIL}){{0,19}})?$"


class NameField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)


class NameFieldScheme(OpenApiSerializerFieldExtension):
    target_class = NameField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        field: NameField = self.target
        return {"type": "string", "minLength": 1, "maxLength": field.max_length, "pattern": NAME_PATTERN}


class RecipientsField(serializers.CharField):
    """Extra budget alert recipients: email addresses separated by commas or new lines."""


class RecipientsFieldScheme(OpenApiSerializerFieldExtension):
    target_class = RecipientsField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "description": "Email addresses, one a line (commas work too)."}
        if direction == "request":
            schema["pattern"] = RECIPIENTS_PATTERN
        return schema


class ThresholdsField(serializers.JSONField):
    """Alert thresholds: whole percentages of the budget (validated by the serializer)."""


class ThresholdsFieldScheme(OpenApiSerializerFieldExtension):
    target_class = ThresholdsField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        return {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 1000},
            "description": "Percentages of the budget that send an alert email, e.g. [50, 80, 100].",
        }


class ValidationErrorSerializer(serializers.Serializer):
    """Stands for DRF's validation error body in the schema."""


class ValidationErrorScheme(OpenApiSerializerExtension):
    target_class = ValidationErrorSerializer

    def get_name(self, auto_schema: AutoSchema, direction: str) -> str:
        return "ValidationError"

    def map_serializer(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        return VALIDATION_ERROR_SCHEMA


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")

    class Meta:
        ref_name = "Error"


class ManagementApiSchema(AutoSchema):
    """Adds the answers DRF gives before or around a view: 401 without valid credentials (with
    `WWW-Authenticate`), 403 when the caller may not do this, 404 for an unknown id, and 400/415 for
    a body it cannot accept."""

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors: dict[str, tuple[type[serializers.Serializer], str]] = {
            "401": (ErrorSerializer, "No credentials, or an invalid or revoked admin token."),
            "403": (
                ErrorSerializer,
                "The caller may not do this (a member for owner-only changes, or a session without a CSRF token).",
            ),
        }
        if re.search(r"\{\w+\}", self.path):
            errors["404"] = (ErrorSerializer, "No such object in this workspace.")
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            errors["400"] = (ValidationErrorSerializer, "The body was refused; the messages say why.")
            errors["415"] = (ErrorSerializer, "The body is not JSON.")
        for code, (serializer, description) in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(serializer, code, direction=direction)
                responses[code]["description"] = description
        if "401" in responses:
            responses["401"].setdefault("headers", {})["WWW-Authenticate"] = WWW_AUTHENTICATE
        return dict(sorted(responses.items()))


class PolicySerializer(serializers.ModelSerializer):
    """Model serializers of keys and workspaces: budgets and thresholds get their exact schema."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: BudgetAmountField,
        models.JSONField: ThresholdsField,
    }


class ManagementApiView(APIView):
    """Base of the management API's views: JSON bodies only (a form body cannot say `null`, which
    clears a limit), and the schema above."""

    parser_classes = [StrictJSONParser]
    schema = ManagementApiSchema()
