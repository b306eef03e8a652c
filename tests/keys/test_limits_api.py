"""Management API: key limits and budgets, workspace settings; published to the gateway."""

from __future__ import annotations

import re

import orjson
from rest_framework.test import APIClient

from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import key_record_key
from keys.tokens import token_hash
from tenants.services import admin_token_create, member_add


def _admin(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = admin_token_create(workspace=workspace, name="ci", created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return workspace, client


def _record(secret: str) -> dict:
    raw = redis_sync().get(key_record_key(token_hash(secret)))
    assert isinstance(raw, bytes)
    return orjson.loads(raw)  # type: ignore[no-any-return]


def test_key_limits_and_budget_are_set_by_patch_and_published(make_workspace):  # type: ignore[no-untyped-def]
    _, client = _admin(make_workspace)
    created = client.post("/api/keys/", {"name": "ci"}, format="json").json()
    response = client.patch(f"/api/keys/{created['id']}/", {
        "rpm_limit": 60, "tpm_limit": 10000, "budget_amount": "25.00", "budget_period": "weekly",
        "budget_hard": True, "budget_alert_thresholds": [100, 50, 80],
    }, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["rpm_limit"], body["budget_amount"], body["budget_alert_thresholds"]) == (60, "25.00", [50, 80, 100])
    policy = _record(created["key"])["policy"]["key"]
    assert policy == {"rpm": 60, "tpm": 10000, "budget": {"amount": "25.00", "period": "weekly", "hard": True,
                                                          "thresholds": [50, 80, 100]}}
    cleared = client.patch(f"/api/keys/{created['id']}/", {"rpm_limit": None, "budget_amount": None}, format="json").json()
    assert cleared["rpm_limit"] is None and "budget" not in _record(created["key"])["policy"]["key"]


def test_bad_limit_values_are_400_naming_the_field(make_workspace):  # type: ignore[no-untyped-def]
    _, client = _admin(make_workspace)
    created = client.post("/api/keys/", {"name": "ci"}, format="json").json()
    for body, field in [({"rpm_limit": -1}, "rpm_limit"), ({"budget_period": "hourly"}, "budget_period"),
                        ({"budget_amount": "-5"}, "budget_amount"), ({"budget_alert_thresholds": [0]}, "budget_alert_thresholds")]:
        response = client.patch(f"/api/keys/{created['id']}/", body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.json())


def test_workspace_settings_publish_to_every_key(make_workspace):  # type: ignore[no-untyped-def]
    workspace, client = _admin(make_workspace)
    first = client.post("/api/keys/", {"name": "a"}, format="json").json()
    second = client.post("/api/keys/", {"name": "b"}, format="json").json()
    response = client.patch("/api/workspace/", {
        "rpm_limit": 600, "budget_amount": "100.00", "budget_period": "monthly",
        "budget_alert_recipients": "finance@example.com, cto@example.com", "limits_fail_open": True,
    }, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["budget_alert_recipients"] == "finance@example.com\ncto@example.com"
    for key in (first, second):
        shared = _record(key["key"])["policy"]["workspace"]
        assert shared["rpm"] == 600 and shared["budget"]["amount"] == "100.00" and shared["fail_open"] is True
        assert shared["quota"] == 1000  # the free plan
    bad = client.patch("/api/workspace/", {"budget_alert_recipients": "not-an-email"}, format="json")
    assert bad.status_code == 400 and "budget_alert_recipients" in bad.json()


def test_only_owners_and_admins_change_workspace_settings(make_workspace, make_user, client):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    member = make_user()
    member_add(workspace=workspace, user=member, role="member")
    client.force_login(member)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    assert client.get("/api/workspace/").status_code == 200
    response = client.patch("/api/workspace/", {"rpm_limit": 1}, content_type="application/json")
    assert response.status_code == 403


def test_a_member_may_rename_a_key_but_not_change_its_limits_or_cache(make_workspace, make_user, client):  # type: ignore[no-untyped-def]
    from keys.services import api_key_create

    workspace = make_workspace()
    member = make_user()
    member_add(workspace=workspace, user=member, role="member")
    key, _ = api_key_create(workspace=workspace, name="shared", created_by_id=member.pk)
    client.force_login(member)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    for body in ({"rpm_limit": 1}, {"cache_semantic": True}, {"cache_ttl_seconds": 86400}):
        response = client.patch(f"/api/keys/{key.pk}/", body, content_type="application/json")
        assert response.status_code == 403, body
    renamed = client.patch(f"/api/keys/{key.pk}/", {"name": "renamed"}, content_type="application/json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
    assert client.get(f"/api/keys/{key.pk}/").json()["cache_semantic"] is None


def test_workspace_plan_reads_the_same_in_the_api_as_in_the_ui(make_workspace, make_user, client):  # type: ignore[no-untyped-def]
    from billing.models import Plan
    from tenants.services import workspace_policy_update

    owner = make_user()
    workspace = make_workspace(owner=owner)
    _, secret = admin_token_create(workspace=workspace, name="ci", created_by=None)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.force_login(owner)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()

    def ui_plan() -> str:
        page = client.get("/workspaces/settings/").content.decode()
        match = re.search(r'data-testid="plan">Plan: <strong>([^<]+)</strong>', page)
        assert match, page[:2000]
        return match.group(1)

    body = api.get("/api/workspace/").json()
    assert (body["plan"], body["plan_name"]) == ("free", "Free") and ui_plan() == "Free"
    pro, _ = Plan.objects.get_or_create(code="pro-test", defaults={"name": "Pro test", "monthly_request_quota": None})
    workspace_policy_update(workspace=workspace, plan=pro)
    body = api.get("/api/workspace/").json()
    assert (body["plan"], body["plan_name"]) == ("pro-test", "Pro test") and ui_plan() == "Pro test"
