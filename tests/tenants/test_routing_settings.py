"""Workspace routing settings (the *Routing* section of Settings and `/api/workspace/`):
the most attempts per request and whether requests may send override headers, published in
every key's hot record for the gateway."""

from __future__ import annotations

from typing import Any

import orjson
from django.test import Client

from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import key_record_key
from keys.services import api_key_create
from keys.tokens import token_hash
from tenants.forms import WorkspaceSettingsForm
from tenants.services import member_add
from tests.cache.seed import admin_api_client

FORM = {"rpm_limit": "", "tpm_limit": "", "budget_amount": "", "budget_period": "monthly",
        "budget_alert_thresholds": "", "budget_alert_recipients": "", "cache_enabled": "on",
        "cache_ttl_seconds": "3600", "cache_scope": "workspace", "cache_max_mb": "100",
        "routing_max_attempts": "10", "routing_overrides": "on"}


def _hot_routing(secret: str) -> dict[str, Any]:
    """The routing bounds in the workspace part of the key's hot record, as the gateway reads them."""
    record = orjson.loads(redis_sync().get(key_record_key(token_hash(secret))) or b"{}")
    shared = record["policy"].get("workspace", {})
    return {name: shared[name] for name in ("max_attempts", "overrides") if name in shared}


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_a_new_workspace_bounds_nothing_and_publishes_nothing_for_routing(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="k")
    assert (workspace.routing_max_attempts, workspace.routing_overrides) == (10, True)
    assert _hot_routing(secret) == {}


def test_settings_page_sets_the_routing_bounds_and_every_key_gets_them(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    _, secret = api_key_create(workspace=workspace, name="k")
    client = _client(owner)
    page = client.get("/workspaces/settings/").content.decode()
    assert 'data-testid="routing-settings">Routing</h2>' in page and 'name="routing_max_attempts"' in page
    response = client.post("/workspaces/settings/", {**FORM, "routing_max_attempts": "2", "routing_overrides": ""},
                           follow=True)
    assert "Settings saved" in response.content.decode()
    workspace.refresh_from_db()
    assert (workspace.routing_max_attempts, workspace.routing_overrides) == (2, False)
    assert _hot_routing(secret) == {"max_attempts": 2, "overrides": False}
    client.post("/workspaces/settings/", {**FORM, "routing_max_attempts": ""})  # empty: no bound of its own
    workspace.refresh_from_db()
    assert (workspace.routing_max_attempts, workspace.routing_overrides) == (10, True)
    assert _hot_routing(secret) == {}


def test_settings_page_refuses_attempts_out_of_range(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    client = _client(owner)
    for value, message in (("0", "greater than or equal to 1"), ("11", "less than or equal to 10"),
                           ("two", "Enter a whole number")):
        page = client.post("/workspaces/settings/", {**FORM, "routing_max_attempts": value})
        assert page.status_code == 200 and message in page.content.decode()
    workspace.refresh_from_db()
    assert workspace.routing_max_attempts == 10


def test_members_see_the_routing_settings_but_cannot_change_them(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    member = make_user()
    member_add(workspace=workspace, user=member, role="member")
    client = _client(member)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    page = client.get("/workspaces/settings/").content.decode()
    assert 'data-testid="routing-settings">Routing</h2>' in page and "Most attempts per request" in page
    assert client.post("/workspaces/settings/", {**FORM, "routing_overrides": ""}).status_code == 403
    assert client.patch("/api/workspace/", {"routing_overrides": False}, content_type="application/json").status_code == 403
    workspace.refresh_from_db()
    assert workspace.routing_overrides is True


def test_the_form_leaves_attempts_at_no_bound_when_empty() -> None:
    form = WorkspaceSettingsForm({**FORM, "routing_max_attempts": ""})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["routing_max_attempts"] == 10 and form.cleaned_data["routing_overrides"] is True


def test_api_reads_and_sets_the_routing_bounds(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = api_key_create(workspace=workspace, name="k")
    api = admin_api_client(workspace)
    shown = api.get("/api/workspace/").json()
    assert (shown["routing_max_attempts"], shown["routing_overrides"]) == (10, True)
    changed = api.patch("/api/workspace/", {"routing_max_attempts": 1, "routing_overrides": False}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["routing_max_attempts"], changed.json()["routing_overrides"]) == (1, False)
    assert _hot_routing(secret) == {"max_attempts": 1, "overrides": False}
    again = api.patch("/api/workspace/", {"routing_overrides": True}, format="json").json()
    assert (again["routing_max_attempts"], again["routing_overrides"]) == (1, True), "only what is sent changes"


def test_api_refuses_bad_routing_values_naming_the_field(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    api = admin_api_client(workspace)
    for body in ({"routing_max_attempts": 0}, {"routing_max_attempts": 11}, {"routing_max_attempts": "many"},
                 {"routing_max_attempts": None}, {"routing_overrides": "perhaps"}):
        response = api.patch("/api/workspace/", body, format="json")
        assert response.status_code == 400 and set(response.json()) == set(body), (body, response.content)
    workspace.refresh_from_db()
    assert (workspace.routing_max_attempts, workspace.routing_overrides) == (10, True)


def test_the_routing_fields_are_in_the_schema(make_workspace):  # type: ignore[no-untyped-def]
    schema = admin_api_client(make_workspace()).get("/api/schema/", {"format": "json"}).json()
    shown = schema["components"]["schemas"]["WorkspaceSettings"]["properties"]
    update = schema["components"]["schemas"]["PatchedWorkspaceSettingsUpdate"]["properties"]
    assert {"routing_max_attempts", "routing_overrides"} <= set(shown) & set(update)
    assert (update["routing_max_attempts"]["minimum"], update["routing_max_attempts"]["maximum"]) == (1, 10)
