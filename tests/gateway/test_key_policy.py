"""gateway.hotpath.key_policy: a key's policy is read from the JSON its record was published
with, whichever release published it; a missing part is no limit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.hotpath import limits
from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.key_policy import NO_POLICY, BudgetPolicy, CachePolicy, KeyPolicy, LimitScope, WorkspacePolicy
from tests.gateway.deployments import deployment_make

PUBLISHED = {
    "key": {"rpm": 60, "budget": {"amount": "0.0001", "period": "daily", "hard": False, "thresholds": [50, 100]}},
    "user": {"id": 12, "tpm": 5000},
    "workspace": {"rpm": 600, "budget": {"amount": "25", "period": "monthly", "hard": True, "thresholds": []},
                  "quota": 1000, "fail_open": True},
    "cache": {"ttl": 600, "scope": "key", "nondeterministic": True, "semantic": True, "threshold": 0.9},
    "models": ["gpt-4o", "claude"],
}


def _record(policy: KeyPolicy) -> KeyRecord:
    return KeyRecord(key_hash="h", workspace_id=3, schema="ws_three", slug="three", key_id=7, key_name="ci",
                     revoked=False, policy=policy)


def test_a_published_policy_reads_as_typed_fields_and_publishes_unchanged() -> None:
    policy = KeyPolicy.from_wire(PUBLISHED)
    assert policy.key == LimitScope(rpm=60, budget=BudgetPolicy(amount=Decimal("0.0001"), period="daily", hard=False,
                                                                thresholds=(50, 100)))
    assert policy.user is not None and policy.user.user_id == 12 and policy.user.tpm == 5000 and policy.user.rpm is None
    assert policy.workspace is not None and policy.workspace.quota == 1000 and policy.fail_open
    assert policy.cache == CachePolicy(ttl=600, scope="key", nondeterministic=True, semantic=True, threshold=0.9)
    assert policy.models == ("gpt-4o", "claude") and policy.model_allowed("claude") and not policy.model_allowed("gemini")
    assert policy.to_wire() == PUBLISHED


def test_a_record_without_a_policy_has_no_limits_no_cache_and_every_model() -> None:
    empty: tuple[dict[str, Any] | None, ...] = (None, {})
    for published in empty:
        policy = KeyPolicy.from_wire(published)
        assert policy is NO_POLICY and policy.to_wire() == {}
        assert not policy.cache_enabled and not policy.hard_budget and not policy.fail_open
        assert policy.model_allowed("anything")
    scopes = limits.limit_scopes(_record(NO_POLICY), deployment_make(), {})
    assert scopes.buckets == () and scopes.budgets == () and scopes.quota == 0 and not scopes.needs_estimate


def test_a_record_with_only_some_parts_enforces_those() -> None:
    policy = KeyPolicy.from_wire({"workspace": {"quota": 3}, "key": {"budget": {"amount": "1"}}})
    assert policy.workspace == WorkspacePolicy(quota=3) and not policy.cache_enabled
    assert policy.key is not None and policy.key.budget == BudgetPolicy(amount=Decimal("1"))  # the defaults: monthly, hard
    assert policy.hard_budget
    scopes = limits.limit_scopes(_record(policy), deployment_make(), {})
    assert scopes.quota == 3 and scopes.budgets == (("key 'ci'", "key:ws_three:7", 10**8, True, "monthly"),)
    assert KeyPolicy.from_wire({"key": {"budget": {"period": "daily"}}}).key == LimitScope(), "no amount: no budget"
    assert KeyPolicy.from_wire({"models": []}).model_allowed("gpt-4o") is False, "an empty list allows no model"


def test_limits_apply_from_the_key_its_member_and_its_workspace_in_order() -> None:
    policy = KeyPolicy.from_wire(PUBLISHED)
    scopes = limits.limit_scopes(_record(policy), deployment_make(), {"rpm": 10_000})
    assert [(label, kind, name, limit) for label, kind, name, limit in scopes.buckets] == [
        ("key 'ci'", "requests", "aip:rl:key:ws_three:7:rpm", 60),
        ("member", "tokens", "aip:rl:user:3:12:tpm", 5000),
        ("workspace", "requests", "aip:rl:ws:3:rpm", 600),
        ("gateway", "requests", "aip:rl:global:rpm", 10_000),
    ]
    assert [budget[:2] for budget in scopes.budgets] == [("key 'ci'", "key:ws_three:7"), ("workspace", "ws:3")]
    assert policy.hard_budget, "the workspace's budget is hard, the key's is not"


def test_the_workspaces_routing_bounds_read_from_the_record_and_default_when_absent() -> None:
    bounded = KeyPolicy.from_wire({"workspace": {"max_attempts": 2, "overrides": False}})
    assert bounded.max_attempts_cap == 2 and not bounded.overrides_allowed
    assert bounded.to_wire() == {"workspace": {"max_attempts": 2, "overrides": False}}
    for older in (KeyPolicy.from_wire(PUBLISHED), KeyPolicy.from_wire({}), KeyPolicy.from_wire({"workspace": {"rpm": 5}})):
        assert older.max_attempts_cap is None and older.overrides_allowed, "a record without them: no bound"
        assert "max_attempts" not in older.to_wire().get("workspace", {})
        assert "overrides" not in older.to_wire().get("workspace", {})
