"""Load balancing inside a model group: the order in which to try its deployments.

INTERFACE STUB (issue 16): the implementation fills this in.
"""

from __future__ import annotations

import random

from .directory import Deployment, ModelGroup
from .health import HealthBoard


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

    Empty when no deployment is usable."""
    return [d for d in group.deployments if d.deployment_id not in exclude and board.usable(d)]
