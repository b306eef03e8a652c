"""Persist usage events from the gateway's Redis stream into each workspace's schema."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
import redis
from celery import shared_task
from django.conf import settings
from django_tenants.utils import schema_context

from gateway.directory import redis_sync
from gateway.record import USAGE_STREAM

from .alerts import budget_alerts_check

logger = logging.getLogger("aiproxy.analytics")

GROUP = "usage-writers"
BATCH = 1000
# events of a workspace that no longer exists (deleted while its events were queued): kept
# here for inspection rather than blocking every other workspace's usage behind them
DEAD_STREAM = USAGE_STREAM + ":dead"
DEAD_MAXLEN = 100_000


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(USAGE_STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _persist(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    from keys.models import ApiKey
    from tenants.models import Workspace

    from .models import UsageEvent

    by_schema: dict[str, list[dict[str, Any]]] = defaultdict(list)
    raw: dict[str, list[bytes]] = defaultdict(list)
    for _entry_id, fields in entries:
        event = orjson.loads(fields[b"e"])
        schema = event.pop("schema")
        by_schema[schema].append(event)
        raw[schema].append(fields[b"e"])
    known = set(Workspace.objects.filter(schema_name__in=list(by_schema)).values_list("schema_name", flat=True))
    for schema in set(by_schema) - known:
        logger.warning("%d usage events for workspace schema %r, which does not exist, moved to %s",
                       len(raw[schema]), schema, DEAD_STREAM)
        pipe = redis_sync().pipeline()
        for item in raw[schema]:
            pipe.xadd(DEAD_STREAM, {"e": item}, maxlen=DEAD_MAXLEN, approximate=True)
        pipe.execute()
        del by_schema[schema]
    stored = 0
    for schema, events in by_schema.items():
        rows = [
            UsageEvent(
                event_id=e["event_id"],
                created_at=dt.datetime.fromtimestamp(e["ts"], tz=dt.UTC),
                key_id=e["key_id"], key_name=e["key_name"], endpoint=e["endpoint"], model=e["model"],
                provider=e["provider"], input_tokens=e["input_tokens"], output_tokens=e["output_tokens"],
                cost=Decimal(e["cost"]), latency_ms=e["latency_ms"], status_code=e["status_code"],
                cache_status=e["cache_status"], stream=e["stream"], usage_estimated=e["usage_estimated"],
                client_disconnected=e["client_disconnected"], error_type=e["error_type"],
                cache_similarity=e.get("cache_similarity"), cost_saved=Decimal(e.get("cost_saved") or "0"),
            )
            for e in events
        ]
        with schema_context(schema):
            UsageEvent.objects.bulk_create(rows, ignore_conflicts=True)
            last_used: dict[int, dt.datetime] = {}
            for row in rows:
                if row.key_id and (row.key_id not in last_used or row.created_at > last_used[row.key_id]):
                    last_used[row.key_id] = row.created_at
            for key_id, when in last_used.items():
                ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=when).update(last_used_at=when)
        stored += len(rows)
        key_ids = {row.key_id for row in rows if row.key_id and row.cost}
        if key_ids:
            try:
                budget_alerts_check(schema=schema, key_ids=key_ids)
            except Exception:  # alerts must never stop usage from being persisted
                logger.exception("budget alerts check failed for %s", schema)
    return stored


def usage_stream_drain(*, max_batches: int = 50) -> int:
    """Move pending usage events into PostgreSQL; idempotent by event_id, acked after commit."""
    client = redis_sync()
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    total = 0
    # entries a crashed worker read but never acknowledged
    claimed = client.xautoclaim(USAGE_STREAM, GROUP, consumer, min_idle_time=settings.USAGE_RECLAIM_IDLE_MS, start_id="0-0", count=BATCH)[1]  # Redis 6.2: [next, entries]; 7+: adds deleted ids
    if claimed:
        total += _persist(claimed)
        client.xack(USAGE_STREAM, GROUP, *[entry_id for entry_id, _ in claimed])
    for _ in range(max_batches):
        result: Any = client.xreadgroup(GROUP, consumer, {USAGE_STREAM: ">"}, count=BATCH)
        if not result:
            break
        entries = result[0][1]
        if not entries:
            break
        total += _persist(entries)
        ids = [entry_id for entry_id, _ in entries]
        client.xack(USAGE_STREAM, GROUP, *ids)
        client.xdel(USAGE_STREAM, *ids)
    return total


@shared_task(name="analytics.tasks.usage_flush", ignore_result=True)
def usage_flush() -> int:
    return usage_stream_drain()

