"""The hot directory: API key records and the model catalog, as the gateway reads them.

Django-side services write here (Redis) whenever a key or the catalog changes
(keys.services.key_record_write, gateway.catalog.publish.catalog_publish); the gateway
keeps a small in-process copy. Key records are re-read from Redis at most every KEY_TTL
seconds, so a revoked key stops working in every process within one second, and a warm
request costs no SQL query and (for the key) no Redis round trip. When Redis holds no
record of a key, the Directory asks its key loader (by default settings.GATEWAY_KEY_LOADER:
the keys app rebuilds the record from PostgreSQL), so the hot path imports nothing of the
keys app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from .bounds import DEFAULT_BOUNDS, RequestBounds
from .key_policy import NO_POLICY, KeyPolicy
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
    # limits and budgets of the key, its member and its workspace, the plan's quota, the
    # response cache and the models it may call (keys.services.key_policy)
    policy: KeyPolicy = NO_POLICY

    def to_wire(self) -> dict[str, Any]:
        """The record as published in Redis (JSON); its key names the hash."""
        return {
            "workspace_id": self.workspace_id,
            "schema": self.schema,
            "slug": self.slug,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "revoked": self.revoked,
            "policy": self.policy.to_wire(),
        }

    @classmethod
    def from_wire(cls, key_hash: str, data: dict[str, Any]) -> KeyRecord:
        """A published record; fields a newer writer added are ignored."""
        return cls(
            key_hash=key_hash,
            workspace_id=data["workspace_id"],
            schema=data["schema"],
            slug=data["slug"],
            key_id=data["key_id"],
            key_name=data["key_name"],
            revoked=data["revoked"],
            policy=KeyPolicy.from_wire(data.get("policy")),
        )


# rebuilds a key's record from the database when Redis has none (None: no such key)
KeyLoader = Callable[[str], KeyRecord | None]


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

    def __init__(self, client: aioredis.Redis, key_loader: KeyLoader | None = None) -> None:
        self.redis = client
        self._key_loader = key_loader  # None: settings.GATEWAY_KEY_LOADER, resolved on first use
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
            record = KeyRecord.from_wire(key_hash, orjson.loads(raw))
        else:
            record = await sync_to_async(self._key_loader_get(), thread_sensitive=False)(key_hash)
        if len(self._keys) > 100_000:
            self._keys.clear()
        self._keys[key_hash] = (time.monotonic() + KEY_TTL, record)
        return record

    def _key_loader_get(self) -> KeyLoader:
        if self._key_loader is None:
            self._key_loader = import_string(settings.GATEWAY_KEY_LOADER)
        return self._key_loader

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
