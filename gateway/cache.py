"""Step 3 of the pipeline: the exact response cache (Redis), per workspace or per key.

The key is a SHA-256 of a canonical form of everything that changes the answer: the
model and the internal (OpenAI-shaped) request with sorted keys, minus what does not
(stream flags, user, metadata). Whatever the inbound API, the same question maps to
the same entry, and a cached answer is replayed in the client's own format, as a
stream when the client asked for one.

Only complete, successful answers are stored. By default only deterministic requests
are cached: temperature 0 and no tools (an omitted temperature is the upstream's
default, 1.0); a workspace can opt in to caching the others. Clients steer it per
request with `x-aiproxy-cache: no-store | no-cache | exact-only` and
`x-aiproxy-cache-ttl: <seconds>`; every answer says `x-aiproxy-cache: hit-exact | miss |
bypass`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .directory import KeyRecord
from .errors import invalid_request

# fields that do not change the answer
UNKEYED = frozenset({"stream", "stream_options", "user", "metadata", "store", "_ignored", "service_tier"})
MAX_TTL = 30 * 86400


@dataclass(slots=True)
class CachePlan:
    key: str | None  # None: no cache at all for this request
    lookup: bool
    store: bool
    ttl: int
    status: str = "miss"  # what the answer's x-aiproxy-cache header says


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip().lower() if value is not None else None


def cache_plan(key: KeyRecord, payload: dict[str, Any], headers: dict[bytes, bytes]) -> CachePlan:
    """Whether and under which key this request may be answered from, and stored in, the cache."""
    policy = (key.policy or {}).get("cache")
    directive = _header(headers, b"x-aiproxy-cache")
    if directive not in (None, "no-store", "no-cache", "exact-only"):
        raise invalid_request("Invalid value for header 'x-aiproxy-cache': expected no-store, no-cache or exact-only.",
                              param="x-aiproxy-cache")
    ttl_header = _header(headers, b"x-aiproxy-cache-ttl")
    ttl = int(policy["ttl"]) if policy else 0
    if ttl_header is not None:
        if not ttl_header.isdigit() or not 0 < int(ttl_header) <= MAX_TTL:
            raise invalid_request(f"Invalid value for header 'x-aiproxy-cache-ttl': expected seconds from 1 to {MAX_TTL}.",
                                  param="x-aiproxy-cache-ttl")
        ttl = int(ttl_header)
    deterministic = payload.get("temperature", 1) == 0 and not payload.get("tools")
    if not policy or (not deterministic and not policy.get("nondeterministic")):
        return CachePlan(None, False, False, 0, "bypass")
    canonical = {k: v for k, v in payload.items() if k not in UNKEYED}
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    scope = f"key{key.key_id}" if policy.get("scope") == "key" else "ws"
    return CachePlan(
        key=f"aip:cache:{key.schema}:{scope}:{digest}",
        lookup=directive != "no-cache",
        store=directive != "no-store",
        ttl=ttl,
        status="miss" if directive != "no-cache" else "bypass",
    )


async def exact_lookup(client: aioredis.Redis, plan: CachePlan) -> dict[str, Any] | None:
    """The cached OpenAI-shaped completion, if any (a Redis error is a miss, not a failure)."""
    if plan.key is None or not plan.lookup:
        return None
    try:
        raw = await client.get(plan.key)
    except RedisError:
        return None
    return orjson.loads(raw) if raw else None  # type: ignore[no-any-return]


async def exact_store(client: aioredis.Redis, plan: CachePlan, completion: dict[str, Any]) -> None:
    """Store a complete, successful answer (stop, length or tool calls; never an error)."""
    if plan.key is None or not plan.store or not plan.ttl:
        return
    choices = completion.get("choices") or []
    if not choices or any(c.get("finish_reason") not in ("stop", "length", "tool_calls") for c in choices):
        return
    try:
        await client.set(plan.key, orjson.dumps(completion), ex=plan.ttl)
    except RedisError:
        pass


def replay_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A cached completion as the chunks a stream of it would have had."""
    out: list[dict[str, Any]] = []
    base = {"id": completion.get("id"), "object": "chat.completion.chunk", "created": completion.get("created"),
            "model": completion.get("model")}
    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        out.append({**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}]})
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            out.append({**base, "choices": [{"index": index, "logprobs": None, "finish_reason": None, "delta": {
                "tool_calls": [{"index": i, "id": call.get("id"), "type": "function",
                                "function": {"name": function.get("name"), "arguments": function.get("arguments", "")}}]}}]})
        out.append({**base, "choices": [{"index": index, "delta": {}, "logprobs": None,
                                         "finish_reason": choice.get("finish_reason") or "stop"}]})
    out.append({**base, "choices": [], "usage": completion.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0,
                                                                        "total_tokens": 0}})
    return out
