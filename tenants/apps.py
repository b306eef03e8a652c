from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Workspaces (tenants), their domains, members and roles, admin tokens, and the
    index that finds a key's workspace. Public schema."""

    name = "tenants"
    default_auto_field = "django.db.models.BigAutoField"
