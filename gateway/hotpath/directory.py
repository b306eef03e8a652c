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
import dataclasses
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
class Timeouts:
    """Seconds an attempt on a deployment may take; None: the gateway's default (settings)."""

    connect: float | None = None
    first_byte: float | None = None  # from the request sent to the first byte of the answer
    total: float | None = None


NO_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model on one provider, as the router and adapters need it. The group's fields
    (public_name, context_window, workspace_ids, created, model_limits, bounds) are copied
    onto each of its deployments, so limits, bounds and adapters read one object."""

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
    model_limits: Any = None  # the group's {"rpm": n, "tpm": n}, set in admin
    provider_limits: Any = None
    bounds: RequestBounds = DEFAULT_BOUNDS  # the largest sizes a request may ask for, set in admin
    deployment_id: int = 0
    name: str = ""  # unique within its group; the x-aiproxy-deployment header
    weight: int = 1  # weighted random: the share of requests, relative to the group's others
    priority: int = 0  # priority order: lower first
    deployment_limits: Any = None  # this deployment's own {"rpm": n, "tpm": n}: beyond them it is skipped
    max_in_flight: int | None = None  # requests in flight across all gateway processes; None: unbounded
    timeouts: Timeouts = NO_TIMEOUTS

    def visible_to(self, workspace_id: int) -> bool:
        return not self.workspace_ids or workspace_id in self.workspace_ids


STRATEGIES = ("weighted", "least_busy", "lowest_latency", "lowest_cost", "priority")


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """A public model name: the deployments that serve it and how to choose among them,
    and where to go when they all fail."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: str = "weighted"  # one of STRATEGIES
    context_window: int | None = None
    workspace_ids: frozenset[int] = frozenset()
    created: int = 0
    fallbacks: tuple[str, ...] = ()  # groups tried, in order, once this group's deployments failed
    context_fallback: str | None = None  # the group a too-long prompt goes to (a larger window)
    content_policy_fallback: str | None = None  # the group a content-policy refusal goes to
    max_attempts: int = 3  # per request, over the group and its fallbacks
    retry_deadline: float = 60.0  # seconds: no new attempt starts after this

    def visible_to(self, workspace_id: int) -> bool:
        return not self.workspace_ids or workspace_id in self.workspace_ids


def group_owner(group: ModelGroup) -> str:
    """Who serves a group, as /v1/models' owned_by says it: its provider when it has one,
    else "aiproxy"."""
    providers = {d.provider_name for d in group.deployments}
    return providers.pop() if len(providers) == 1 else "aiproxy"


# --- reader (gateway side, async) ------------------------------------------------------

def _groups_from_snapshot(snapshot: dict[str, Any]) -> dict[str, ModelGroup]:
    """The groups of a published snapshot. A snapshot from a version before model groups
    ({"models": [...]}) still loads, one group per model, so a process reading it keeps serving."""
    entries = snapshot.get("groups")
    if entries is None:
        entries = [_group_from_model_entry(m) for m in snapshot.get("models", [])]
    return {g["name"]: _group_build(g) for g in entries}


def _group_build(g: dict[str, Any]) -> ModelGroup:
    group = ModelGroup(
        name=g["name"],
        deployments=(),
        strategy=g.get("strategy") or "weighted",
        context_window=g.get("context_window"),
        workspace_ids=frozenset(g.get("workspace_ids") or ()),
        created=g.get("created") or 0,
        fallbacks=tuple(g.get("fallbacks") or ()),
        context_fallback=g.get("context_fallback"),
        content_policy_fallback=g.get("content_policy_fallback"),
        max_attempts=g.get("max_attempts") or 3,
        retry_deadline=float(g.get("retry_deadline") or 60.0),
    )
    bounds = RequestBounds.from_snapshot(g.get("bounds"))
    model_limits = g.get("model_limits") or {}
    deployments = tuple(_deployment_build(d, group, model_limits, bounds) for d in g.get("deployments") or ())
    return dataclasses.replace(group, deployments=deployments)


def _deployment_build(d: dict[str, Any], group: ModelGroup, model_limits: dict[str, int],
                      bounds: RequestBounds) -> Deployment:
    from .credentials import credential_decrypt

    timeouts = d.get("timeouts") or {}
    return Deployment(
        public_name=group.name,
        upstream_name=d["upstream_name"],
        provider_name=d["provider_name"],
        provider_kind=d["provider_kind"],
        base_url=d["base_url"].rstrip("/"),
        credential=credential_decrypt(d["credential_encrypted"]) if d["credential_encrypted"] else "",
        api_version=d["api_version"],
        input_price_per_mtok=float(d["input_price_per_mtok"]),
        output_price_per_mtok=float(d["output_price_per_mtok"]),
        context_window=group.context_window,
        workspace_ids=group.workspace_ids,
        created=group.created,
        model_limits=model_limits,
        provider_limits=d.get("provider_limits") or {},
        bounds=bounds,
        deployment_id=d.get("id") or 0,
        name=d.get("name") or d["provider_name"],
        weight=d.get("weight") or 1,
        priority=d.get("priority") or 0,
        deployment_limits=d.get("deployment_limits") or {},
        max_in_flight=d.get("max_in_flight"),
        timeouts=Timeouts(connect=timeouts.get("connect"), first_byte=timeouts.get("first_byte"),
                          total=timeouts.get("total")),
    )


def _group_from_model_entry(m: dict[str, Any]) -> dict[str, Any]:
    """An old snapshot's model as a new snapshot's one-deployment group."""
    group_fields = ("context_window", "workspace_ids", "created", "model_limits", "bounds")
    deployment = {key: value for key, value in m.items() if key not in group_fields and key != "public_name"}
    return {"name": m["public_name"], **{key: m.get(key) for key in group_fields}, "deployments": [deployment]}


class Directory:
    """Per-process view of key records and the catalog."""

    def __init__(self, client: aioredis.Redis, key_loader: KeyLoader | None = None) -> None:
        self.redis = client
        self._key_loader = key_loader  # None: settings.GATEWAY_KEY_LOADER, resolved on first use
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self._key_reads: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._catalog: dict[str, ModelGroup] | None = None
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

    async def catalog(self) -> dict[str, ModelGroup]:
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
        self._catalog = _groups_from_snapshot(snapshot)
        self.global_limits = snapshot.get("global_limits") or {}
        self._catalog_version = version
        return self._catalog
