"""CPU per request of routing (issue 16): candidates() + begin() + end() over a group of three
deployments with health state (latency averages, requests in flight, limits), for each
strategy. The budget is 0.05 ms (50 µs) per request.

    .venv/bin/python benchmarks/routing_cpu.py                  # 100,000 requests per strategy
    .venv/bin/python benchmarks/routing_cpu.py --requests 20000

Pure CPU, no Redis: the board's sync runs in the background, 4 times a second per
process, not per request (its cost is not in these figures). Measured with
time.process_time; prints µs per request.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")

from gateway.hotpath.balance import candidates  # noqa: E402
from gateway.hotpath.directory import STRATEGIES, Deployment, ModelGroup  # noqa: E402
from gateway.hotpath.health import BreakerPolicy, HealthBoard  # noqa: E402
from gateway.hotpath.rediswire import WireRedis  # noqa: E402

MAX_REQUESTS = 1_000_000


def _deployment(deployment_id: int, **fields: object) -> Deployment:
    return Deployment(public_name="bench", upstream_name=f"up-{deployment_id}", provider_name=f"p{deployment_id}",
                      provider_kind="fake", base_url="http://127.0.0.1:1", credential="", api_version="",
                      input_price_per_mtok=0.15 * deployment_id, output_price_per_mtok=0.6 * deployment_id,
                      context_window=None, workspace_ids=frozenset(), created=0, deployment_id=deployment_id,
                      name=f"d{deployment_id}", **fields)  # type: ignore[arg-type]


def _group(strategy: str) -> ModelGroup:
    deployments = (
        _deployment(1, weight=3, priority=0, deployment_limits={"rpm": 10**9, "tpm": 10**12}, max_in_flight=10**6),
        _deployment(2, weight=1, priority=1, deployment_limits={"rpm": 10**9}),
        _deployment(3, weight=1, priority=1, max_in_flight=10**6),
    )
    return ModelGroup(name="bench", deployments=deployments, strategy=strategy)


def _board(group: ModelGroup) -> HealthBoard:
    """A board as a busy process has it: every deployment measured, some requests in flight."""
    board = HealthBoard(WireRedis("redis://127.0.0.1:1"), BreakerPolicy())  # never connects: no sync here
    for i, d in enumerate(group.deployments):
        for _ in range(3):
            board.begin(d)
            board.end(d, "ok", ttfb_ms=100.0 + 20 * i, total_ms=900.0 + 50 * i, tokens=300)
        health = board.health(d)
        health.in_flight = 5 + i
    return board


def routing_measure(strategy: str, requests: int) -> float:
    """µs of CPU per request: candidates(), then begin() and end() on the first candidate."""
    group = _group(strategy)
    board = _board(group)
    rng = random.Random(1)
    empty: frozenset[int] = frozenset()
    start = time.process_time()
    for _ in range(requests):
        chosen = candidates(group, board, empty, rng)[0]
        board.begin(chosen)
        board.end(chosen, "ok", ttfb_ms=120.0, total_ms=950.0, tokens=300)
    return (time.process_time() - start) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="per strategy (at most 1,000,000)")
    options = parser.parse_args()
    requests = max(1, min(options.requests, MAX_REQUESTS))
    print(f"routing CPU per request, 3 deployments, {requests:,} requests per strategy (budget 50 µs)")
    for strategy in STRATEGIES:
        print(f"  {strategy:<15} {routing_measure(strategy, requests):6.2f} µs")


if __name__ == "__main__":
    main()
