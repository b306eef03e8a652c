"""Step 7 of the pipeline: the usage event goes to a Redis stream; the analytics
worker persists it (analytics.tasks.usage_flush)."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from .limits import SETTLE, script_for

USAGE_STREAM = "aip:usage"


@dataclass(slots=True)
class UsageEvent:
    schema: str
    key_id: int
    key_name: str
    endpoint: str
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: str = "0"
    latency_ms: int = 0
    status_code: int = 200
    cache_status: str = "miss"
    stream: bool = False
    usage_estimated: bool = False
    client_disconnected: bool = False
    error_type: str = ""
    ts: float = field(default_factory=time.time)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def usage_cost(input_tokens: int, output_tokens: int, input_price: float, output_price: float) -> str:
    return f"{(input_tokens * input_price + output_tokens * output_price) / 1_000_000:.8f}"


async def usage_event_record(
    client: aioredis.Redis, event: UsageEvent, settle: tuple[list[str], list[Any]] | None = None
) -> None:
    """Queue the event; with `settle` (gateway.limits.settle_args), settle its reservation
    and spend counters in the same round trip."""
    if settle is None:
        await client.xadd(USAGE_STREAM, {"e": orjson.dumps(asdict(event))})
        return
    keys, args = settle
    async with client.pipeline(transaction=False) as pipe:
        await script_for(client, SETTLE)(keys=keys, args=args, client=pipe)
        pipe.xadd(USAGE_STREAM, {"e": orjson.dumps(asdict(event))})
        await pipe.execute()
