"""Step 3 of the pipeline: the response cache. First the exact cache (Redis), then the
semantic cache (gateway/hotpath/semantic.py: pgvector in the workspace's schema), per workspace or
per key.

The exact key is a SHA-256 of a canonical form of everything that changes the answer: the
model and the internal (OpenAI-shaped) request with sorted keys, minus what does not
(stream flags, user, metadata). Whatever the inbound API, the same question maps to the
same entry, and a cached answer is replayed in the client's own format, as a stream when
the client asked for one.

Only complete, successful answers are stored (streamed ones once the stream ended with a
finish reason). By default only deterministic requests are cached: temperature 0 and no
tools (an omitted temperature is the upstream's default, 1.0); a workspace can opt in to
caching the others. Clients steer it per request with `x-aiproxy-cache: no-store |
no-cache | exact-only` and `x-aiproxy-cache-ttl: <seconds>`; every answer says
`x-aiproxy-cache: hit-exact | hit-semantic | miss | bypass` (and on a semantic hit
`x-aiproxy-cache-similarity`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .directory import KeyRecord
from .errors import invalid_request
from .redis_keys import exact_entry_key, exact_index_key, exact_sizes_key
from .semantic import (
    SemanticCache,
    SemanticHit,
    semantic_hit_count,
    semantic_lookup,
    semantic_partition,
    semantic_store,
    semantic_text,
)

logger = logging.getLogger("aiproxy.gateway")
SEMANTIC_BUDGET_SECONDS = 3.0

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
    schema: str = ""
    key_id: int = 0
    model: str = ""
    # semantic cache: the text to match and the partition it must match in (None: exact only)
    prompt: str | None = None
    partition: str = ""
    threshold: float | None = None
    vector: bytes | None = None  # the prompt's embedding, once computed (kept for the store)
    similarity: float | None = None  # on a semantic hit
    write: CacheWrite | None = None  # the answer to store, staged for the usage recorder's round trip


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1").strip().lower() if value is not None else None


def cache_plan(key: KeyRecord, payload: dict[str, Any], headers: dict[bytes, bytes]) -> CachePlan:
    """Whether and under which key this request may be answered from, and stored in, the cache."""
    policy = key.policy.cache
    directive = _header(headers, b"x-aiproxy-cache")
    if directive not in (None, "no-store", "no-cache", "exact-only"):
        raise invalid_request("Invalid value for header 'x-aiproxy-cache': expected no-store, no-cache or exact-only.",
                              param="x-aiproxy-cache")
    ttl_header = _header(headers, b"x-aiproxy-cache-ttl")
    ttl = policy.ttl if policy is not None else 0
    if ttl_header is not None:
        # ASCII digits only: a latin-1 header may hold "²", which str.isdigit() accepts and int() refuses
        digits = ttl_header.isascii() and ttl_header.isdigit() and len(ttl_header) <= 12
        if not digits or not 0 < int(ttl_header) <= MAX_TTL:
            raise invalid_request(f"Invalid value for header 'x-aiproxy-cache-ttl': expected seconds from 1 to {MAX_TTL}.",
                                  param="x-aiproxy-cache-ttl")
        ttl = int(ttl_header)
    deterministic = payload.get("temperature", 1) == 0 and not payload.get("tools")
    if policy is None or (not deterministic and not policy.nondeterministic):
        return CachePlan(None, False, False, 0, "bypass")
    canonical = {k: v for k, v in payload.items() if k not in UNKEYED}
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    scope = f"key{key.key_id}" if policy.scope == "key" else "ws"
    plan = CachePlan(
        key=exact_entry_key(key.schema, scope, digest),
        lookup=directive != "no-cache",
        store=directive != "no-store",
        ttl=ttl,
        status="miss" if directive != "no-cache" else "bypass",
        schema=key.schema,
        key_id=key.key_id,
        model=str(payload.get("model") or ""),
    )
    if policy.semantic and directive != "exact-only":
        plan.prompt = semantic_text(payload)
        if plan.prompt is not None:
            plan.partition = semantic_partition(scope, canonical)
            plan.threshold = policy.threshold
    return plan


async def exact_lookup(client: aioredis.Redis, plan: CachePlan) -> dict[str, Any] | None:
    """The cached OpenAI-shaped completion, if any (a Redis error is a miss, not a failure)."""
    if plan.key is None or not plan.lookup:
        return None
    try:
        raw = await client.get(plan.key)
    except RedisError:
        return None
    return _entry(raw)


def _entry(raw: bytes | str | None) -> dict[str, Any] | None:
    return orjson.loads(raw) if raw else None  # type: ignore[no-any-return]


def completion_complete(completion: dict[str, Any]) -> bool:
    """A whole, successful answer: every choice finished (stop, length or tool calls), and
    every tool call's arguments are complete JSON."""
    choices = completion.get("choices") or []
    if not choices:
        return False
    for choice in choices:
        if choice.get("finish_reason") not in ("stop", "length", "tool_calls"):
            return False
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            try:
                orjson.loads((call.get("function") or {}).get("arguments") or "")
            except orjson.JSONDecodeError:
                return False
    return True


NOT_READ = b"\x00not read"


async def cache_lookup(client: aioredis.Redis, semantic: SemanticCache, plan: CachePlan,
                       exact: bytes | None = NOT_READ) -> dict[str, Any] | None:
    """Exact first, then by meaning. Sets plan.status to what was hit. `exact` is the exact
    entry when it was already read (with the rate limits, gateway.hotpath.limits.limits_reserve);
    otherwise it is read here (one Redis GET)."""
    if exact is NOT_READ:
        cached = await exact_lookup(client, plan)
    else:
        cached = _entry(exact) if plan.key is not None and plan.lookup else None
    if cached is not None:
        plan.status = "hit-exact"
        return cached
    if plan.prompt is None or not plan.lookup:
        return None
    try:  # a slow embedding service or database costs at most this long, then the upstream answers
        async with asyncio.timeout(SEMANTIC_BUDGET_SECONDS):
            hit = await _semantic_find(semantic, plan)
    except TimeoutError:
        logger.warning("semantic cache lookup took over %.1f s; treated as a miss", SEMANTIC_BUDGET_SECONDS)
        return None
    if hit is None:
        return None
    plan.status, plan.similarity = "hit-semantic", hit.similarity
    semantic.later(semantic_hit_count(semantic, schema=plan.schema, entry_id=hit.entry_id))
    return hit.completion


async def _semantic_find(semantic: SemanticCache, plan: CachePlan) -> SemanticHit | None:
    assert plan.prompt is not None
    plan.vector = await semantic.embedder.embed(plan.prompt)
    if plan.vector is None:
        return None
    return await semantic_lookup(semantic, schema=plan.schema, partition=plan.partition, prompt=plan.prompt,
                                 vector=plan.vector, threshold=plan.threshold)


def cache_stage(semantic: SemanticCache, plan: CachePlan | None, completion: dict[str, Any] | None, cost: str) -> None:
    """Stage a complete answer for the exact cache (plan.write, written by the usage
    recorder in the round trip that records the request, gateway/hotpath/record.py) and queue it
    for the semantic cache, stored after the answer is sent (embedded then if the lookup
    did not)."""
    if plan is None:
        return
    plan.write = exact_write(plan, completion)
    if plan.write is not None and plan.prompt is not None:
        assert completion is not None
        semantic.later(_semantic_store(semantic, plan, completion, cost))


async def _semantic_store(semantic: SemanticCache, plan: CachePlan, completion: dict[str, Any], cost: str) -> None:
    vector = plan.vector if plan.vector is not None else await semantic.embedder.embed(plan.prompt or "")
    if vector is None or plan.prompt is None:
        return
    await semantic_store(semantic, schema=plan.schema, partition=plan.partition, model=plan.model, key_id=plan.key_id,
                         prompt=plan.prompt, vector=vector, completion=completion, cost=cost, ttl=plan.ttl)


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """An exact-cache entry to write: the entry, and its expiry and size in the workspace's
    index (for the eviction task, cache.services)."""

    key: str
    value: bytes
    ttl: int
    index_key: str
    sizes_key: str

    def expires_at(self) -> int:
        return int(time.time()) + self.ttl


def exact_write(plan: CachePlan, completion: dict[str, Any] | None) -> CacheWrite | None:
    """The write that stores a complete, successful answer (stop, length or tool calls;
    never an error), or None when this plan stores nothing."""
    if plan.key is None or not plan.store or not plan.ttl or completion is None or not completion_complete(completion):
        return None
    return CacheWrite(plan.key, orjson.dumps(completion), plan.ttl, exact_index_key(plan.schema),
                      exact_sizes_key(plan.schema))


async def exact_store(client: aioredis.Redis, plan: CachePlan, completion: dict[str, Any]) -> None:
    """Store an answer on its own round trip (tools, tests and benchmarks; the gateway
    stages it with cache_stage instead)."""
    write = exact_write(plan, completion)
    if write is None:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(write.key, write.value, ex=write.ttl)
            pipe.zadd(write.index_key, {write.key: write.expires_at()})
            pipe.hset(write.sizes_key, write.key, len(write.value))
            await pipe.execute()
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


def completion_assemble(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completion a stream of OpenAI-shaped chunks carried, or None if it did not end
    (a choice without a finish reason: the stream was cut)."""
    if not chunks:
        return None
    choices: dict[int, dict[str, Any]] = {}
    texts: dict[int, list[str]] = {}  # each choice's content pieces, joined once at the end
    usage = None
    for chunk in chunks:
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            index = int(part.get("index") or 0)
            choice = choices.get(index)
            if choice is None:
                choice = choices[index] = {"index": index, "finish_reason": None, "logprobs": None,
                                           "message": {"role": "assistant", "content": None, "refusal": None}}
                texts[index] = []
            message, delta = choice["message"], part.get("delta") or {}
            if delta.get("refusal") or part.get("logprobs"):
                return None  # refusals and logprobs are not reassembled: such a stream is not cached
            content = delta.get("content")
            if isinstance(content, str):
                texts[index].append(content)
            for call in delta.get("tool_calls") or ():
                calls = message.setdefault("tool_calls", [])
                position = int(call.get("index") or 0)
                while len(calls) <= position:
                    calls.append({"id": None, "type": "function", "function": {"name": None, "arguments": ""}})
                target, function = calls[position], call.get("function") or {}
                target["id"] = call.get("id") or target["id"]
                target["function"]["name"] = function.get("name") or target["function"]["name"]
                target["function"]["arguments"] += function.get("arguments") or ""
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
    if not choices or any(c["finish_reason"] is None for c in choices.values()):
        return None
    for index, pieces in texts.items():
        if pieces:
            choices[index]["message"]["content"] = "".join(pieces)
    first = chunks[0]
    body: dict[str, Any] = {"id": first.get("id"), "object": "chat.completion", "created": first.get("created"),
                            "model": first.get("model"), "choices": [choices[i] for i in sorted(choices)]}
    if usage is not None:
        body["usage"] = usage
    return body
