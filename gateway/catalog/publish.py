"""The catalog's Django side publishes it to the gateway's hot directory (Redis): a snapshot
of every enabled model, written whenever the catalog changes (signals.py), read by
gateway.hotpath.directory."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import redis
from django.conf import settings

from ..hotpath.redis_keys import CATALOG_KEY, CATALOG_VERSION_KEY


@functools.cache
def redis_sync() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def catalog_snapshot_build() -> dict[str, Any]:
    """The catalog as every gateway process reads it: the enabled groups, each with its
    enabled deployments on enabled providers in priority order (possibly none: the gateway
    answers 503 for that group) and the names of its enabled fallback groups."""
    from django.db.models import Prefetch

    from ..catalog.models import Deployment, GlobalLimits, Model, ModelFallback

    enabled = set(Model.objects.filter(enabled=True).values_list("public_name", flat=True))
    groups = Model.objects.filter(enabled=True).select_related("context_window_fallback", "content_policy_fallback")
    groups = groups.prefetch_related(
        "workspaces",
        Prefetch("deployments", to_attr="deployments_served", queryset=Deployment.objects.filter(
            enabled=True, provider__enabled=True).select_related("provider").order_by("priority", "pk")),
        Prefetch("fallback_links", to_attr="fallback_chain",
                 queryset=ModelFallback.objects.select_related("fallback").order_by("position", "pk")),
    )
    return {"groups": [_group_entry(g, enabled) for g in groups], "global_limits": GlobalLimits.current().rate_limits()}


def _group_entry(g: Any, enabled: set[str]) -> dict[str, Any]:
    def enabled_name(group: Any) -> str | None:
        return group.public_name if group is not None and group.public_name in enabled else None

    return {
        "name": g.public_name,
        "strategy": g.strategy,
        "context_window": g.context_window,
        "workspace_ids": [w.pk for w in g.workspaces.all()],
        "created": int(g.created_at.timestamp()),
        "model_limits": g.rate_limits(),
        "bounds": g.request_bounds(),
        "fallbacks": [link.fallback.public_name for link in g.fallback_chain if enabled_name(link.fallback)],
        "context_fallback": enabled_name(g.context_window_fallback),
        "content_policy_fallback": enabled_name(g.content_policy_fallback),
        "max_attempts": g.max_attempts,
        "retry_deadline": g.retry_deadline_seconds,
        "deployments": [_deployment_entry(d) for d in g.deployments_served],
    }


def _deployment_entry(d: Any) -> dict[str, Any]:
    return {
        "id": d.pk,
        "name": d.name,
        "provider_name": d.provider.name,
        "provider_kind": d.provider.kind,
        "base_url": d.provider.base_url,
        "credential_encrypted": d.provider.credential_encrypted,
        "api_version": d.provider.api_version,
        "upstream_name": d.upstream_name,
        "input_price_per_mtok": str(d.input_price_per_mtok),
        "output_price_per_mtok": str(d.output_price_per_mtok),
        "weight": d.weight,
        "priority": d.priority,
        "deployment_limits": d.rate_limits(),
        "provider_limits": d.provider.rate_limits(),
        "max_in_flight": d.max_in_flight,
        "timeouts": d.timeouts(),
    }


def catalog_publish() -> dict[str, Any]:
    """Write the catalog snapshot to Redis; credentials stay encrypted there."""
    snapshot = catalog_snapshot_build()
    client = redis_sync()
    pipe = client.pipeline()
    pipe.set(CATALOG_KEY, orjson.dumps(snapshot))
    pipe.incr(CATALOG_VERSION_KEY)
    pipe.execute()
    return snapshot
