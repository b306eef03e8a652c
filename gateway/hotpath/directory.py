"""The hot directory: API key records and the model catalog, as the gateway reads them.

Django-side services write here (Redis) whenever a key or the catalog changes; the
gateway keeps a small in-process copy. Key records are re-read from Redis at most
every KEY_TTL seconds, so a revoked key stops working in every process within one
second, and a warm request costs no SQL query and (for the key) no Redis round trip.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async

from .bounds import DEFAULT_BOUNDS, RequestBounds
from .redis_keys import CATALOG_KEY, CATALOG_VERSION_KEY, key_record_key

KEY_TTL = 0.5
CATALOG_CHECK_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_hash: str
    workspace_id: int
    schema: str
    slug: str
    key_id: int
    key_name: str
    revoked: bool
    # limits and budgets of the key, its member and its workspace, and the plan's quota
    # (keys.services.key_policy): {"key": {...}, "user": {...}, "workspace": {...}}
    policy: Any = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model on one provider, as the router and adapters need it."""

    public_name: str
    upstream_name: str
    provider_name: str
    provider_kind: str
    base_url: str
    credential: str
    api_version: str
    input_price_per_mtok: float
    output_price_per_mtok: float
    context_window: int | None
    workspace_ids: frozenset[int]
    created: int
    model_limits: Any = None  # {"rpm": n, "tpm": n}, set in admin
    provider_limits: Any = None
    bounds: RequestBounds = DEFAULT_BOUNDS  # the largest sizes a request may ask for, set in admin

    def visible_to(self, workspace_id: int) -> bool:
        return not self.workspace_ids or workspace_id in self.workspace_ids


# --- writers (Django side, sync) -----------------------------------------------------

def key_record_write(record: KeyRecord) -> None:
    from ..catalog.publish import redis_sync

    payload = {
        "workspace_id": record.workspace_id,
        "schema": record.schema,
        "slug": record.slug,
        "key_id": record.key_id,
        "key_name": record.key_name,
        "revoked": record.revoked,
        "policy": record.policy,
    }
    redis_sync().set(key_record_key(record.key_hash), orjson.dumps(payload))


def key_record_load(key_hash: str) -> KeyRecord | None:
    """Rebuild a key's record from PostgreSQL (cold start, Redis lost) and publish it."""
    from django_tenants.utils import schema_context

    from keys.models import ApiKey
    from keys.services import key_record_build
    from tenants.models import KeyIndex

    entry = KeyIndex.objects.select_related("workspace").filter(key_hash=key_hash).first()
    if entry is None:
        return None
    with schema_context(entry.workspace.schema_name):
        key = ApiKey.objects.filter(pk=entry.key_id).first()
        if key is None:
            return None
        record = key_record_build(entry.workspace, key)
    try:
        key_record_write(record)
    except redis.RedisError:  # Redis down: serve from PostgreSQL; publishing waits for the next change
        pass
    return record


# --- reader (gateway side, async) ------------------------------------------------------

def _deployments_from_snapshot(snapshot: dict[str, Any]) -> dict[str, Deployment]:
    from .credentials import credential_decrypt

    result = {}
    for m in snapshot["models"]:
        result[m["public_name"]] = Deployment(
            public_name=m["public_name"],
            upstream_name=m["upstream_name"],
            provider_name=m["provider_name"],
            provider_kind=m["provider_kind"],
            base_url=m["base_url"].rstrip("/"),
            credential=credential_decrypt(m["credential_encrypted"]) if m["credential_encrypted"] else "",
            api_version=m["api_version"],
            input_price_per_mtok=float(m["input_price_per_mtok"]),
            output_price_per_mtok=float(m["output_price_per_mtok"]),
            context_window=m["context_window"],
            workspace_ids=frozenset(m["workspace_ids"]),
            created=m["created"],
            model_limits=m.get("model_limits") or {},
            provider_limits=m.get("provider_limits") or {},
            bounds=RequestBounds.from_snapshot(m.get("bounds")),
        )
    return result


class Directory:
    """Per-process view of key records and the catalog."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self._key_reads: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._catalog: dict[str, Deployment] | None = None
        self._catalog_version: Any = None  # the version as Redis returned it
        self._catalog_checked = 0.0
        self.global_limits: dict[str, int] = {}  # refreshed with the catalog

    async def key_lookup(self, key_hash: str) -> KeyRecord | None:
        cached = self._keys.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # one read per key however many requests find its record expired at once; shielded,
        # so a request that is cancelled does not cancel it for the others
        pending = self._key_reads.get(key_hash)
        if pending is None:
            pending = self._key_reads[key_hash] = asyncio.ensure_future(self._key_read(key_hash, cached))
            pending.add_done_callback(lambda done: self._key_reads.pop(key_hash, None)
                                      if self._key_reads.get(key_hash) is done else None)
        return await asyncio.shield(pending)

    async def _key_read(self, key_hash: str, cached: tuple[float, KeyRecord | None] | None) -> KeyRecord | None:
        record: KeyRecord | None
        try:
            raw = await self.redis.get(key_record_key(key_hash))
        except redis.RedisError:
            # Redis unavailable: keep serving what this process knew, else ask PostgreSQL
            if cached is not None:
                return cached[1]
            raw = None
        if raw is not None:
            data = orjson.loads(raw)
            record = KeyRecord(key_hash=key_hash, **data)
        else:
            record = await sync_to_async(key_record_load, thread_sensitive=False)(key_hash)
        if len(self._keys) > 100_000:
            self._keys.clear()
        self._keys[key_hash] = (time.monotonic() + KEY_TTL, record)
        return record

    async def catalog(self) -> dict[str, Deployment]:
        now = time.monotonic()
        if self._catalog is not None and now - self._catalog_checked < CATALOG_CHECK_INTERVAL:
            return self._catalog
        self._catalog_checked = now
        try:
            version = await self.redis.get(CATALOG_VERSION_KEY)
            if self._catalog is not None and version == self._catalog_version:
                return self._catalog
            raw = await self.redis.get(CATALOG_KEY)
            if raw is None:
                from ..catalog.publish import catalog_publish  # the Django side: a cold start only

                snapshot = await sync_to_async(catalog_publish, thread_sensitive=False)()
                version = await self.redis.get(CATALOG_VERSION_KEY)
            else:
                snapshot = orjson.loads(raw)
        except redis.RedisError:
            # Redis unavailable: the catalog this process has, else PostgreSQL's
            if self._catalog is not None:
                return self._catalog
            from ..catalog.publish import catalog_snapshot_build

            snapshot = await sync_to_async(catalog_snapshot_build, thread_sensitive=False)()
            version = None
        self._catalog = _deployments_from_snapshot(snapshot)
        self.global_limits = snapshot.get("global_limits") or {}
        self._catalog_version = version
        return self._catalog
