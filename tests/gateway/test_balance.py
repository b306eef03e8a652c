"""Load balancing inside a model group: candidates() for each strategy, on a health board's
view (a board that never syncs is one process's own view; the cross-process case syncs two
boards through the tests' Redis)."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from typing import Any

from django.conf import settings

from gateway.hotpath.balance import candidates
from gateway.hotpath.directory import Deployment, ModelGroup
from gateway.hotpath.health import BreakerPolicy, HealthBoard
from gateway.hotpath.rediswire import WireRedis
from tests.gateway.deployments import deployment_make

POLICY = BreakerPolicy(failures=5, error_rate=0.5, window_seconds=30, min_requests=20, cooldown_seconds=0.3)
_ids = itertools.count(10**8 + uuid.uuid4().int % 10**8)


def _deployment(**fields: Any) -> Deployment:
    deployment_id = next(_ids)
    return deployment_make(deployment_id=deployment_id, name=f"d{deployment_id}", public_name="balance-test", **fields)


def _group(strategy: str, *deployments: Deployment) -> ModelGroup:
    return ModelGroup(name="balance-test", deployments=deployments, strategy=strategy)


def _board() -> HealthBoard:
    return HealthBoard(WireRedis(settings.REDIS_URL), POLICY)  # connects only if synced


def _ids_of(deployments: list[Deployment]) -> list[int]:
    return [d.deployment_id for d in deployments]


def test_weighted_draws_follow_the_weights() -> None:
    heavy, light, off = _deployment(weight=3), _deployment(weight=1), _deployment(weight=0)
    group, board, rng = _group("weighted", heavy, light, off), _board(), random.Random(7)
    firsts: Counter[int] = Counter()
    for _ in range(4000):
        order = candidates(group, board, rng=rng)
        assert sorted(_ids_of(order)) == sorted(_ids_of([heavy, light, off]))  # the rest of the draw follows
        assert order[-1] is off  # weight 0: only once every other was tried
        firsts[order[0].deployment_id] += 1
    assert 0.70 < firsts[heavy.deployment_id] / 4000 < 0.80


def test_least_busy_goes_first_to_the_fewest_in_flight() -> None:
    busy, calm, idle = _deployment(), _deployment(), _deployment()
    board = _board()
    for _ in range(2):
        board.begin(busy)
    board.begin(calm)
    assert candidates(_group("least_busy", busy, calm, idle), board) == [idle, calm, busy]


def test_least_busy_counts_requests_in_flight_on_other_processes() -> None:
    here, there = _deployment(), _deployment()
    group = _group("least_busy", here, there)

    async def run() -> None:
        a, b = _board(), _board()
        try:
            a.begin(here)
            for _ in range(3):
                b.begin(there)
            assert candidates(group, a)[0] is there  # b's requests unknown yet
            await b.sync()
            await a.sync()
            assert candidates(group, a) == [here, there]
        finally:
            await a.client.aclose()
            await b.client.aclose()

    asyncio.run(run())


def test_lowest_latency_tries_unmeasured_deployments_first_then_the_fastest() -> None:
    slow, fast, new = _deployment(), _deployment(), _deployment()
    board = _board()
    for d, ttfb in ((slow, 900.0), (fast, 150.0)):
        board.begin(d)
        board.end(d, "ok", ttfb_ms=ttfb, total_ms=ttfb * 2)
    assert candidates(_group("lowest_latency", slow, fast, new), board) == [new, fast, slow]


def test_lowest_cost_goes_to_the_cheapest_input_plus_output_price() -> None:
    dear = _deployment(input_price_per_mtok=2.0, output_price_per_mtok=8.0)
    cheap = _deployment(input_price_per_mtok=0.5, output_price_per_mtok=1.5)
    middle = _deployment(input_price_per_mtok=3.0, output_price_per_mtok=3.0)
    assert candidates(_group("lowest_cost", dear, cheap, middle), _board()) == [cheap, middle, dear]


def test_priority_goes_in_priority_order_and_draws_by_weight_among_equals() -> None:
    backup = _deployment(priority=5)
    main_heavy, main_light = _deployment(priority=1, weight=9), _deployment(priority=1, weight=1)
    group, board, rng = _group("priority", backup, main_heavy, main_light), _board(), random.Random(3)
    firsts: Counter[int] = Counter()
    for _ in range(2000):
        order = candidates(group, board, rng=rng)
        assert order[-1] is backup
        firsts[order[0].deployment_id] += 1
    assert 0.85 < firsts[main_heavy.deployment_id] / 2000 < 0.95


def test_deployments_already_tried_are_excluded() -> None:
    a, b, c = _deployment(), _deployment(), _deployment()
    order = candidates(_group("lowest_cost", a, b, c), _board(), exclude={a.deployment_id, c.deployment_id})
    assert order == [b]


def test_an_open_circuit_is_skipped_and_none_usable_is_empty() -> None:
    broken, fine = _deployment(), _deployment()
    board = _board()
    for _ in range(5):
        board.begin(broken)
        board.end(broken, "fail", error="HTTP 500")
    assert candidates(_group("weighted", broken, fine), board) == [fine]
    assert candidates(_group("weighted", broken), board) == []


def test_deployments_at_their_rpm_tpm_or_max_in_flight_are_skipped() -> None:
    by_rpm = _deployment(deployment_limits={"rpm": 2})
    by_tpm = _deployment(deployment_limits={"tpm": 1000})
    by_in_flight = _deployment(max_in_flight=1)
    free = _deployment(deployment_limits={"rpm": 100, "tpm": 100_000}, max_in_flight=10)
    group = _group("lowest_cost", by_rpm, by_tpm, by_in_flight, free)
    board = _board()
    assert len(candidates(group, board)) == 4
    for _ in range(2):
        board.begin(by_rpm)
        board.end(by_rpm, "ok")
    board.begin(by_tpm)
    board.end(by_tpm, "ok", tokens=1000)
    board.begin(by_in_flight)
    assert candidates(group, board) == [free]
    board.end(by_in_flight, "ok")
    assert by_in_flight in candidates(group, board)


def test_an_open_circuit_whose_probe_this_process_holds_comes_first() -> None:
    broken, cheap = _deployment(input_price_per_mtok=5.0), _deployment(input_price_per_mtok=0.1)
    group = _group("lowest_cost", broken, cheap)

    async def run() -> None:
        board = _board()
        try:
            for _ in range(5):
                board.begin(broken)
                board.end(broken, "fail", error="HTTP 500")
            await board.sync()
            assert candidates(group, board) == [cheap]
            await asyncio.sleep(POLICY.cooldown_seconds + 0.05)
            candidates(group, board)  # routed to: the next sync asks for its probe
            await board.sync()
            assert candidates(group, board) == [broken, cheap]
            board.begin(broken)  # this request is the probe: no other one gets it
            assert candidates(group, board) == [cheap]
        finally:
            await board.client.aclose()

    asyncio.run(run())
