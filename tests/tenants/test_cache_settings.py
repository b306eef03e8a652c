"""Workspace response cache settings (page and API), the cache summary and "Clear cache"."""

from __future__ import annotations

from django.test import Client

from gateway.catalog.publish import redis_sync
from keys.services import api_key_create
from tenants.services import member_add
from tests.cache.seed import (
    admin_api_client,
    exact_entries_store,
    hot_cache_policy,
    semantic_entry_create,
    semantic_ids,
)

FORM = {"rpm_limit": "", "tpm_limit": "", "budget_amount": "", "budget_period": "monthly",
        "budget_alert_thresholds": "", "budget_alert_recipients": "", "cache_enabled": "on",
        "cache_ttl_seconds": "3600", "cache_scope": "workspace", "cache_max_mb": "100"}


def _member_client(make_user, workspace, role="member"):  # type: ignore[no-untyped-def]
    member = make_user()
    member_add(workspace=workspace, user=member, role=role)
    client = Client()
    client.force_login(member)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    return client


def test_settings_page_turns_semantic_cache_on_and_every_key_gets_it(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    _, secret = api_key_create(workspace=workspace, name="k")
    client = Client()
    client.force_login(owner)
    response = client.post("/workspaces/settings/", {**FORM, "cache_semantic": "on", "cache_semantic_threshold": "0.85",
                                                     "cache_max_mb": "20"}, follow=True)
    assert "Settings saved" in response.content.decode()
    workspace.refresh_from_db()
    assert (workspace.cache_semantic, workspace.cache_semantic_threshold, workspace.cache_max_mb) == (True, 0.85, 20)
    assert hot_cache_policy(secret) == {"ttl": 3600, "scope": "workspace", "nondeterministic": False, "semantic": True,
                                     "threshold": 0.85}
    client.post("/workspaces/settings/", {**FORM, "cache_semantic_threshold": ""})
    assert hot_cache_policy(secret) == {"ttl": 3600, "scope": "workspace", "nondeterministic": False, "semantic": False}


def test_settings_page_refuses_a_threshold_out_of_range_and_a_zero_cap(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    client = Client()
    client.force_login(owner)
    page = client.post("/workspaces/settings/", {**FORM, "cache_semantic_threshold": "0.3", "cache_max_mb": "0"})
    text = page.content.decode()
    assert page.status_code == 200 and "greater than or equal to 0.5" in text and "greater than or equal to 1" in text
    workspace.refresh_from_db()
    assert workspace.cache_semantic_threshold is None and workspace.cache_max_mb == 100


def test_api_reads_and_sets_cache_settings_and_names_the_bad_field(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="k")
    client = admin_api_client(workspace)
    body = client.get("/api/workspace/").json()
    assert (body["cache_semantic"], body["cache_semantic_threshold"], body["cache_max_mb"]) == (False, None, 100)
    response = client.patch("/api/workspace/", {"cache_semantic": True, "cache_semantic_threshold": 0.9,
                                                "cache_max_mb": 250}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["cache_semantic_threshold"], response.json()["cache_max_mb"]) == (0.9, 250)
    assert hot_cache_policy(secret)["semantic"] is True and hot_cache_policy(secret)["threshold"] == 0.9
    for bad, field in [({"cache_semantic_threshold": 0.3}, "cache_semantic_threshold"),
                       ({"cache_semantic_threshold": 1.5}, "cache_semantic_threshold"),
                       ({"cache_max_mb": 0}, "cache_max_mb"), ({"cache_semantic": "sometimes"}, "cache_semantic")]:
        response = client.patch("/api/workspace/", bad, format="json")
        assert response.status_code == 400 and list(response.json()) == [field], (bad, response.json())
    workspace.refresh_from_db()
    assert workspace.cache_semantic_threshold == 0.9


def test_settings_page_shows_what_the_cache_holds(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    exact_entries_store(workspace, 3, text_bytes=2000)
    semantic_entry_create(workspace, size_bytes=1536)
    client = Client()
    client.force_login(owner)
    page = client.get("/workspaces/settings/").content.decode()
    assert 'data-testid="cache-exact">3 entries' in page and 'data-testid="cache-semantic">1 entry' in page
    assert "1.5\xa0KB of 100 MB" in page


def test_clear_cache_button_empties_the_workspaces_cache_and_says_how_much(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace, other = make_workspace(owner=owner), make_workspace()
    keys = exact_entries_store(workspace, 2)
    semantic_entry_create(workspace)
    other_keys = exact_entries_store(other, 1)
    client = Client()
    client.force_login(owner)
    assert "Clear cache" in client.get("/workspaces/settings/").content.decode()
    page = client.post("/workspaces/settings/cache/clear/", follow=True).content.decode()
    assert "Cache cleared: 2 exact and 1 semantic entries removed." in page
    assert 'data-testid="cache-exact">0 entries' in page
    assert not any(redis_sync().exists(key) for key in keys) and semantic_ids(workspace) == set()
    assert redis_sync().exists(*other_keys) == 1


def test_members_cannot_clear_the_cache(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    keys = exact_entries_store(workspace, 1)
    member = _member_client(make_user, workspace)
    assert "Clear cache" not in member.get("/workspaces/settings/").content.decode()
    assert member.post("/workspaces/settings/cache/clear/").status_code == 403
    assert member.post("/api/workspace/cache/clear/").status_code == 403
    assert redis_sync().exists(*keys) == 1
    owner = Client()
    owner.force_login(workspace.memberships.get(role="owner").user)
    assert owner.get("/workspaces/settings/cache/clear/").status_code == 405


def test_clear_api_returns_the_counts(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    exact_entries_store(workspace, 4)
    semantic_entry_create(workspace)
    response = admin_api_client(workspace).post("/api/workspace/cache/clear/")
    assert response.status_code == 200 and response.json() == {"exact_entries": 4, "semantic_entries": 1}
    admin = _member_client(make_user, workspace, role="admin")
    again = admin.post("/api/workspace/cache/clear/")
    assert again.status_code == 200 and again.json() == {"exact_entries": 0, "semantic_entries": 0}


def test_clear_api_and_cache_fields_are_in_the_schema(make_workspace):  # type: ignore[no-untyped-def]
    schema = admin_api_client(make_workspace()).get("/api/schema/", {"format": "json"}).json()
    clear = schema["paths"]["/api/workspace/cache/clear/"]["post"]
    assert "200" in clear["responses"]
    fields = schema["components"]["schemas"]["WorkspaceSettings"]["properties"]
    assert {"cache_semantic", "cache_semantic_threshold", "cache_max_mb"} <= set(fields)
    assert set(schema["components"]["schemas"]["CacheCleared"]["properties"]) == {"exact_entries", "semantic_entries"}


def test_settings_page_still_works_while_redis_is_unreachable(make_user, make_workspace, monkeypatch):  # type: ignore[no-untyped-def]
    import redis

    from cache import selectors
    from tests.servers import free_port

    owner = make_user()
    workspace = make_workspace(owner=owner)
    semantic_entry_create(workspace)
    monkeypatch.setattr(selectors, "redis_sync", lambda: redis.Redis(port=free_port(), socket_connect_timeout=0.2))
    client = Client()
    client.force_login(owner)
    page = client.get("/workspaces/settings/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="cache-exact">unavailable' in text and 'data-testid="cache-semantic">1 entry' in text


def test_clearing_while_redis_is_down_is_a_503_not_a_crash(make_workspace, monkeypatch):  # type: ignore[no-untyped-def]
    from redis.exceptions import ConnectionError as RedisConnectionError

    import tenants.api

    def unavailable(**_):  # type: ignore[no-untyped-def]
        raise RedisConnectionError("down")

    monkeypatch.setattr(tenants.api, "cache_clear", unavailable)
    response = admin_api_client(make_workspace()).post("/api/workspace/cache/clear/")
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]


def test_settings_page_refuses_a_rate_limit_beyond_the_integer_column_with_a_field_error(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    client = Client()
    client.force_login(owner)
    for field in ("rpm_limit", "tpm_limit"):
        page = client.post("/workspaces/settings/", {**FORM, field: "1099511627776"})
        assert page.status_code == 200 and "less than or equal to 2147483647" in page.content.decode()
    workspace.refresh_from_db()
    assert (workspace.rpm_limit, workspace.tpm_limit) == (None, None)
    client.post("/workspaces/settings/", {**FORM, "rpm_limit": "2147483647"})
    workspace.refresh_from_db()
    assert workspace.rpm_limit == 2147483647
