from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Plans, Stripe subscriptions and metered usage, quotas. Public schema."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"
