"""Persist usage events from the gateway's Redis stream into each workspace's schema."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import socket
from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
import redis
from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.record import (
    BIGINT_MAX,
    INT_MAX,
    USAGE_INT_FIELDS,
    USAGE_TEXT_LIMITS,
    cost_bound,
    int_bound,
    text_bound,
)
from gateway.hotpath.redis_keys import USAGE_DEAD_STREAM, USAGE_STREAM

from .alerts import budget_alerts_check
from .models import UsageEvent

logger = logging.getLogger("aiproxy.analytics")

GROUP = "usage-writers"
BATCH = 1000
# events that cannot be stored (a workspace deleted while its events were queued, an event
# the database refuses) go to USAGE_DEAD_STREAM with their error for inspection (Django
# admin, "Usage dead letters") rather than blocking every other workspace's usage behind them
DEAD_MAXLEN = 100_000
DEAD_ERROR_CHARS = 500


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(USAGE_STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


Refused = tuple[bytes, bytes, str]  # a stream entry's id, its event as queued, why it is set aside
_SCHEMA = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]{0,62}")
# what a row can fail on that is the row's fault; anything else (the database is down) is
# raised, and the batch stays pending to be tried again
_ROW_REFUSALS = (DataError, IntegrityError, ValidationError, ValueError, TypeError, ArithmeticError)


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name}: not a boolean: {str(value)[:40]!r}")


def _number(value: Any, name: str, low: int = 0, high: int = INT_MAX) -> int:
    try:
        return int_bound(value, low, high)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{name}: not a number: {str(value)[:40]!r}") from None


def usage_row_build(event: Any) -> UsageEvent:
    """The table row of a queued event, its fields bounded to the columns as the gateway
    bounds them (events spooled or queued by older code may not be); ValueError names what
    cannot be stored at all."""
    if not isinstance(event, dict):
        raise ValueError("the event is not a JSON object")
    event_id = event.get("event_id")
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= 32
        or not event_id.isprintable()
        or not event_id.isascii()
    ):
        raise ValueError(f"event_id: not an id: {str(event_id)[:40]!r}")
    ts = event.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise ValueError(f"ts: not a timestamp: {str(ts)[:40]!r}")
    try:
        created_at = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"ts: out of range: {ts!r}") from None
    key_id = event.get("key_id")
    similarity = event.get("cache_similarity")
    if similarity is not None:
        if isinstance(similarity, bool) or not isinstance(similarity, int | float):
            raise ValueError(f"cache_similarity: not a number: {str(similarity)[:40]!r}")
        similarity = float(similarity) if math.isfinite(similarity) else None
    try:
        cost, cost_saved = cost_bound(event.get("cost") or "0"), cost_bound(event.get("cost_saved") or "0")
    except ValueError as exc:
        raise ValueError(f"cost: {exc}") from None
    text = {name: text_bound(event.get(name), limit) for name, limit in USAGE_TEXT_LIMITS}
    text["cache_status"] = text["cache_status"] or "miss"
    return UsageEvent(
        event_id=event_id,
        created_at=created_at,
        key_id=None if key_id is None else _number(key_id, "key_id", -BIGINT_MAX - 1, BIGINT_MAX),
        **text,
        # a field added later (attempts) is absent from events queued before it: 0
        **{name: _number(event.get(name, 0), name) for name in USAGE_INT_FIELDS},
        cost=Decimal(cost),
        cost_saved=Decimal(cost_saved),
        cache_similarity=similarity,
        stream=_flag(event.get("stream"), "stream"),
        usage_estimated=_flag(event.get("usage_estimated"), "usage_estimated"),
        client_disconnected=_flag(event.get("client_disconnected"), "client_disconnected"),
    )


def _rows_insert(items: list[tuple[bytes, bytes, UsageEvent]]) -> tuple[list[UsageEvent], list[Refused]]:
    """Insert the rows; if the database refuses the batch, split it in halves until each
    refused row stands alone, so one bad row costs a few extra inserts, not the batch."""
    try:
        with transaction.atomic():
            UsageEvent.objects.bulk_create([row for _, _, row in items], ignore_conflicts=True)
    except _ROW_REFUSALS as exc:
        if len(items) == 1:
            entry_id, raw, _ = items[0]
            return [], [(entry_id, raw, f"refused by the database: {type(exc).__name__}: {exc}")]
        middle = len(items) // 2
        stored, refused = _rows_insert(items[:middle])
        stored_too, refused_too = _rows_insert(items[middle:])
        return stored + stored_too, refused + refused_too
    return [row for _, _, row in items], []


def _dead_letter(refused: list[Refused]) -> None:
    """Set events aside with their error, for staff to see in admin (UsageDeadLetter)."""
    if not refused:
        return
    logger.warning("%d usage events moved to %s; the first: %s", len(refused), USAGE_DEAD_STREAM, refused[0][2])
    pipe = redis_sync().pipeline(transaction=False)
    for entry_id, raw, error in refused:
        pipe.xadd(
            USAGE_DEAD_STREAM,
            {"e": raw, "error": error[:DEAD_ERROR_CHARS], "entry": entry_id},
            maxlen=DEAD_MAXLEN,
            approximate=True,
        )
    pipe.execute()


def _persist(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    """Store the entries' events; set aside, with the reason, those that cannot be stored.
    Returns how many were stored; after it returns every entry is stored or set aside."""
    from keys.models import ApiKey
    from tenants.models import Workspace

    refused: list[Refused] = []
    by_schema: dict[str, list[tuple[bytes, bytes, UsageEvent]]] = defaultdict(list)
    for entry_id, fields in entries:
        raw = fields.get(b"e")
        if raw is None:
            raw = orjson.dumps({k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()})
            refused.append((entry_id, raw, "the entry has no event (field 'e')"))
            continue
        try:
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:  # the standard library also reads lone surrogates (bounded below)
                event = json.loads(raw)
            schema = event.get("schema") if isinstance(event, dict) else None
            if not isinstance(schema, str) or not _SCHEMA.fullmatch(schema):
                raise ValueError(f"schema: not a workspace schema: {str(schema)[:80]!r}")
            by_schema[schema].append((entry_id, raw, usage_row_build(event)))
        except Exception as exc:  # whatever is wrong with one event, the others are stored
            refused.append((entry_id, raw, f"invalid event: {exc}"))
    known = set(Workspace.objects.filter(schema_name__in=list(by_schema)).values_list("schema_name", flat=True))
    for schema in set(by_schema) - known:
        refused += [
            (entry_id, raw, f"workspace schema {schema!r} does not exist") for entry_id, raw, _ in by_schema.pop(schema)
        ]
    stored = 0
    for schema, items in by_schema.items():
        with schema_context(schema):
            rows, refused_here = _rows_insert(items)
            refused += refused_here
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
    _dead_letter(refused)
    return stored


def usage_dead_letters(*, count: int = 50) -> tuple[int, list[dict[str, str]]]:
    """How many events are set aside, and the latest `count` of them with their errors."""
    client = redis_sync()
    entries: Any = client.xrevrange(USAGE_DEAD_STREAM, count=count)
    latest = []
    for entry_id, fields in entries:
        raw = fields.get(b"e", b"")
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            event = {}
        millis = int(entry_id.split(b"-")[0])
        latest.append(
            {
                "id": entry_id.decode(),
                "at": dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC),
                "schema": str(event.get("schema", "")),
                "event_id": str(event.get("event_id", "")),
                "model": str(event.get("model", "")),
                "status_code": str(event.get("status_code", "")),
                "error": fields.get(b"error", b"").decode(errors="replace"),
                "event": raw.decode(errors="replace"),
            }
        )
    return int(client.xlen(USAGE_DEAD_STREAM)), latest


def usage_stream_drain(*, max_batches: int = 50) -> int:
    """Move pending usage events into PostgreSQL; idempotent by event_id, acked after commit.
    An event that cannot be stored goes to USAGE_DEAD_STREAM with its error, and is acked too."""
    client = redis_sync()
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    total = 0
    # entries a crashed worker read but never acknowledged
    claimed = client.xautoclaim(
        USAGE_STREAM, GROUP, consumer, min_idle_time=settings.USAGE_RECLAIM_IDLE_MS, start_id="0-0", count=BATCH
    )[1]  # Redis 6.2: [next, entries]; 7+: adds deleted ids
    if claimed:
        total += _persist(claimed)
        ids = [entry_id for entry_id, _ in claimed]
        client.xack(USAGE_STREAM, GROUP, *ids)
        client.xdel(USAGE_STREAM, *ids)
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


def usage_dead_letters_replay(*, limit: int | None = None) -> int:
    """Queue set-aside events again (the oldest first, up to `limit`), for when their cause is
    fixed (a workspace restored, a worker bug fixed); the worker checks them again and sets
    aside, with the new error, any that still cannot be stored. Returns how many were queued."""
    client = redis_sync()
    moved = 0
    start = "-"
    while limit is None or moved < limit:
        count = 500 if limit is None else min(500, limit - moved)
        entries: Any = client.xrange(USAGE_DEAD_STREAM, min=start, count=count)
        if not entries:
            break
        pipe = client.pipeline(transaction=True)
        for entry_id, fields in entries:
            if b"e" in fields:
                pipe.xadd(USAGE_STREAM, {"e": fields[b"e"]})
            pipe.xdel(USAGE_DEAD_STREAM, entry_id)
        pipe.execute()
        moved += len(entries)
        start = "(" + entries[-1][0].decode()
    return moved


@shared_task(name="analytics.tasks.usage_flush", ignore_result=True)
def usage_flush() -> int:
    return usage_stream_drain()
