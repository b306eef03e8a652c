"""Abstract model fields for rate limits and budgets, shared by every scope that has
them: API keys (tenant schema), members and workspaces (public), models, providers and
the global limits (public). The gateway enforces them in one Redis round trip
(gateway/hotpath/limits.py); the owning apps publish them to the hot directory."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models

from billing.money import usd_plain

DEFAULT_ALERT_THRESHOLDS = [50, 80, 100]


def default_alert_thresholds() -> list[int]:
    return list(DEFAULT_ALERT_THRESHOLDS)


class RateLimits(models.Model):
    rpm_limit = models.PositiveIntegerField("requests per minute", null=True, blank=True, help_text="Empty: no limit.")
    tpm_limit = models.PositiveIntegerField("tokens per minute", null=True, blank=True, help_text="Empty: no limit.")

    class Meta:
        abstract = True

    def rate_limits(self) -> dict[str, int]:
        out = {}
        if self.rpm_limit:
            out["rpm"] = self.rpm_limit
        if self.tpm_limit:
            out["tpm"] = self.tpm_limit
        return out


class Budget(models.Model):
    class Period(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        LIFETIME = "lifetime", "Lifetime"

    budget_amount = models.DecimalField(
        "budget (USD)", max_digits=18, decimal_places=8, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0"))], help_text="Empty: no budget. Down to $0.00000001.",
    )
    budget_period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTHLY)
    budget_hard = models.BooleanField(
        "hard limit", default=True, help_text="Refuse requests that could pass the budget (otherwise only alert)."
    )
    budget_alert_thresholds = models.JSONField(
        default=default_alert_thresholds, blank=True, help_text="Percentages of the budget that send an alert email."
    )

    class Meta:
        abstract = True

    def budget_policy(self) -> dict[str, object] | None:
        if self.budget_amount is None:
            return None
        return {
            "amount": usd_plain(Decimal(self.budget_amount)),
            "period": self.budget_period,
            "hard": self.budget_hard,
            "thresholds": list(self.budget_alert_thresholds or []),
        }


class SpendPolicy(RateLimits, Budget):
    """Rate limits and a budget (keys and workspaces)."""

    class Meta:
        abstract = True
