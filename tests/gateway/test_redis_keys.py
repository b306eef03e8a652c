"""gateway.hotpath.redis_keys: the names are data. Key records, budgets and the plan's quota
live in Redis across upgrades, so a renamed key would forget a month's spend or a key's
record; these are the names running installations hold."""

from __future__ import annotations

from gateway.hotpath import redis_keys


def test_an_upgrade_keeps_reading_the_records_and_counters_already_in_redis() -> None:
    assert redis_keys.key_record_key("ab12") == "aip:key:ab12"
    assert (redis_keys.CATALOG_KEY, redis_keys.CATALOG_VERSION_KEY) == ("aip:catalog", "aip:catalog:version")
    key, workspace = redis_keys.key_ident("ws_acme", 7), redis_keys.workspace_ident(3)
    assert redis_keys.budget_key(key, "m2026-11") == "aip:bud:key:ws_acme:7:m2026-11"
    assert redis_keys.budget_key(workspace, "lifetime") == "aip:bud:ws:3:lifetime"
    assert redis_keys.quota_key(3, "m2026-11") == "aip:quota:ws:3:m2026-11"
    assert redis_keys.bucket_key(redis_keys.member_ident(3, 9), "rpm") == "aip:rl:user:3:9:rpm"
    assert redis_keys.bucket_key(redis_keys.model_ident("gpt-4o"), "tpm") == "aip:rl:model:gpt-4o:tpm"
    assert redis_keys.bucket_key(redis_keys.provider_ident("openai"), "rpm") == "aip:rl:provider:openai:rpm"
    assert redis_keys.bucket_key(redis_keys.GLOBAL_IDENT, "rpm") == "aip:rl:global:rpm"
    assert redis_keys.spend_day_key("ws_acme", "2026-11-29") == "aip:spend:ws_acme:2026-11-29"
    assert redis_keys.budget_alert_marker(workspace, "m2026-11", 80) == "aip:alerted:ws:3:m2026-11:80"


def test_cached_answers_and_queued_usage_survive_an_upgrade() -> None:
    assert redis_keys.exact_entry_key("ws_acme", "key7", "f00d") == "aip:cache:ws_acme:key7:f00d"
    assert redis_keys.exact_index_key("ws_acme") == "aip:cache-index:ws_acme"
    assert redis_keys.exact_sizes_key("ws_acme") == "aip:cache-size:ws_acme"
    assert redis_keys.exact_entry_pattern("ws_acme") == "aip:cache:ws_acme:*"
    assert (redis_keys.USAGE_STREAM, redis_keys.USAGE_DEAD_STREAM) == ("aip:usage", "aip:usage:dead")
