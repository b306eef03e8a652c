from django.apps import AppConfig


class KeysConfig(AppConfig):
    """Virtual API keys: issue, hash, revoke, and publish them to the gateway's hot
    directory. Tenant schema (the public lookup row is tenants.KeyIndex)."""

    name = "keys"
    default_auto_field = "django.db.models.BigAutoField"
