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
    from ..catalog.models import GlobalLimits, Model

    models = []
    queryset = Model.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
    for m in queryset.prefetch_related("workspaces"):
        models.append(
            {
                "public_name": m.public_name,
                "upstream_name": m.upstream_name,
                "provider_name": m.provider.name,
                "provider_kind": m.provider.kind,
                "base_url": m.provider.base_url,
                "credential_encrypted": m.provider.credential_encrypted,
                "api_version": m.provider.api_version,
                "input_price_per_mtok": str(m.input_price_per_mtok),
                "output_price_per_mtok": str(m.output_price_per_mtok),
                "context_window": m.context_window,
                "workspace_ids": [w.pk for w in m.workspaces.all()],
                "created": int(m.created_at.timestamp()),
                "model_limits": m.rate_limits(),
                "provider_limits": m.provider.rate_limits(),
                "bounds": m.request_bounds(),
            }
        )
    return {"models": models, "global_limits": GlobalLimits.current().rate_limits()}


def catalog_publish() -> dict[str, Any]:
    """Write the catalog snapshot to Redis; credentials stay encrypted there."""
    snapshot = catalog_snapshot_build()
    client = redis_sync()
    pipe = client.pipeline()
    pipe.set(CATALOG_KEY, orjson.dumps(snapshot))
    pipe.incr(CATALOG_VERSION_KEY)
    pipe.execute()
    return snapshot
