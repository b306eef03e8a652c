"""Deployment health against the tests' real Redis: two HealthBoards on one Redis stand for
two gateway processes. Circuit breakers, requests in flight and latency averages are shared
through each board's sync; the staff emails and the active checks read and feed the same
state."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import override_settings

from gateway.catalog.health import (
    deployment_health_read,
    health_alerts_send,
    health_check_ids,
    health_checks_run,
)
from gateway.catalog.publish import redis_sync
from gateway.hotpath import health
from gateway.hotpath.directory import Deployment
from gateway.hotpath.health import BreakerPolicy, HealthBoard, outcome_of
from gateway.hotpath.redis_keys import HEALTH_EVENTS_STREAM
from gateway.hotpath.rediswire import WireRedis
from tests.gateway.deployments import deployment_make

COOLDOWN = 0.3
FAST = BreakerPolicy(failures=5, error_rate=0.5, window_seconds=30, min_requests=20, cooldown_seconds=COOLDOWN)
_ids = itertools.count(10**8 + uuid.uuid4().int % 10**8)  # each test's deployments are its own in Redis


def _deployment(**fields: Any) -> Deployment:
    deployment_id = next(_ids)
    return deployment_make(deployment_id=deployment_id, name=f"d{deployment_id}", public_name="health-test", **fields)


@contextlib.asynccontextmanager
async def _processes(count: int, policy: BreakerPolicy = FAST) -> AsyncIterator[list[HealthBoard]]:
    boards = [HealthBoard(WireRedis(settings.REDIS_URL), policy) for _ in range(count)]
    try:
        yield boards
    finally:
        for board in boards:
            await board.client.aclose()


def _seen(deployment: Deployment, *boards: HealthBoard) -> None:
    """A process syncs the deployments it has routed to: these boards have."""
    for board in boards:
        board.usable(deployment)


def _attempt(board: HealthBoard, deployment: Deployment, outcome: health.Outcome, **fields: Any) -> None:
    board.begin(deployment)
    board.end(deployment, outcome, **fields)


async def _sync(*boards: HealthBoard) -> None:
    for board in boards:
        await board.sync()


def _events(deployment: Deployment) -> list[tuple[str, str]]:
    entries: Any = redis_sync().xrange(HEALTH_EVENTS_STREAM)
    return [(f[b"state"].decode(), f[b"error"].decode()) for _, f in entries
            if f[b"id"] == str(deployment.deployment_id).encode()]


def test_requests_in_flight_on_one_process_are_seen_by_another_after_a_sync() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            a.begin(d)
            a.begin(d)
            b.begin(d)
            assert b.health(d).in_flight == 1  # a's are not known before the syncs
            await _sync(a, b, a)
            assert a.health(d).in_flight == 3 and b.health(d).in_flight == 3
            a.end(d, "ok")
            a.end(d, "ok")
            assert a.health(d).in_flight == 1  # its own ends count at once
            await _sync(a, b)
            assert b.health(d).in_flight == 1

    asyncio.run(run())


def test_consecutive_failures_open_the_breaker_at_once_locally_and_for_every_process_after_a_sync() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            for _ in range(4):
                _attempt(a, d, "fail", error="HTTP 500")
            assert a.usable(d)
            _attempt(a, d, "fail", error="HTTP 500")
            assert a.health(d).state == "open" and not a.usable(d)  # before any sync
            await b.sync()
            assert b.health(d).state == "closed" and b.usable(d)
            await _sync(a, b)
            assert b.health(d).state == "open" and not b.usable(d)
            assert b.health(d).last_error == "HTTP 500"
            assert _events(d) == [("down", "HTTP 500")]

    asyncio.run(run())


def test_failures_in_a_row_count_across_processes_and_a_success_resets_them() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            reset, tripped = _deployment(), _deployment()
            for d in (reset, tripped):
                for _ in range(3):
                    _attempt(a, d, "fail", error="timeout")
            await a.sync()
            _attempt(b, reset, "ok")
            _seen(tripped, b)
            await b.sync()
            for d in (reset, tripped):
                for _ in range(2):
                    _attempt(b, d, "fail", error="timeout")
            assert b.health(tripped).state == "open"  # 3 from a (shared) + 2 here, in a row
            assert b.health(reset).state == "closed"  # a success came between
            await _sync(b, a)
            assert a.health(tripped).state == "open" and a.health(reset).state == "closed"

    asyncio.run(run())


def test_an_error_rate_over_the_window_opens_the_breaker_once_the_window_holds_enough_requests() -> None:
    policy = BreakerPolicy(failures=100, error_rate=0.5, window_seconds=30, min_requests=20, cooldown_seconds=COOLDOWN)

    async def run() -> None:
        async with _processes(2, policy) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            for _ in range(9):
                _attempt(a, d, "ok")
                _attempt(a, d, "fail", error="HTTP 503")
            await _sync(a, b)
            assert b.health(d).state == "closed"  # half failed, but 18 < 20 requests
            _attempt(b, d, "ok")
            _attempt(b, d, "fail", error="HTTP 503")
            assert b.health(d).state == "open"  # 10 of 20 failed
            await _sync(b, a)
            assert a.health(d).state == "open"

    asyncio.run(run())


def test_after_the_cooldown_exactly_one_of_many_concurrent_probes_wins() -> None:
    async def run() -> None:
        async with _processes(4) as boards:
            d = _deployment()
            _seen(d, *boards)
            for _ in range(5):
                _attempt(boards[0], d, "fail", error="HTTP 500")
            await _sync(*boards)
            assert not any([await board.probe(d) for board in boards])  # still cooling down
            await asyncio.sleep(COOLDOWN + 0.05)
            won = await asyncio.gather(*(board.probe(d) for board in boards for _ in range(5)))
            assert won.count(True) == 1
            winner = boards[won.index(True) // 5]
            assert winner.health(d).state == "half_open"

    asyncio.run(run())


def test_a_failed_probe_reopens_the_breaker_and_a_successful_one_closes_it() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            for _ in range(5):
                _attempt(a, d, "fail", error="HTTP 500")
            await _sync(a, b)
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await a.probe(d)
            failed_at = time.time()
            _attempt(a, d, "fail", error="still down")
            assert a.health(d).state == "open"
            await _sync(a, b)
            assert b.health(d).state == "open" and (b.health(d).opened_at or 0) >= failed_at - 0.01
            assert not await b.probe(d)  # a new cooldown
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await b.probe(d)
            _attempt(b, d, "ok", ttfb_ms=40.0, total_ms=90.0)
            assert b.health(d).state == "closed" and b.usable(d)
            await _sync(b, a)
            assert a.health(d).state == "closed" and a.usable(d)
            assert _events(d) == [("down", "HTTP 500"), ("up", "still down")]  # a failed probe is no transition

    asyncio.run(run())


def test_a_sync_gives_one_process_the_probe_and_its_next_request_takes_it() -> None:
    async def run() -> None:
        async with _processes(3) as boards:
            d = _deployment()
            _seen(d, *boards)
            for _ in range(5):
                _attempt(boards[0], d, "fail", error="HTTP 500")
            await _sync(*boards)
            await asyncio.sleep(COOLDOWN + 0.05)
            for board in boards:
                assert not board.usable(d)  # routed to (touched): each sync asks for the probe
            await _sync(*boards, *boards)
            holders = [board for board in boards if d.deployment_id in board.granted_ids]
            assert len(holders) == 1 and holders[0].usable(d)
            holders[0].begin(d)
            assert holders[0].health(d).state == "half_open" and not holders[0].usable(d)
            holders[0].end(d, "ok")
            await _sync(*boards)
            assert all(board.health(d).state == "closed" for board in boards)

    asyncio.run(run())


def test_a_killed_process_requests_in_flight_stop_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "PROCESS_TTL_MS", 300)

    async def run() -> None:
        async with _processes(2) as (killed, alive):
            d = _deployment()
            _seen(d, killed, alive)
            killed.begin(d)
            killed.begin(d)
            await _sync(killed, alive)
            assert alive.health(d).in_flight == 2
            assert deployment_health_read([d.deployment_id])[d.deployment_id]["in_flight"] == 2
            await asyncio.sleep(0.4)  # the killed process never syncs again
            await alive.sync()
            assert alive.health(d).in_flight == 0
            assert deployment_health_read([d.deployment_id])[d.deployment_id]["in_flight"] == 0

    asyncio.run(run())


def test_latency_averages_are_shared_and_fed_by_successes_only() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            assert b.health(d).ttfb_ms is None
            _attempt(a, d, "ok", ttfb_ms=100.0, total_ms=1000.0)
            await _sync(a, b)
            assert (b.health(d).ttfb_ms, b.health(d).total_ms) == (100.0, 1000.0)
            _attempt(a, d, "ok", ttfb_ms=200.0, total_ms=2000.0)
            _attempt(a, d, "fail", ttfb_ms=1.0, total_ms=1.0, error="HTTP 500")
            assert a.health(d).ttfb_ms == pytest.approx(120.0)  # its own at once
            await _sync(a, b)
            assert b.health(d).ttfb_ms == pytest.approx(120.0) and b.health(d).total_ms == pytest.approx(1200.0)

    asyncio.run(run())


def test_minute_requests_and_tokens_are_shared() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            for _ in range(3):
                _attempt(a, d, "ok", tokens=100)
            await _sync(a, b)
            assert b.health(d).minute_requests >= 3 and b.health(d).minute_tokens >= 300

    asyncio.run(run())


def test_the_admin_reads_state_error_latency_and_opening_time() -> None:
    async def run() -> None:
        async with _processes(1) as (a,):
            d, quiet = _deployment(), _deployment()
            _attempt(a, d, "ok", ttfb_ms=80.0, total_ms=400.0)
            for _ in range(5):
                _attempt(a, d, "fail", error="HTTP 529")
            await a.sync()
            read = deployment_health_read([d.deployment_id, quiet.deployment_id])
            assert read[d.deployment_id]["state"] == "open" and read[d.deployment_id]["last_error"] == "HTTP 529"
            assert read[d.deployment_id]["ttfb_ms"] == 80.0 and read[d.deployment_id]["total_ms"] == 400.0
            assert abs((read[d.deployment_id]["opened_at"] or 0) - time.time()) < 60
            assert read[quiet.deployment_id]["state"] == "closed" and read[quiet.deployment_id]["opened_at"] is None
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await a.probe(d)
            assert deployment_health_read([d.deployment_id])[d.deployment_id]["state"] == "half_open"

    asyncio.run(run())


def test_the_background_task_syncs_and_close_takes_the_process_requests_away() -> None:
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a, b)
            a.begin(d)
            a.start()
            a.start()  # idempotent
            await asyncio.sleep(health.SYNC_INTERVAL * 3)
            await b.sync()
            assert b.health(d).in_flight == 1
            a.end(d, "ok")
            await a.close()  # its last sync
            await b.sync()
            assert b.health(d).in_flight == 0

    asyncio.run(run())


def test_with_redis_unreachable_a_process_routes_and_probes_on_its_own_view() -> None:
    async def run() -> None:
        board = HealthBoard(WireRedis("redis://127.0.0.1:1", connect_timeout=0.2), FAST)
        d = _deployment()
        board.start()
        for _ in range(5):
            _attempt(board, d, "fail", error="HTTP 500")
        await asyncio.sleep(max(health.SYNC_INTERVAL * 3, COOLDOWN + 0.05))  # failing syncs
        assert board.health(d).state == "open" and not board.usable(d)
        assert await board.probe(d)  # its own probe
        assert not await board.probe(d)  # only one
        _attempt(board, d, "ok")
        assert board.usable(d)
        await board.close()
        await board.client.aclose()

    asyncio.run(run())


def test_a_cancelled_attempt_frees_its_place_and_counts_for_nothing() -> None:
    async def run() -> None:
        async with _processes(1) as (a,):
            d = _deployment()
            for _ in range(4):
                _attempt(a, d, "fail", error="timeout")
            _attempt(a, d, "cancel")
            _attempt(a, d, "fail", error="timeout")
            assert a.health(d).state == "open"  # five failures in a row: the cancel came between
            assert a.health(d).in_flight == 0
            await a.sync()
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await a.probe(d)
            _attempt(a, d, "cancel")
            assert a.health(d).state == "open"
            assert a.usable(d)  # this process still holds the probe key: its next request probes
            await a.sync()
            assert await a.probe(d) and not await a.probe(d)

    asyncio.run(run())


def test_what_counts_as_a_failure() -> None:
    assert [outcome_of(s) for s in (None, 429, 500, 502, 503, 504, 529)] == ["fail"] * 7
    assert [outcome_of(s) for s in (200, 400, 401, 404, 413)] == ["ok"] * 5


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_staff_get_one_email_per_transition(make_user: Any) -> None:
    staff = make_user()
    staff.is_staff = True
    staff.save()
    member = make_user()
    d = _deployment()

    async def down_and_up() -> None:
        async with _processes(1) as (a,):
            for _ in range(5):
                _attempt(a, d, "fail", error="HTTP 500\nbad gateway")
            await a.sync()
            await asyncio.sleep(COOLDOWN + 0.05)
            assert await a.probe(d)
            _attempt(a, d, "ok")
            await a.sync()

    asyncio.run(down_and_up())
    mail.outbox.clear()
    health_alerts_send()
    label = f"health-test/{d.name}"
    ours = [m for m in mail.outbox if f"Deployment {label} " in m.subject]
    assert [m.subject for m in ours] == [f"Deployment {label} is down: HTTP 500 bad gateway",
                                         f"Deployment {label} is back up"]
    assert all(staff.email in m.to and member.email not in m.to for m in ours)
    sent = len(mail.outbox)
    health_alerts_send()
    assert len(mail.outbox) == sent  # each transition is mailed once


def test_health_checks_report_to_the_shared_state(fake_provider_url: str) -> None:
    up = _deployment(base_url=fake_provider_url + "/v1", upstream_name="gpt-4o-mini-fake")
    down = _deployment()  # nothing listens there
    outcomes = asyncio.run(health_checks_run([up, down]))
    assert outcomes == {up.deployment_id: "ok", down.deployment_id: "fail"}
    read = deployment_health_read([up.deployment_id, down.deployment_id])
    assert read[up.deployment_id]["ttfb_ms"] is not None and read[up.deployment_id]["in_flight"] == 0
    assert read[down.deployment_id]["last_error"] and read[down.deployment_id]["ttfb_ms"] is None


@override_settings(GATEWAY_BREAKER_COOLDOWN_SECONDS=COOLDOWN)
def test_a_health_check_is_the_probe_that_brings_an_open_deployment_back(fake_provider_url: str) -> None:
    d = _deployment(base_url=fake_provider_url + "/v1", upstream_name="gpt-4o-mini-fake")

    async def trip() -> None:
        async with _processes(1) as (a,):
            for _ in range(5):
                _attempt(a, d, "fail", error="HTTP 502")
            await a.sync()

    asyncio.run(trip())
    assert asyncio.run(health_checks_run([d])) == {d.deployment_id: None}  # open, cooling down: not checked
    time.sleep(COOLDOWN + 0.05)
    assert asyncio.run(health_checks_run([d])) == {d.deployment_id: "ok"}
    assert deployment_health_read([d.deployment_id])[d.deployment_id]["state"] == "closed"


def test_health_checks_run_for_the_deployments_that_ask_for_them() -> None:
    snapshot = {"groups": [
        {"name": "a", "deployments": [{"id": 1, "name": "x", "health_check": True}, {"id": 2, "name": "y"}]},
        {"name": "b", "deployments": [{"id": 3, "name": "z", "health_check": False},
                                      {"id": 4, "name": "w", "health_check": True}]},
    ]}
    assert health_check_ids(snapshot) == {1, 4}


def test_the_health_tasks_are_on_the_beat_schedule() -> None:
    from gateway.catalog import tasks

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in (tasks.deployment_health_alerts, tasks.deployment_health_checks):
        assert schedule[task.name] > 0


def test_a_process_new_to_a_deployment_respects_a_circuit_another_opened() -> None:
    """watch(): the first request of a process on a deployment already reads the shared
    circuit (no request of its own has to fail first)."""
    async def run() -> None:
        async with _processes(2) as (a, b):
            d = _deployment()
            _seen(d, a)
            for _ in range(FAST.failures):
                _attempt(a, d, "fail", error="503 upstream_error")
            await a.sync()
            await b.watch((d,))
            assert not b.usable(d) and b.health(d).state == "open"
            await b.watch((d,))  # known now: nothing to read

    asyncio.run(run())
