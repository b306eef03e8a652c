from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """The Django side of the gateway: the provider and model catalog (public schema),
    its admin, the signals that republish it to the hot directory, and the demo data.
    The per-request code is gateway.hotpath; nothing here runs per request."""

    name = "gateway.catalog"
    label = "gateway"  # the tables, migrations and admin URLs keep the app's first name
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401
