"""Response cache benchmark (issue 5, point 8): exact-hit cost inside the gateway, semantic
lookup latency with a large workspace, and HNSW recall against exact search.

    make bench-cache                      # 100,000 entries, 50 concurrent lookups
    .venv/bin/python benchmarks/semantic_cache.py --entries 20000 --lookups 500

Runs on its own embedded PostgreSQL and Redis (.aiproxy/bench), starts the real embedding
service, fills one workspace's semantic table with real MiniLM embeddings of generated
prompts (cached on disk after the first run), and drives lookups through the gateway's own
functions: `cache_plan` + `cache_lookup` (embedding over the service's socket, HNSW search
in the workspace's schema, the guard). Prints a table and writes
benchmarks/results/semantic_cache.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AIPROXY_DATA_DIR", str(ROOT / ".aiproxy" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJECTS = ["a Python list", "a JSON file", "a SQL table", "a Docker image", "a git branch", "a React component",
            "a Kubernetes pod", "an Excel sheet", "a PDF", "a CSV file", "a Bash script", "a REST API", "a Redis key",
            "a PostgreSQL index", "a Rust struct", "a Go channel", "a Java class", "a CSS grid", "an S3 bucket",
            "a cron job", "a TypeScript type", "a pandas DataFrame", "a NumPy array", "an HTML form", "a regex"]
VERBS = ["create", "delete", "rename", "sort", "debug", "test", "optimise", "document", "copy", "merge", "split",
         "validate", "serialise", "compress", "encrypt", "monitor", "deploy", "profile", "refactor", "version"]
TOPICS = ["the French Revolution", "photosynthesis", "black holes", "the Roman Empire", "inflation", "vaccines",
          "climate change", "the stock market", "quantum computing", "the Cold War", "plate tectonics", "DNA",
          "the Renaissance", "machine learning", "volcanoes", "the Silk Road", "jazz", "the immune system",
          "electric cars", "coral reefs", "the printing press", "supply chains", "neural networks", "tides"]
AUDIENCES = ["a child", "a teenager", "a beginner", "an expert", "my grandmother", "a manager", "a student"]
CITIES = ["Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Toronto", "Mumbai", "Sydney", "Nairobi", "Berlin", "Seoul",
          "Mexico City", "Istanbul", "Lisbon", "Bangkok", "Chicago", "Dublin", "Hanoi", "Prague", "Santiago"]
LANGUAGES = ["French", "German", "Spanish", "Japanese", "Korean", "Hindi", "Arabic", "Portuguese", "Italian",
             "Dutch", "Polish", "Turkish", "Swahili", "Greek", "Czech"]
THINGS = ["vegetarian restaurants", "museums", "day trips", "hiking trails", "street food", "coffee shops",
          "bookshops", "markets", "beaches", "jazz bars", "parks", "hotels for families"]
TEMPLATES = [
    lambda r: f"How do I {r.choice(VERBS)} {r.choice(SUBJECTS)}?",
    lambda r: f"What is the best way to {r.choice(VERBS)} {r.choice(SUBJECTS)} in production?",
    lambda r: f"Explain {r.choice(TOPICS)} to {r.choice(AUDIENCES)} in {r.randint(2, 12)} sentences.",
    lambda r: f"Write a {r.choice(['haiku', 'limerick', 'short poem', 'tweet', 'slogan'])} about {r.choice(TOPICS)}.",
    lambda r: f"Recommend {r.randint(2, 10)} {r.choice(THINGS)} in {r.choice(CITIES)}.",
    lambda r: f"Plan a {r.randint(1, 14)}-day trip to {r.choice(CITIES)} on a {r.choice(['tight', 'moderate', 'generous'])} budget.",
    lambda r: f"Convert {r.randint(1, 999)} {r.choice(['km', 'miles', 'kg', 'pounds', 'litres', 'gallons'])} to "
              f"{r.choice(['metres', 'feet', 'grams', 'ounces', 'cups', 'yards'])}.",
    lambda r: f"What caused {r.choice(TOPICS)} and what were its effects on {r.choice(CITIES)}?",
    lambda r: f"Summarise the pros and cons of {r.choice(TOPICS)} for {r.choice(AUDIENCES)}.",
    lambda r: f"Why does my code fail when I {r.choice(VERBS)} {r.choice(SUBJECTS)} twice in a row?",
    lambda r: f"Compare {r.choice(CITIES)} and {r.choice(CITIES)} for {r.choice(THINGS)}.",
    lambda r: f"Give me a {r.randint(3, 30)}-minute workout for {r.choice(AUDIENCES)} at home.",
    lambda r: f"How much does a {r.randint(1, 20)}-night stay in {r.choice(CITIES)} cost in {r.randint(2000, 2030)}?",
    lambda r: f"Write {r.randint(2, 12)} interview questions about {r.choice(TOPICS)} for {r.choice(AUDIENCES)}.",
    lambda r: f"I have {r.randint(2, 500)} rows in {r.choice(SUBJECTS)}; how do I {r.choice(VERBS)} them in "
              f"{r.randint(2, 60)} seconds?",
    lambda r: f"Translate '{r.choice(TOPICS)}' into {r.choice(LANGUAGES)} and {r.choice(LANGUAGES)}.",
    lambda r: f"What did {r.choice(CITIES)} look like in {r.randint(1500, 2020)}, and how did {r.choice(TOPICS)} change it?",
]


def prompts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    for _ in range(count * 50):  # bounded: the templates hold millions of distinct prompts
        text = rng.choice(TEMPLATES)(rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
            if len(out) == count:
                return out
    raise SystemExit(f"could not generate {count} distinct prompts")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 3), "p90_ms": round(percentile(values, 90), 3),
            "p99_ms": round(percentile(values, 99), 3), "max_ms": round(max(values), 3), "n": len(values)}


def setup_workspace() -> Any:
    import django

    django.setup()
    from django.core.management import call_command

    from tenants.models import Workspace

    call_command("migrate_schemas", "--shared", verbosity=0)
    call_command("migrate_schemas", "--tenant", verbosity=0)
    workspace = Workspace.objects.filter(slug="bench").first()
    if workspace is None:
        workspace = Workspace(schema_name="ws_bench", slug="bench", name="Benchmark")
        workspace.save()
    return workspace


def corpus(entries: int, data_dir: Path) -> tuple[list[str], Any]:
    import numpy as np

    from gateway.hotpath.embedder import EmbeddingModel

    path = data_dir / f"corpus-{entries}.npy"
    texts = prompts(entries, seed=1)
    if path.exists():
        return texts, np.load(path)
    model = EmbeddingModel()
    started = time.monotonic()
    vectors = np.vstack([model.encode(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    print(f"embedded {entries} prompts in {time.monotonic() - started:.0f} s", flush=True)
    np.save(path, vectors)
    return texts, vectors


def table_fill(schema: str, partition: str, texts: list[str], vectors: Any) -> None:
    """Load the entries (COPY) and build the HNSW index once, as a big workspace would have it."""
    import psycopg
    from django.conf import settings
    from pgvector.psycopg import register_vector

    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(f'SET search_path TO "{schema}", public')
        row = conn.execute("SELECT count(*) FROM cache_semanticentry WHERE partition = %s", (partition,)).fetchone()
        count = row[0] if row else 0
        if count == len(texts):
            return
        conn.execute("TRUNCATE cache_semanticentry")
        conn.execute("DROP INDEX IF EXISTS semantic_entry_embedding")
        started = time.monotonic()
        completion = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "cached"},
                                              "finish_reason": "stop"}]})
        with conn.cursor().copy("COPY cache_semanticentry (partition, model, key_id, prompt, embedding, completion, cost, "
                                "size_bytes, created_at, expires_at, hits) FROM STDIN") as copy:
            for text, vector in zip(texts, vectors, strict=True):
                copy.write_row((partition, "bench-model", 1, text, vector, completion, 0, 2000,
                                "2026-01-01", "2999-01-01", 0))
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("CREATE INDEX semantic_entry_embedding ON cache_semanticentry "
                     "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)")
        conn.execute("ANALYZE cache_semanticentry")
        print(f"loaded {len(texts)} entries and built the HNSW index in {time.monotonic() - started:.0f} s", flush=True)


async def bench(args: argparse.Namespace, workspace: Any, texts: list[str], vectors: Any) -> dict[str, Any]:
    import numpy as np
    import redis.asyncio as aioredis
    from django.conf import settings

    from gateway.hotpath.directory import KeyRecord
    from gateway.hotpath.key_policy import CachePolicy, KeyPolicy
    from gateway.hotpath.response_cache import cache_lookup, cache_plan, exact_store
    from gateway.hotpath.semantic import SemanticCache, semantic_lookup

    policy = KeyPolicy(cache=CachePolicy(ttl=3600, scope="workspace", semantic=True))
    key = KeyRecord(key_hash="", workspace_id=workspace.pk, schema=workspace.schema_name, slug="bench", key_id=1,
                    key_name="bench", revoked=False, policy=policy)
    queries = prompts(args.lookups, seed=2)
    cache = SemanticCache()
    redis = aioredis.Redis.from_url(settings.REDIS_URL)
    results: dict[str, Any] = {"entries": len(texts), "concurrency": args.concurrency}

    def request(text: str) -> dict[str, Any]:
        return {"model": "bench-model", "messages": [{"role": "user", "content": text}], "temperature": 0}

    # 1. exact hit: canonical hash + one Redis GET, the whole cost of a hit's cache step
    plan = cache_plan(key, request("exact hit probe"), {})
    await exact_store(redis, plan, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                                 "finish_reason": "stop"}]})
    exact = []
    for _ in range(2000):
        started = time.perf_counter()
        hit_plan = cache_plan(key, request("exact hit probe"), {})
        assert await cache_lookup(redis, cache, hit_plan) is not None
        exact.append((time.perf_counter() - started) * 1000)
    results["exact_hit"] = summary(exact)

    # 2. HNSW recall of the nearest entry against exact search (numpy, same vectors)
    probe = [await cache.embedder.embed(q) for q in queries[: args.recall_queries]]
    partition = cache_plan(key, request("x"), {}).partition
    agree = 0
    for text, vector in zip(queries, probe, strict=False):
        assert vector is not None, "the embedding service did not answer"
        exact_best = float(np.max(vectors @ np.frombuffer(vector, "<f4")))
        hit = await semantic_lookup(cache, schema=key.schema, partition=partition, prompt=text, vector=vector,
                                    threshold=-1.0, guarded=False)
        agree += hit is not None and abs(hit.similarity - exact_best) < 1e-4
    results["hnsw_recall_at_1"] = round(agree / len(probe), 4)

    # 3. a whole semantic lookup (embed over the socket + HNSW search + guard), N at once
    async def lookups(concurrency: int, total: int) -> list[float]:
        latencies: list[float] = []
        pending = iter(queries[:total])

        async def worker() -> None:
            for text in pending:
                started = time.perf_counter()
                await cache_lookup(redis, cache, cache_plan(key, request(text), {}))
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies

    await lookups(4, 100)  # warm the pool and the embedder
    results["semantic_lookup_1"] = summary(await lookups(1, min(300, args.lookups)))
    results[f"semantic_lookup_{args.concurrency}"] = summary(await lookups(args.concurrency, args.lookups))

    # the search alone (vectors already computed), same concurrency
    search: list[float] = []
    vectors_iter = iter(list(zip(queries, probe, strict=False)) * 4)

    async def searcher() -> None:
        for text, vector in vectors_iter:
            assert vector is not None
            started = time.perf_counter()
            await semantic_lookup(cache, schema=key.schema, partition=partition, prompt=text, vector=vector, threshold=None)
            search.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(searcher() for _ in range(args.concurrency)))
    results[f"search_only_{args.concurrency}"] = summary(search)
    await cache.close()
    await redis.aclose()
    return results


def main() -> None:
    import logging

    logging.basicConfig(level=logging.DEBUG if os.environ.get("BENCH_DEBUG") else logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--recall-queries", type=int, default=500)
    args = parser.parse_args()
    workspace = setup_workspace()
    from django.conf import settings

    from aiproxy_site.embedded import data_dir

    texts, vectors = corpus(args.entries, data_dir())
    from gateway.hotpath.directory import KeyRecord
    from gateway.hotpath.key_policy import CachePolicy, KeyPolicy
    from gateway.hotpath.response_cache import cache_plan

    policy = KeyPolicy(cache=CachePolicy(ttl=3600, scope="workspace", semantic=True))
    key = KeyRecord(key_hash="", workspace_id=workspace.pk, schema=workspace.schema_name, slug="bench", key_id=1,
                    key_name="bench", revoked=False, policy=policy)
    partition = cache_plan(key, {"model": "bench-model", "messages": [{"role": "user", "content": "x"}],
                                 "temperature": 0}, {}).partition
    table_fill(workspace.schema_name, partition, texts, vectors)
    socket = Path(settings.GATEWAY_EMBEDDER_SOCKET)
    socket.unlink(missing_ok=True)
    embedder = subprocess.Popen([sys.executable, "-m", "gateway.hotpath.embedder", "--socket", str(socket)], cwd=ROOT)
    try:
        while not socket.exists():
            if embedder.poll() is not None:
                raise SystemExit("the embedding service did not start")
            time.sleep(0.2)
        results = asyncio.run(bench(args, workspace, texts, vectors))
    finally:
        embedder.terminate()
        embedder.wait(10)
    results["cpu"] = os.cpu_count()
    out = ROOT / "benchmarks" / "results" / "semantic_cache.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nResponse cache, {results['entries']:,} semantic entries in one workspace partition")
    print(f"{'measure':<34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'n':>7}")
    for name, row in results.items():
        if isinstance(row, dict):
            print(f"{name:<34}{row['p50_ms']:>9.2f}{row['p90_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['max_ms']:>9.2f}{row['n']:>7}")
    print(f"{'HNSW recall@1 vs exact search':<34}{results['hnsw_recall_at_1']:>9.4f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
