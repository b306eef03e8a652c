"""Reads about a workspace's response cache: how many answers it holds and their size."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import redis
from django.db.models import Count, Sum
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import exact_index_key, exact_sizes_key
from tenants.models import Workspace

from .models import SemanticEntry

SCAN_COUNT = 500


def exact_cache_bytes(*, schema: str) -> int:
    """Bytes of every exact entry the size hash accounts for (read with HSCAN, a slice at a time)."""
    return sum(int(size) for _, size in redis_sync().hscan_iter(exact_sizes_key(schema), count=SCAN_COUNT))


def cache_summary(*, workspace: Workspace, now: datetime | None = None) -> dict[str, int | None]:
    """Live entries and their bytes in each cache (entries expired since the last eviction
    run are not counted). The exact figures are None while Redis is unavailable."""
    now = now or datetime.now(UTC)
    schema = workspace.schema_name
    with schema_context(schema):
        semantic = SemanticEntry.objects.filter(expires_at__gt=now).aggregate(entries=Count("id"), size=Sum("size_bytes"))
    summary: dict[str, int | None] = {"exact_entries": None, "exact_bytes": None,
                                      "semantic_entries": semantic["entries"] or 0, "semantic_bytes": semantic["size"] or 0}
    client = redis_sync()
    try:
        expired = cast(list[bytes], client.zrangebyscore(exact_index_key(schema), "-inf", now.timestamp()))
        sizes = cast(list[bytes | None], client.hmget(exact_sizes_key(schema), expired)) if expired else []
        summary["exact_bytes"] = max(exact_cache_bytes(schema=schema) - sum(int(size or 0) for size in sizes), 0)
        summary["exact_entries"] = int(client.zcount(exact_index_key(schema), f"({now.timestamp()}", "+inf"))
    except redis.RedisError:
        pass
    return summary
