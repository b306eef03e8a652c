"""A key's own response cache settings override the workspace's; the gateway gets them at once."""

from __future__ import annotations

from django.test import Client
from django_tenants.utils import schema_context

from keys.services import api_key_create
from tenants.services import workspace_policy_update
from tests.cache.seed import admin_api_client, hot_cache_policy

LIMITS = {"rpm_limit": "", "tpm_limit": "", "budget_amount": "", "budget_period": "monthly", "budget_alert_thresholds": ""}


def test_key_overrides_set_by_patch_are_published_and_null_inherits_again(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    workspace_policy_update(workspace=workspace, cache_ttl_seconds=3600, cache_semantic=False)
    key, secret = api_key_create(workspace=workspace, name="chatbot")
    other, other_secret = api_key_create(workspace=workspace, name="batch")
    client = admin_api_client(workspace)

    response = client.patch(f"/api/keys/{key.pk}/", {"cache_semantic": True, "cache_semantic_threshold": 0.8,
                                                     "cache_ttl_seconds": 120}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["cache_enabled"], body["cache_semantic"], body["cache_semantic_threshold"], body["cache_ttl_seconds"]) \
        == (None, True, 0.8, 120)
    assert hot_cache_policy(secret) == {"ttl": 120, "scope": "workspace", "nondeterministic": False, "semantic": True,
                                     "threshold": 0.8}
    assert hot_cache_policy(other_secret) == {"ttl": 3600, "scope": "workspace", "nondeterministic": False, "semantic": False}

    client.patch(f"/api/keys/{other.pk}/", {"cache_enabled": False}, format="json")
    assert hot_cache_policy(other_secret) is None  # no caching at all for this key

    client.patch(f"/api/keys/{key.pk}/", {"cache_semantic": None, "cache_semantic_threshold": None,
                                          "cache_ttl_seconds": None}, format="json")
    assert hot_cache_policy(secret) == {"ttl": 3600, "scope": "workspace", "nondeterministic": False, "semantic": False}


def test_bad_key_cache_values_are_400_naming_the_field(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    key, secret = api_key_create(workspace=workspace, name="k")
    client = admin_api_client(workspace)
    for body, field in [({"cache_semantic_threshold": 0.2}, "cache_semantic_threshold"),
                        ({"cache_semantic_threshold": 2}, "cache_semantic_threshold"),
                        ({"cache_ttl_seconds": 0}, "cache_ttl_seconds"),
                        ({"cache_ttl_seconds": 31 * 86400}, "cache_ttl_seconds"),
                        ({"cache_enabled": "maybe"}, "cache_enabled")]:
        response = client.patch(f"/api/keys/{key.pk}/", body, format="json")
        assert response.status_code == 400 and list(response.json()) == [field], (body, response.json())
    assert client.get(f"/api/keys/{key.pk}/").json()["cache_semantic_threshold"] is None


def test_key_page_sets_cache_overrides_and_shows_the_effective_settings(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    key, secret = api_key_create(workspace=workspace, name="reports")
    client = Client()
    client.force_login(owner)
    page = client.get(f"/keys/{key.pk}/").content.decode()
    assert '<option value="unknown" selected>As the workspace</option>' in page
    assert "On (workspace), answers kept 3,600 s (workspace)" in page

    page = client.post(f"/keys/{key.pk}/", {**LIMITS, "cache_enabled": "true", "cache_semantic": "true",
                                            "cache_semantic_threshold": "0.95", "cache_ttl_seconds": "90"},
                       follow=True).content.decode()
    assert "saved" in page and "On, answers kept 90 s" in page and "Semantic on, threshold 0.95" in page
    assert hot_cache_policy(secret) == {"ttl": 90, "scope": "workspace", "nondeterministic": False, "semantic": True,
                                     "threshold": 0.95}

    page = client.post(f"/keys/{key.pk}/", {**LIMITS, "cache_enabled": "false"}, follow=True).content.decode()
    assert 'data-testid="key-cache"><h2>Response cache</h2>\n    <p>Off' in page and hot_cache_policy(secret) is None

    bad = client.post(f"/keys/{key.pk}/", {**LIMITS, "cache_semantic_threshold": "0.1"}).content.decode()
    assert "greater than or equal to 0.5" in bad and hot_cache_policy(secret) is None


def test_key_page_refuses_a_rate_limit_beyond_the_integer_column_with_a_field_error(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    key, _ = api_key_create(workspace=workspace, name="k")
    client = Client()
    client.force_login(owner)
    for field in ("rpm_limit", "tpm_limit"):
        page = client.post(f"/keys/{key.pk}/", {**LIMITS, field: "1099511627776"})
        assert page.status_code == 200 and "less than or equal to 2147483647" in page.content.decode()
    with schema_context(workspace.schema_name):
        key.refresh_from_db()
    assert (key.rpm_limit, key.tpm_limit) == (None, None)
