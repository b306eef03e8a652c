"""Clearing and evicting a workspace's response cache: the exact entries in Redis (with
their index and size accounting, written by gateway/hotpath/response_cache.py) and the semantic entries
in the workspace's own table. Off the hot path: run by the settings page, the management
API and the periodic eviction task. Work is done in bounded batches so neither Redis nor
PostgreSQL is held for long on a large cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import redis
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import exact_entry_pattern, exact_index_key, exact_sizes_key
from tenants.models import Workspace

from .models import SemanticEntry
from .selectors import exact_cache_bytes

BATCH = 500
MB = 1024 * 1024


def cache_clear(*, workspace: Workspace) -> dict[str, int]:
    """Delete every cached answer of the workspace, exact and semantic; other workspaces'
    entries are untouched. Returns how many entries went."""
    client = redis_sync()
    schema = workspace.schema_name
    exact = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=exact_entry_pattern(schema), count=BATCH):
        batch.append(key)
        if len(batch) >= BATCH:
            exact += int(client.unlink(*batch))
            batch = []
    if batch:
        exact += int(client.unlink(*batch))
    # after the entries: an answer stored meanwhile keeps its entry until its TTL, unaccounted
    client.unlink(exact_index_key(schema), exact_sizes_key(schema))
    semantic = 0
    with schema_context(schema):
        while True:
            ids = list(SemanticEntry.objects.values_list("id", flat=True)[:BATCH * 4])
            if not ids:
                break
            semantic += SemanticEntry.objects.filter(id__in=ids).delete()[0]
    return {"exact_entries": exact, "semantic_entries": semantic}


def cache_evict(*, workspace: Workspace, now: datetime | None = None) -> dict[str, int]:
    """Drop expired entries, then keep each cache (exact and semantic, separately) under the
    workspace's size cap: exact entries that would expire first go first, semantic entries
    least recently used (last hit, else stored) first."""
    now = now or datetime.now(UTC)
    cap = workspace.cache_max_mb * MB
    client = redis_sync()
    exact_expired = _exact_expired_drop(client, workspace.schema_name, now)
    exact_evicted = _exact_cap_enforce(client, workspace.schema_name, cap)
    with schema_context(workspace.schema_name):
        semantic_expired = _semantic_expired_drop(now)
        semantic_evicted = _semantic_cap_enforce(cap)
    return {"exact_expired": exact_expired, "exact_evicted": exact_evicted,
            "semantic_expired": semantic_expired, "semantic_evicted": semantic_evicted}


def _exact_remove(client: redis.Redis, schema: str, keys: list[bytes]) -> None:
    """Remove entries with their index and size records, in one transaction."""
    pipe = client.pipeline(transaction=True)
    pipe.unlink(*keys)
    pipe.zrem(exact_index_key(schema), *keys)
    pipe.hdel(exact_sizes_key(schema), *keys)
    pipe.execute()


def _exact_expired_drop(client: redis.Redis, schema: str, now: datetime) -> int:
    """Index and size records of entries Redis has expired (and the entries, should any
    still be there)."""
    dropped = 0
    while True:
        keys = cast(list[bytes], client.zrangebyscore(exact_index_key(schema), "-inf", now.timestamp(), start=0,
                                                      num=BATCH))
        if not keys:
            return dropped
        _exact_remove(client, schema, keys)
        dropped += len(keys)


def _exact_cap_enforce(client: redis.Redis, schema: str, cap: int) -> int:
    excess = exact_cache_bytes(schema=schema) - cap
    evicted = 0
    while excess > 0:
        keys = cast(list[bytes], client.zrange(exact_index_key(schema), 0, BATCH - 1))
        if not keys:
            break
        sizes = cast(list[bytes | None], client.hmget(exact_sizes_key(schema), keys))
        chosen: list[bytes] = []
        for key, size in zip(keys, sizes, strict=True):
            if excess <= 0:
                break
            chosen.append(key)
            excess -= int(size or 0)
        _exact_remove(client, schema, chosen)
        evicted += len(chosen)
    return evicted


def _semantic_expired_drop(now: datetime) -> int:
    dropped = 0
    while True:
        ids = list(SemanticEntry.objects.filter(expires_at__lte=now).values_list("id", flat=True)[:BATCH])
        if not ids:
            return dropped
        dropped += SemanticEntry.objects.filter(id__in=ids).delete()[0]


def _semantic_cap_enforce(cap: int) -> int:
    excess = (SemanticEntry.objects.aggregate(total=Sum("size_bytes"))["total"] or 0) - cap
    evicted = 0
    while excess > 0:
        rows = list(
            SemanticEntry.objects.annotate(used_at=Coalesce("last_hit_at", "created_at"))
            .order_by("used_at", "id").values_list("id", "size_bytes")[:BATCH]
        )
        if not rows:
            break
        chosen: list[int] = []
        for entry_id, size in rows:
            if excess <= 0:
                break
            chosen.append(entry_id)
            excess -= size
        evicted += SemanticEntry.objects.filter(id__in=chosen).delete()[0]
    return evicted
