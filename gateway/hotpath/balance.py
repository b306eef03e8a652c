"""Load balancing inside a model group: the order in which to try its deployments.

Runs for every request, on the health board's in-process view (no I/O): a few
comparisons and one random number per deployment (benchmarks/routing_cpu.py measures it
with begin() and end()).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .directory import Deployment, ModelGroup
from .health import HealthBoard

_random = random.Random()

Order = Callable[[list[Deployment], HealthBoard, random.Random], list[Deployment]]


def _weighted_key(deployment: Deployment, rng: random.Random) -> float:
    """Sorting by this, highest first, is a weighted draw without replacement (each next
    deployment's chance proportional to its weight among those left: Efraimidis-Spirakis).
    A weight of 0 or less comes after every positive one."""
    weight = deployment.weight
    return rng.random() ** (1.0 / weight) if weight > 0 else -rng.random()


def _weighted(usable: list[Deployment], board: HealthBoard, rng: random.Random) -> list[Deployment]:
    return sorted(usable, key=lambda d: _weighted_key(d, rng), reverse=True)


def _least_busy(usable: list[Deployment], board: HealthBoard, rng: random.Random) -> list[Deployment]:
    return sorted(usable, key=lambda d: (board.health(d).in_flight, rng.random()))


def _lowest_latency(usable: list[Deployment], board: HealthBoard, rng: random.Random) -> list[Deployment]:
    def key(d: Deployment) -> tuple[float, float]:
        ttfb = board.health(d).ttfb_ms
        return (-1.0 if ttfb is None else ttfb, rng.random())  # unmeasured first, so each gets measured

    return sorted(usable, key=key)


def _lowest_cost(usable: list[Deployment], board: HealthBoard, rng: random.Random) -> list[Deployment]:
    return sorted(usable, key=lambda d: (d.input_price_per_mtok + d.output_price_per_mtok, rng.random()))


def _priority(usable: list[Deployment], board: HealthBoard, rng: random.Random) -> list[Deployment]:
    return sorted(usable, key=lambda d: (d.priority, -_weighted_key(d, rng)))


ORDERS: dict[str, Order] = {
    "weighted": _weighted,
    "least_busy": _least_busy,
    "lowest_latency": _lowest_latency,
    "lowest_cost": _lowest_cost,
    "priority": _priority,
}


def candidates(group: ModelGroup, board: HealthBoard, exclude: frozenset[int] | set[int] = frozenset(),
               rng: random.Random | None = None) -> list[Deployment]:
    """The group's usable deployments (board.usable), not in `exclude` (deployment ids
    already tried by this request), in the order the group's strategy gives:

    - weighted: random, each deployment's chance proportional to its weight (the rest of
      the list is the same draw without replacement);
    - least_busy: fewest in flight (ties: random);
    - lowest_latency: lowest moving-average time to first byte (unmeasured ones first, so
      each gets measured; ties: random);
    - lowest_cost: lowest input + output price per Mtok (ties: random);
    - priority: lowest priority number first (ties: weighted random).

    An open circuit whose probe a sync gave to this process comes first, whatever the
    strategy: this request is its half-open probe (on failure the caller goes on to the
    next). An unknown strategy is weighted. Empty when no deployment is usable."""
    usable = [d for d in group.deployments if d.deployment_id not in exclude and board.usable(d)]
    if len(usable) > 1:
        usable = ORDERS.get(group.strategy, _weighted)(usable, board, rng or _random)
    if board.granted_ids:
        probes = [d for d in usable if d.deployment_id in board.granted_ids]
        if probes:
            usable = probes[:1] + [d for d in usable if d is not probes[0]]
    return usable
