"""`manage.py cache_eval --pairs FILE.jsonl`: how well the semantic cache tells paraphrases
from near misses, measured through the real cache path.

Each line is {"cached": str, "query": str, "should_hit": bool}. For every pair the cached
prompt is stored as a real entry (embedded by the same model code the embedding service
runs, written by the gateway's own `semantic_store` into a workspace's table), then the
query goes through the gateway's `cache_plan` and `semantic_lookup` (HNSW search, the hard
rules, then the learned verifier, asked over the socket of an embedding service this
command runs itself on the model it loaded). Each pair gets a model name of its own, so a query can only find its own pair's
entry. The entries are deleted afterwards. Prints one JSON line: recall (share of
should_hit pairs that hit), false_hit_rate (share of the others that hit), n.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django_tenants.utils import schema_context

from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.embedder import EmbedderClient, EmbeddingModel, serve
from gateway.hotpath.key_policy import CachePolicy, KeyPolicy
from gateway.hotpath.response_cache import cache_plan
from gateway.hotpath.semantic import SemanticCache, semantic_lookup, semantic_store
from tenants.models import Workspace

EVAL_TTL = 3600


def _pairs(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not (isinstance(row, dict) and isinstance(row.get("cached"), str) and isinstance(row.get("query"), str)
                and isinstance(row.get("should_hit"), bool)):
            raise CommandError(f'{path}:{number}: expected {{"cached": str, "query": str, "should_hit": bool}}')
        rows.append(row)
    if not rows:
        raise CommandError(f"{path}: no pairs")
    return rows


class Command(BaseCommand):
    help = "Measure the semantic cache's recall and false-hit rate on labelled prompt pairs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--pairs", required=True, type=Path, help='JSONL: {"cached", "query", "should_hit"} per line')
        parser.add_argument("--workspace", help="slug of the workspace whose table is used (default: the first one)")
        parser.add_argument("--threshold", type=float, default=None, help="cosine threshold (default: the gateway's)")
        parser.add_argument("--plain-cosine", action="store_true", help="no guard: the nearest entry above the threshold")
        parser.add_argument("--errors", action="store_true", help="list the misjudged pairs on stderr")

    def handle(self, *args: Any, **options: Any) -> None:
        pairs = _pairs(options["pairs"])
        workspace = self._workspace(options.get("workspace"))
        model = EmbeddingModel()
        texts = [p["cached"] for p in pairs] + [p["query"] for p in pairs]
        vectors = model.embed(texts)
        partitions: list[str] = []
        try:
            hits = asyncio.run(self._run(workspace, pairs, vectors, options["threshold"], not options["plain_cosine"],
                                         partitions, model))
        finally:
            if partitions:
                with schema_context(workspace.schema_name), connection.cursor() as cursor:
                    cursor.execute("DELETE FROM cache_semanticentry WHERE partition = ANY(%s)", [partitions])
        positives = [hit for hit, pair in zip(hits, pairs, strict=True) if pair["should_hit"]]
        negatives = [hit for hit, pair in zip(hits, pairs, strict=True) if not pair["should_hit"]]
        result = {
            "recall": round(sum(positives) / len(positives), 4) if positives else None,
            "false_hit_rate": round(sum(negatives) / len(negatives), 4) if negatives else None,
            "n": len(pairs),
        }
        if options["errors"]:
            for hit, pair in zip(hits, pairs, strict=True):
                if hit != pair["should_hit"]:
                    label = "false hit" if hit else "missed"
                    print(f"{label}: {pair['cached']!r} / {pair['query']!r}", file=sys.stderr)
        self.stdout.write(json.dumps(result))

    def _workspace(self, slug: str | None) -> Workspace:
        workspaces = Workspace.objects.exclude(schema_name="public").order_by("pk")
        workspace = workspaces.filter(slug=slug).first() if slug else workspaces.first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}." if slug else "No workspace yet: run `make run` or sign up first.")
        return workspace

    async def _run(self, workspace: Workspace, pairs: list[dict[str, Any]], vectors: list[bytes | None],
                   threshold: float | None, guarded: bool, partitions: list[str], model: EmbeddingModel) -> list[bool]:
        run = uuid.uuid4().hex[:12]
        policy = KeyPolicy(cache=CachePolicy(ttl=EVAL_TTL, scope="workspace", semantic=True, threshold=threshold))
        key = KeyRecord(key_hash="", workspace_id=workspace.pk, schema=workspace.schema_name, slug=workspace.slug,
                        key_id=0, key_name="cache_eval", revoked=False, policy=policy)
        cache = SemanticCache()
        hits = []
        directory = tempfile.mkdtemp(prefix="aiproxy-eval-")
        socket = Path(directory) / "embedder.sock"
        ready = asyncio.Event()
        service = asyncio.create_task(serve(socket, ready=ready, model=model))
        await asyncio.wait_for(ready.wait(), 60)
        cache.embedder = EmbedderClient(socket, timeout=60)
        try:
            for i, pair in enumerate(pairs):
                cached_vector, query_vector = vectors[i], vectors[len(pairs) + i]
                model_name = f"cache-eval-{run}-{i}"  # one partition per pair
                stored = cache_plan(key, _request(model_name, pair["cached"]), {})
                plan = cache_plan(key, _request(model_name, pair["query"]), {})
                if stored.prompt is None or plan.prompt is None or cached_vector is None or query_vector is None:
                    hits.append(False)  # not eligible for the semantic cache (empty or too long): no hit
                    continue
                partitions.append(stored.partition)
                await semantic_store(cache, schema=stored.schema, partition=stored.partition, model=model_name, key_id=0,
                                     prompt=stored.prompt, vector=cached_vector,
                                     completion={"choices": [{"message": {"content": "cached"}}]}, cost="0",
                                     ttl=EVAL_TTL)
                hit = await semantic_lookup(cache, schema=plan.schema, partition=plan.partition, prompt=plan.prompt,
                                            vector=query_vector, threshold=plan.threshold, guarded=guarded)
                hits.append(hit is not None)
        finally:
            await cache.close()
            service.cancel()
            shutil.rmtree(directory, ignore_errors=True)
        return hits


def _request(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0}
