"""Per-process (per event loop) clients the hot path shares: Redis, the upstream HTTP
pool, the hot directory, the semantic cache and the deployments' health board."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from django.conf import settings

from .directory import Directory
from .health import HealthBoard
from .record import usage_replies_wait
from .rediswire import WireRedis
from .semantic import SemanticCache
from .upstream import Pool


class GatewayState:
    def __init__(self) -> None:
        # bounded waits: an unavailable Redis fails a request fast instead of hanging it
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL, max_connections=256, socket_timeout=2,
                                             socket_connect_timeout=2)
        # the two round trips of every request (limits, then record) go over this one
        self.wire = WireRedis(settings.REDIS_URL, timeout=2, connect_timeout=2)
        self.directory = Directory(self.redis)
        # one pool serves every workspace (it keeps no cookies); gateway/hotpath/upstream.py says why not aiohttp
        self.session = Pool(connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT,
                            read_timeout=settings.GATEWAY_UPSTREAM_TIMEOUT)
        self.semantic = SemanticCache()
        self.board = HealthBoard(self.wire)
        # behind a trusted proxy the workspace host is X-Forwarded-Host (as the web side's get_host reads it)
        self.trusted_proxy = bool(settings.TRUSTED_PROXY)


_states: dict[int, GatewayState] = {}


def state_current() -> GatewayState:
    loop_id = id(asyncio.get_running_loop())
    state = _states.get(loop_id)
    if state is None:
        state = _states[loop_id] = GatewayState()
        state.board.start()
    return state


async def gateway_shutdown() -> None:
    """Close this event loop's upstream pool and Redis clients (server shutdown, tests)."""
    state = _states.pop(id(asyncio.get_running_loop()), None)
    if state is not None:
        await state.board.close()
        await usage_replies_wait()
        await state.semantic.close()
        await state.session.close()
        await state.wire.aclose()
        await state.redis.aclose()
