"""Deployment health, Django side: the admin's reader of the shared health state, the staff
emails when a deployment goes down or comes back up, and the optional active health checks.

The gateway keeps the state (gateway/hotpath/health.py); this module only reads it, and
the health checks report to it through a HealthBoard exactly as a gateway process would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from ..hotpath.adapters import adapter_for
from ..hotpath.directory import Deployment, _groups_from_snapshot
from ..hotpath.errors import GatewayError
from ..hotpath.health import HealthBoard, Outcome, health_fields_read, outcome_of
from ..hotpath.redis_keys import (
    CATALOG_KEY,
    HEALTH_ALERTS_LOCK,
    HEALTH_EVENTS_CURSOR,
    HEALTH_EVENTS_STREAM,
    deployment_health_key,
    deployment_probe_key,
)
from ..hotpath.rediswire import WireRedis
from ..hotpath.upstream import Pool
from .publish import redis_sync

logger = logging.getLogger("aiproxy.gateway.health")

ALERTS_BATCH = 100  # transitions mailed per run (the next run goes on)
ALERTS_LOCK_S = 120  # a run that died stops holding the lock after this long
HEALTH_CHECK_TIMEOUT_S = 30.0
SUBJECT_ERROR_CHARS = 200
PING = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


# --- the admin's reader ------------------------------------------------------------------

def deployment_health_read(ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each deployment's shared health, in one round trip: state ("closed", "open",
    "half_open"), last_error, ttfb_ms and total_ms (moving averages, None before the first
    success), in_flight (across the live gateway processes), opened_at (unix seconds)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    pipe = redis_sync().pipeline(transaction=False)
    for deployment_id in ids:
        pipe.hgetall(deployment_health_key(deployment_id))
        pipe.exists(deployment_probe_key(deployment_id))
    replies = pipe.execute()
    now_ms = int(time.time() * 1000)
    return {deployment_id: health_fields_read(replies[2 * i], probe_held=bool(replies[2 * i + 1]), now_ms=now_ms)
            for i, deployment_id in enumerate(ids)}


# --- staff emails on transitions ---------------------------------------------------------

def staff_emails() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk")
    return list(dict.fromkeys(users.values_list("email", flat=True)))


def _one_line(text: str, limit: int) -> str:
    """Mail headers take no line breaks; upstream errors may hold some."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def health_alert_send(event: dict[str, str], recipients: list[str]) -> None:
    name, error = event.get("name", "?"), event.get("error", "")
    at = datetime.fromtimestamp(int(event.get("at") or 0) / 1000, UTC)
    if event.get("state") == "down":
        subject = f"Deployment {name} is down: {_one_line(error, SUBJECT_ERROR_CHARS) or 'failing'}"
        body = (f"The gateway stopped sending requests to deployment {name} (id {event.get('id')}) at "
                f"{at:%Y-%m-%d %H:%M:%S} UTC: its circuit breaker opened.\n\nLast error: {error or '(none)'}\n\n"
                "It gets one trial request after each cooldown; you will get another email when it is back up.\n")
    else:
        subject = f"Deployment {name} is back up"
        body = (f"Deployment {name} (id {event.get('id')}) answered its trial request at {at:%Y-%m-%d %H:%M:%S} UTC: "
                "the gateway sends it traffic again.\n")
    body += f"\nDeployments: {settings.SITE_URL.rstrip('/')}/admin/\n"
    send_mail(subject, body, None, recipients)


def health_alerts_send() -> int:
    """Mail staff one email per circuit transition the gateway recorded since the last run.
    The stream position is kept in Redis (HEALTH_EVENTS_CURSOR) and moves past an event once
    it is mailed, under a lock, so concurrent runs never send one twice; a send that fails
    is retried by the next run. With no staff address to send to, events are passed over."""
    client = redis_sync()
    if not client.set(HEALTH_ALERTS_LOCK, "1", nx=True, ex=ALERTS_LOCK_S):
        return 0
    sent = 0
    try:
        cursor = client.get(HEALTH_EVENTS_CURSOR)
        start = "(" + cursor.decode() if isinstance(cursor, bytes) else "-"
        entries: Any = client.xrange(HEALTH_EVENTS_STREAM, min=start, count=ALERTS_BATCH)
        recipients = staff_emails() if entries else []
        for entry_id, fields in entries:
            event = {k.decode(): v.decode() for k, v in fields.items()}
            if recipients:
                try:
                    health_alert_send(event, recipients)
                except Exception:
                    logger.exception("deployment health email for %s could not be sent; will retry", event.get("name"))
                    break
                sent += 1
            client.set(HEALTH_EVENTS_CURSOR, entry_id)
    finally:
        client.delete(HEALTH_ALERTS_LOCK)
    return sent


# --- active health checks ----------------------------------------------------------------

def health_check_ids(snapshot: dict[str, Any]) -> set[int]:
    """Ids of the deployments whose health_check is on, in the published catalog snapshot."""
    return {int(d["id"]) for group in snapshot.get("groups") or [] for d in group.get("deployments") or []
            if d.get("health_check") and d.get("id") is not None}


def health_check_targets(snapshot: dict[str, Any]) -> list[Deployment]:
    ids = health_check_ids(snapshot)
    if not ids:
        return []
    found: dict[int, Deployment] = {}
    for group in _groups_from_snapshot(snapshot).values():
        for deployment in group.deployments:
            if deployment.deployment_id in ids:
                found.setdefault(deployment.deployment_id, deployment)
    return list(found.values())


async def health_check_one(board: HealthBoard, pool: Pool, deployment: Deployment) -> Outcome | None:
    """One cheap chat request ("ping", max_tokens 1) through the deployment's adapter,
    reported to the board as the gateway reports an attempt. A deployment with an open
    circuit is checked only as its half-open probe (so a check can bring it back up), one
    at its limits not at all: None."""
    if not board.usable(deployment) and not await board.probe(deployment):
        return None
    adapter = adapter_for(deployment.provider_kind)
    payload = {"model": deployment.public_name, **PING}
    board.begin(deployment)
    started = time.monotonic()
    try:
        response = await adapter.chat_send(pool, deployment, payload, stream=False)
        ttfb_ms = (time.monotonic() - started) * 1000
        _, usage = await adapter.chat_read(response, deployment, payload)
    except GatewayError as exc:
        outcome = outcome_of(exc.status)
        board.end(deployment, outcome, error=exc.message if outcome == "fail" else "")
        return outcome
    except Exception as exc:
        board.end(deployment, "fail", error=f"health check failed: {type(exc).__name__}")
        return "fail"
    tokens = usage.input_tokens + usage.output_tokens if usage is not None else 0
    board.end(deployment, "ok", ttfb_ms=ttfb_ms, total_ms=(time.monotonic() - started) * 1000, tokens=tokens)
    return "ok"


async def health_checks_run(deployments: list[Deployment]) -> dict[int, Outcome | None]:
    """Check the deployments at once; their outcomes reach the shared state before it returns."""
    wire = WireRedis(settings.REDIS_URL, timeout=5, connect_timeout=5)
    board = HealthBoard(wire)
    pool = Pool(connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT, read_timeout=HEALTH_CHECK_TIMEOUT_S)
    try:
        for deployment in deployments:
            board.health(deployment)
        await board.sync()  # the shared state first: which circuits are open, and the probes due
        outcomes = await asyncio.gather(*(health_check_one(board, pool, d) for d in deployments))
        await board.sync()
    finally:
        await pool.close()
        await wire.aclose()
    return {d.deployment_id: outcome for d, outcome in zip(deployments, outcomes, strict=True)}


def health_checks_run_all() -> int:
    """The active checks of every deployment with health_check on (catalog snapshot)."""
    raw = redis_sync().get(CATALOG_KEY)
    if raw is None:
        return 0
    targets = health_check_targets(orjson.loads(raw))  # type: ignore[arg-type]
    if not targets:
        return 0
    return sum(1 for outcome in asyncio.run(health_checks_run(targets)).values() if outcome is not None)
