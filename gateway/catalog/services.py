"""Writes to the catalog that scripts, the demo and tests share (staff use Django admin)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from .models import Deployment, Model, Provider


def model_group_create(
    *,
    public_name: str,
    provider: Provider,
    upstream_name: str,
    input_price_per_mtok: Decimal | str = "0",
    output_price_per_mtok: Decimal | str = "0",
    **group_fields: Any,
) -> Model:
    """A group served by one deployment (named after its provider): what a model was before
    groups, and still the common case. `group_fields` are the group's own (context_window,
    rpm_limit, strategy, ...)."""
    with transaction.atomic():
        group = Model.objects.create(public_name=public_name, **group_fields)
        Deployment.objects.create(group=group, provider=provider, upstream_name=upstream_name,
                                  input_price_per_mtok=input_price_per_mtok, output_price_per_mtok=output_price_per_mtok)
    return group
