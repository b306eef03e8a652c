from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """The proxy (an ASGI app in front of Django) and the provider/model catalog it
    routes to. Catalog models live in the public schema."""

    name = "gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401
