from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Usage events from the gateway's Redis stream, persisted in batches; usage views.
    Tenant schema."""

    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"
