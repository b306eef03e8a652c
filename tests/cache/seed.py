"""Cached answers put where the gateway puts them: exact entries through gateway.hotpath.response_cache's own
store (so the index and size accounting are the real ones), semantic rows in the
workspace's table."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis.asyncio as aioredis
from django.conf import settings
from django_tenants.utils import schema_context

from cache.models import EMBEDDING_DIMENSIONS, SemanticEntry
from gateway.hotpath.redis_keys import exact_entry_key
from gateway.hotpath.response_cache import CachePlan, exact_store
from tenants.models import Workspace


def completion(text: str = "cached answer") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake-openai",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def exact_entries_store(workspace: Workspace, count: int = 1, *, ttl: int = 3600, text_bytes: int = 20,
                        scope: str = "ws") -> list[str]:
    """Store `count` exact entries; returns their Redis keys."""
    keys = [exact_entry_key(workspace.schema_name, scope, uuid.uuid4().hex) for _ in range(count)]

    async def store() -> None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            for key in keys:
                plan = CachePlan(key=key, lookup=True, store=True, ttl=ttl, schema=workspace.schema_name)
                await exact_store(client, plan, completion("x" * text_bytes))
        finally:
            await client.aclose()

    asyncio.run(store())
    return keys


def semantic_entry_create(workspace: Workspace, *, size_bytes: int = 1000, created_ago: timedelta = timedelta(0),
                          expires_in: timedelta = timedelta(hours=1), last_hit_ago: timedelta | None = None,
                          prompt: str = "What is the capital of France?") -> SemanticEntry:
    now = datetime.now(UTC)
    with schema_context(workspace.schema_name):
        return SemanticEntry.objects.create(
            partition=uuid.uuid4().hex * 2, model="fake-openai", key_id=1, prompt=prompt,
            embedding=[0.05] * EMBEDDING_DIMENSIONS, completion=completion(), cost=Decimal("0.002"),
            size_bytes=size_bytes, created_at=now - created_ago, expires_at=now + expires_in,
            last_hit_at=now - last_hit_ago if last_hit_ago is not None else None,
        )


def semantic_ids(workspace: Workspace) -> set[int]:
    with schema_context(workspace.schema_name):
        return set(SemanticEntry.objects.values_list("id", flat=True))


def hot_cache_policy(secret: str) -> dict | None:  # type: ignore[type-arg]
    """The cache settings in the key's hot record, as the gateway reads them."""
    import orjson

    from gateway.catalog.publish import redis_sync
    from gateway.hotpath.redis_keys import key_record_key
    from keys.tokens import token_hash

    return orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")["policy"].get("cache")  # type: ignore[no-any-return]


def admin_api_client(workspace: Workspace):  # type: ignore[no-untyped-def]
    """A management API client authenticated with a new workspace admin token."""
    from rest_framework.test import APIClient

    from tenants.services import admin_token_create

    _, secret = admin_token_create(workspace=workspace, name="ci", created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
