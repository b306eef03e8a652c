"""`{{ amount|usd }}`: billing.money.usd_format in templates."""

from __future__ import annotations

from typing import Any

from django import template

from billing.money import usd_format

register = template.Library()


@register.filter
def usd(amount: Any) -> str:
    return usd_format(amount if amount not in (None, "") else 0)
