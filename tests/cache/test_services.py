"""Clearing and evicting a workspace's response cache, exact (Redis) and semantic (its table)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cache.selectors import cache_summary
from cache.services import cache_clear, cache_evict
from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import exact_index_key, exact_sizes_key
from tenants.services import workspace_policy_update
from tests.cache.seed import exact_entries_store, semantic_entry_create, semantic_ids

MB = 1024 * 1024


def _alive(keys: list[str]) -> list[str]:
    client = redis_sync()
    return [key for key in keys if client.exists(key)]


def test_clear_removes_every_cached_answer_of_that_workspace_only(make_workspace):  # type: ignore[no-untyped-def]
    name = f"Iso {uuid.uuid4().hex[:6]}"
    mine = make_workspace(name=name)
    # a schema whose name starts with mine: its entries must not match mine's pattern
    neighbour = make_workspace(name=f"{name} 2")
    assert neighbour.schema_name.startswith(mine.schema_name + "_")
    my_keys = exact_entries_store(mine, 3) + exact_entries_store(mine, 2, scope="key7")
    their_keys = exact_entries_store(neighbour, 2)
    semantic_entry_create(mine)
    semantic_entry_create(mine)
    theirs = semantic_entry_create(neighbour)

    assert cache_clear(workspace=mine) == {"exact_entries": 5, "semantic_entries": 2}

    assert _alive(my_keys) == [] and semantic_ids(mine) == set()
    assert cache_summary(workspace=mine) == {"exact_entries": 0, "exact_bytes": 0, "semantic_entries": 0,
                                             "semantic_bytes": 0}
    assert _alive(their_keys) == their_keys and semantic_ids(neighbour) == {theirs.pk}
    summary = cache_summary(workspace=neighbour)
    assert summary["exact_entries"] == 2 and summary["exact_bytes"] > 0 and summary["semantic_entries"] == 1


def test_summary_counts_live_entries_and_their_bytes(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    exact_entries_store(workspace, 2, text_bytes=1000)
    semantic_entry_create(workspace, size_bytes=700)
    semantic_entry_create(workspace, size_bytes=300)
    semantic_entry_create(workspace, size_bytes=5000, expires_in=timedelta(seconds=-1))  # expired: not served
    summary = cache_summary(workspace=workspace)
    assert summary["exact_entries"] == 2 and 2000 < summary["exact_bytes"] < 2600
    assert (summary["semantic_entries"], summary["semantic_bytes"]) == (2, 1000)


def test_eviction_drops_expired_entries_from_both_caches(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    short = exact_entries_store(workspace, 2, ttl=60)
    long = exact_entries_store(workspace, 1, ttl=7200)
    gone = semantic_entry_create(workspace, expires_in=timedelta(seconds=60))
    kept = semantic_entry_create(workspace, expires_in=timedelta(hours=2))

    result = cache_evict(workspace=workspace, now=datetime.now(UTC) + timedelta(minutes=5))

    assert (result["exact_expired"], result["semantic_expired"]) == (2, 1)
    assert (result["exact_evicted"], result["semantic_evicted"]) == (0, 0)
    assert _alive(short + long) == long
    assert redis_sync().zcard(exact_index_key(workspace.schema_name)) == 1
    assert redis_sync().hlen(exact_sizes_key(workspace.schema_name)) == 1
    assert semantic_ids(workspace) == {kept.pk} and gone.pk not in semantic_ids(workspace)


def test_exact_cache_over_its_cap_loses_the_entries_that_expire_first(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    workspace_policy_update(workspace=workspace, cache_max_mb=1)
    soonest = exact_entries_store(workspace, 1, ttl=600, text_bytes=400_000)
    later = exact_entries_store(workspace, 2, ttl=3600, text_bytes=400_000)
    untouched = semantic_entry_create(workspace, size_bytes=100)

    result = cache_evict(workspace=workspace)

    assert result["exact_evicted"] == 1 and result["semantic_evicted"] == 0
    assert _alive(soonest + later) == later
    assert cache_summary(workspace=workspace)["exact_bytes"] <= MB
    assert semantic_ids(workspace) == {untouched.pk}


def test_semantic_cache_over_its_cap_loses_the_least_recently_used(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    workspace_policy_update(workspace=workspace, cache_max_mb=1)
    old_but_hit = semantic_entry_create(workspace, size_bytes=500_000, created_ago=timedelta(days=2),
                                        last_hit_ago=timedelta(minutes=1))
    stale = semantic_entry_create(workspace, size_bytes=500_000, created_ago=timedelta(hours=3))
    staler = semantic_entry_create(workspace, size_bytes=500_000, created_ago=timedelta(hours=5),
                                   last_hit_ago=timedelta(hours=4))
    recent = semantic_entry_create(workspace, size_bytes=200_000, created_ago=timedelta(minutes=5))
    exact = exact_entries_store(workspace, 1, text_bytes=100)

    result = cache_evict(workspace=workspace)

    # 1.7 MB over a 1 MB cap: the two least recently used go (hit 4 h ago, stored 3 h ago)
    assert result["semantic_evicted"] == 2 and result["exact_evicted"] == 0
    assert semantic_ids(workspace) == {old_but_hit.pk, recent.pk}
    assert stale.pk not in semantic_ids(workspace) and staler.pk not in semantic_ids(workspace)
    assert _alive(exact) == exact


def test_caches_under_their_cap_are_left_alone(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    keys = exact_entries_store(workspace, 3, text_bytes=1000)
    entry = semantic_entry_create(workspace, size_bytes=1000)
    assert cache_evict(workspace=workspace) == {"exact_expired": 0, "exact_evicted": 0, "semantic_expired": 0,
                                                "semantic_evicted": 0}
    assert _alive(keys) == keys and semantic_ids(workspace) == {entry.pk}
