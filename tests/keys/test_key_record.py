"""A key's hot record: published to Redis by the keys app, rebuilt from PostgreSQL when Redis
has lost it (the gateway's key loader), read by every gateway process."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import redis.asyncio as aioredis
from django.conf import settings
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.directory import Directory, KeyRecord
from gateway.hotpath.redis_keys import key_record_key
from keys.models import ApiKey
from keys.services import api_key_create, api_key_policy_update, key_policy, key_record_load
from keys.tokens import token_hash
from tenants.models import Membership
from tenants.services import member_limits_update, workspace_policy_update


def _lookup(key_hash: str) -> KeyRecord | None:
    async def run() -> KeyRecord | None:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await Directory(client).key_lookup(key_hash)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_key_redis_lost_is_rebuilt_from_the_database_and_published_again(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    key, secret = api_key_create(workspace=workspace, name="ci")
    api_key_policy_update(workspace=workspace, key=key, rpm_limit=42)
    key_hash = token_hash(secret)
    published = redis_sync().get(key_record_key(key_hash))
    redis_sync().delete(key_record_key(key_hash))

    record = _lookup(key_hash)  # the Directory's default loader: settings.GATEWAY_KEY_LOADER
    assert record is not None and record.key_id == key.pk and record.schema == workspace.schema_name
    assert record.policy.key is not None and record.policy.key.rpm == 42
    assert redis_sync().get(key_record_key(key_hash)) == published, "published again, as the keys app wrote it"


def test_an_unknown_key_has_no_record() -> None:
    assert key_record_load(token_hash("sk-aip-never-issued")) is None
    assert _lookup(token_hash("sk-aip-never-issued")) is None


def test_a_record_published_by_an_older_release_still_loads(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    key, secret = api_key_create(workspace=workspace, name="old")
    older = {"workspace_id": workspace.pk, "schema": workspace.schema_name, "slug": workspace.slug, "key_id": key.pk,
             "key_name": "old", "revoked": False, "policy": {}}
    redis_sync().set(key_record_key(token_hash(secret)), orjson.dumps(older))
    record = _lookup(token_hash(secret))
    assert record is not None and record.key_name == "old" and not record.revoked


def test_the_published_policy_is_the_json_it_always_was(make_user, make_workspace):  # type: ignore[no-untyped-def]
    """Every part set: what Redis holds is keys.services.key_policy's dict, unchanged by the
    typed policy it passes through, so a gateway of the previous release reads it too."""
    owner = make_user()
    workspace = make_workspace(owner=owner)
    workspace_policy_update(workspace=workspace, rpm_limit=600, budget_amount=Decimal("25"), limits_fail_open=True)
    member_limits_update(membership=Membership.objects.get(workspace=workspace, user=owner), rpm_limit=None,
                         tpm_limit=5000)
    key, secret = api_key_create(workspace=workspace, name="ci", created_by_id=owner.pk)
    api_key_policy_update(workspace=workspace, key=key, rpm_limit=60, budget_amount=Decimal("0.0001"),
                          budget_period="daily", budget_hard=False, cache_semantic_threshold=0.9, cache_ttl_seconds=60)
    workspace.refresh_from_db()
    with schema_context(workspace.schema_name):
        expected = key_policy(workspace, ApiKey.objects.get(pk=key.pk))
    assert set(expected) == {"key", "user", "workspace", "cache"} and expected["workspace"]["fail_open"] is True
    published = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")
    assert published["policy"] == expected
    record = _lookup(token_hash(secret))
    assert record is not None and record.policy.to_wire() == expected
    assert record.policy.fail_open and record.policy.hard_budget and record.policy.cache is not None
    assert record.policy.cache.threshold == 0.9 and record.policy.cache.ttl == 60
