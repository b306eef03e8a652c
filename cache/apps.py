from django.apps import AppConfig


class CacheConfig(AppConfig):
    """The response cache's stored side: semantic cache entries (pgvector, HNSW) and the
    services that size, evict and clear both caches. Tenant schema, so one workspace's
    entries can never be found by another's lookup. The lookup itself is on the gateway's
    hot path (gateway/hotpath/semantic.py, gateway/hotpath/response_cache.py)."""

    name = "cache"
    verbose_name = "Response cache"
    default_auto_field = "django.db.models.BigAutoField"
