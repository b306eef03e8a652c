from __future__ import annotations

from django.db import models


class Plan(models.Model):
    """A subscription plan; `monthly_request_quota` is enforced by the gateway's limits step."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    monthly_request_quota = models.IntegerField(null=True, blank=True, help_text="Empty means unlimited.")
    stripe_price_id = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.name
