"""Step 3b of the pipeline: the semantic cache (pgvector in the workspace's own schema).

What is embedded: the text of the last user turn, and nothing else. Everything before it
(system prompt, earlier turns, tool results), the model and every parameter that changes
the answer must match exactly: their SHA-256 is the entry's `partition`, and a lookup only
searches its own partition. Why: the question the user is asking now is what a paraphrase
changes; a long system prompt or history embedded along with it would dominate the vector
and make different questions look alike, and an answer given under other instructions or
another history is not the same answer. A last turn longer than the model's window (256
tokens) is not embedded at all: truncated, two different long prompts would look alike.

A lookup embeds the text (gateway/hotpath/embedder.py: one shared, batching model process),
takes the nearest entries above the threshold with the HNSW index, and serves the first
that passes two checks: the hand-written hard rules of gateway/hotpath/semantic_guard.py (same
numbers, entities, units, direction, negation...), then the learned verifier
(gateway/hotpath/verifier.py, run by the embedding service) that aligns the two prompts' words. The table is read and written with raw SQL on this process's own small pool:
no Django ORM on the hot path. Writes (new entries, hit counters) run after the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.errors import Error as DatabaseError
from psycopg_pool import AsyncConnectionPool

from .embedder import EmbedderClient
from .semantic_guard import hard_reject

logger = logging.getLogger("aiproxy.gateway")

CANDIDATES = 4  # nearest entries the checks may look at
STATEMENT_TIMEOUT_MS = 500  # a lookup blocked by a lock or a slow server is a miss, not a wait
DATABASE_RETRY_SECONDS = 5.0  # after a failure, lookups skip the database this long
MAX_BACKGROUND = 256  # pending cache writes per process; beyond this new entries are dropped
CANDIDATE_FLOOR = 0.7  # cosine a candidate needs before the checks look at it
EF_SEARCH = 200  # HNSW candidate list: recall of the nearest entry vs exact search 0.99 at 100,000 entries (benchmarks/)
TABLE = "cache_semanticentry"


def semantic_text(payload: dict[str, Any]) -> str | None:
    """The last user turn's text, or None when the request is not a question to match by
    meaning (last message not from the user, images or audio in it, no text)."""
    messages = payload.get("messages") or []
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        text = "\n".join(str(p.get("text") or "") for p in content)
    else:
        return None
    text = text.strip()
    return text or None


def semantic_partition(scope: str, canonical: dict[str, Any]) -> str:
    """What must match exactly: scope, model, parameters and the conversation before the
    last user turn (`canonical` is the exact cache's canonical request)."""
    context = {**canonical, "messages": canonical.get("messages", [])[:-1], "_scope": scope}
    return hashlib.sha256(orjson.dumps(context, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class SemanticHit:
    entry_id: int
    completion: dict[str, Any]
    similarity: float
    prompt: str


def _vector(data: bytes) -> Any:
    return np.frombuffer(data, dtype="<f4")


class SemanticCache:
    """Per-process (per event loop): the embedder client and a small PostgreSQL pool."""

    def __init__(self) -> None:
        from .embedder import socket_path

        self.embedder = EmbedderClient(socket_path(), timeout=settings.GATEWAY_EMBEDDER_TIMEOUT)
        self.verifier_threshold = verifier_threshold()
        self.pool: AsyncConnectionPool | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.down_until = 0.0  # the database failed: skip it until then

    async def _pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            self.pool = AsyncConnectionPool(
                settings.DATABASE_URL, min_size=1, max_size=settings.GATEWAY_DB_POOL_SIZE, open=False,
                kwargs={"autocommit": True, "prepare_threshold": 1,
                        "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
                configure=_configure, timeout=1,
            )
            await self.pool.open()
        return self.pool

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, error: BaseException) -> None:
        self.down_until = time.monotonic() + DATABASE_RETRY_SECONDS
        logger.warning("semantic cache database unavailable (%s); skipped for %.0f s", type(error).__name__,
                       DATABASE_RETRY_SECONDS)

    def later(self, work: Any) -> None:
        """Run a write after the answer; keep a reference so it is not collected mid-way.
        Under a backlog the write is dropped: a lost cache entry, never a lost answer."""
        if len(self.background) >= MAX_BACKGROUND:
            work.close()
            return
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        await self.embedder.close()
        if self.pool is not None:
            await self.pool.close()


async def _configure(connection: Any) -> None:
    await register_vector_async(connection)  # vectors go over the wire in binary
    # relaxed_order: a filtered HNSW scan goes on until it has found LIMIT rows of the partition
    await connection.execute(f"SET hnsw.ef_search = {EF_SEARCH}; SET hnsw.iterative_scan = relaxed_order")


def verifier_threshold() -> float:
    """The probability the verifier must give (chosen when it was trained; see its weights file)."""
    import json

    from .verifier import WEIGHTS

    return float(json.loads(WEIGHTS.read_text())["threshold"])


def _table(schema: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))


async def semantic_lookup(cache: SemanticCache, *, schema: str, partition: str, prompt: str, vector: bytes,
                          threshold: float | None, guarded: bool = True) -> SemanticHit | None:
    """The nearest cached answer the guard accepts, or None. A database error is a miss.
    (`guarded=False`: plain cosine, for `manage.py cache_eval --plain-cosine` only.)"""
    floor = threshold if threshold is not None else CANDIDATE_FLOOR
    if not cache.available():
        return None
    query = sql.SQL(
        "SELECT id, prompt, completion, 1 - (embedding <=> %(v)s) AS similarity FROM {} "
        "WHERE partition = %(p)s AND expires_at > now() ORDER BY embedding <=> %(v)s LIMIT %(k)s"
    ).format(_table(schema))
    try:
        pool = await cache._pool()
        async with pool.connection() as connection:
            cursor = await connection.execute(query, {"v": _vector(vector), "p": partition, "k": CANDIDATES})
            rows = await cursor.fetchall()
    except (DatabaseError, OSError, TimeoutError) as error:
        cache.failed(error)
        return None
    for entry_id, cached_prompt, completion, similarity in sorted(rows, key=lambda r: -r[3]):
        if similarity < floor:
            break
        if not guarded or await semantic_verify(cache, cached_prompt, prompt, float(similarity)):
            return SemanticHit(entry_id, completion, float(similarity), cached_prompt)
    return None


async def semantic_verify(cache: SemanticCache, cached: str, query: str, similarity: float) -> bool:
    """The hard rules, then the learned verifier; an unavailable verifier is a miss."""
    if cached == query:
        return True
    try:
        if hard_reject(cached, query) is not None:
            return False
    except Exception:  # a bug in the rules must cost a miss, not the request
        logger.exception("semantic guard failed; treated as a miss")
        return False
    probability = await cache.embedder.verify(cached, query, similarity)
    return probability is not None and probability >= cache.verifier_threshold


async def semantic_hit_count(cache: SemanticCache, *, schema: str, entry_id: int) -> None:
    query = sql.SQL("UPDATE {} SET hits = hits + 1, last_hit_at = now() WHERE id = %s").format(_table(schema))
    if not cache.available():
        return
    try:
        pool = await cache._pool()
        async with pool.connection() as connection:
            await connection.execute(query, (entry_id,))
    except (DatabaseError, OSError, TimeoutError):
        pass


async def semantic_store(cache: SemanticCache, *, schema: str, partition: str, model: str, key_id: int, prompt: str,
                         vector: bytes, completion: dict[str, Any], cost: str, ttl: int) -> None:
    """Store a complete answer. A failure loses a cache entry, never an answer."""
    body = orjson.dumps(completion).decode()
    query = sql.SQL(
        "INSERT INTO {} (partition, model, key_id, prompt, embedding, completion, cost, size_bytes, created_at, "
        "expires_at, hits) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, now(), "
        "now() + make_interval(secs => %s), 0)"
    ).format(_table(schema))
    size = len(body) + len(prompt.encode()) + len(vector)
    if not cache.available():
        return
    try:
        pool = await cache._pool()
        async with pool.connection() as connection:
            await connection.execute(query, (partition, model, key_id, prompt, _vector(vector), body, cost,
                                             size, ttl))
    except (DatabaseError, OSError, TimeoutError) as error:
        logger.warning("semantic cache entry not stored (%s)", type(error).__name__)
