"""Who may rename and revoke a key: its creator, or the workspace's owners and admins (web pages
and management API alike)."""

from __future__ import annotations

import re

import orjson
from django.test import Client
from rest_framework.test import APIClient

from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import key_record_key
from keys.services import api_key_create, api_key_get
from keys.tokens import token_hash
from tenants.services import admin_token_create, member_add


def _client(user, workspace, cls=Client):  # type: ignore[no-untyped-def]
    client = cls()
    client.force_login(user)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    return client


def _team(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, admin, member, other_member = make_user(), make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=admin, role="admin")
    member_add(workspace=workspace, user=member, role="member")
    member_add(workspace=workspace, user=other_member, role="member")
    return workspace, owner, admin, member, other_member


def _revoked(workspace, key):  # type: ignore[no-untyped-def]
    return api_key_get(workspace=workspace, key_id=key.pk).revoked_at is not None


def _hot_revoked(secret):  # type: ignore[no-untyped-def]
    return bool(orjson.loads(redis_sync().get(key_record_key(token_hash(secret))))["revoked"])


def test_member_cannot_revoke_or_rename_the_owners_key_through_the_api(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, owner, _, member, _ = _team(make_user, make_workspace)
    key, secret = api_key_create(workspace=workspace, name="production", created_by_id=owner.pk)
    client = _client(member, workspace, APIClient)
    response = client.delete(f"/api/keys/{key.pk}/")
    assert response.status_code == 403 and "creator" in response.json()["detail"]
    renamed = client.patch(f"/api/keys/{key.pk}/", {"name": "mine now"}, format="json")
    assert renamed.status_code == 403
    stored = api_key_get(workspace=workspace, key_id=key.pk)
    assert stored.revoked_at is None and stored.name == "production" and not _hot_revoked(secret)


def test_member_cannot_revoke_another_members_key_or_a_key_without_creator(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, _, member, other_member = _team(make_user, make_workspace)
    theirs, _ = api_key_create(workspace=workspace, name="theirs", created_by_id=other_member.pk)
    legacy, _ = api_key_create(workspace=workspace, name="legacy")
    client = _client(member, workspace, APIClient)
    for key in (theirs, legacy):
        assert client.delete(f"/api/keys/{key.pk}/").status_code == 403
        assert not _revoked(workspace, key)


def test_member_renames_and_revokes_their_own_key_through_the_api(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, _, member, _ = _team(make_user, make_workspace)
    client = _client(member, workspace, APIClient)
    created = client.post("/api/keys/", {"name": "laptop"}, format="json").json()
    assert client.patch(f"/api/keys/{created['id']}/", {"name": "desktop"}, format="json").json()["name"] == "desktop"
    assert client.delete(f"/api/keys/{created['id']}/").json()["revoked"] is True
    assert _hot_revoked(created["key"])


def test_admin_and_owner_revoke_any_key_through_the_api(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, owner, admin, member, _ = _team(make_user, make_workspace)
    members_key, _ = api_key_create(workspace=workspace, name="m", created_by_id=member.pk)
    owners_key, _ = api_key_create(workspace=workspace, name="o", created_by_id=owner.pk)
    admin_client = _client(admin, workspace, APIClient)
    assert admin_client.patch(f"/api/keys/{owners_key.pk}/", {"name": "renamed"}, format="json").status_code == 200
    assert admin_client.delete(f"/api/keys/{members_key.pk}/").status_code == 200
    assert _client(owner, workspace, APIClient).delete(f"/api/keys/{owners_key.pk}/").status_code == 200
    assert _revoked(workspace, members_key) and _revoked(workspace, owners_key)


def test_admin_token_acts_as_a_workspace_admin_on_every_key(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, owner, _, member, _ = _team(make_user, make_workspace)
    key, _ = api_key_create(workspace=workspace, name="o", created_by_id=member.pk)
    _, token = admin_token_create(workspace=workspace, name="ci", created_by=owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.patch(f"/api/keys/{key.pk}/", {"rpm_limit": 5}, format="json").status_code == 200
    assert client.delete(f"/api/keys/{key.pk}/").status_code == 200


def test_member_cannot_revoke_or_rename_the_owners_key_through_the_web_views(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, owner, _, member, _ = _team(make_user, make_workspace)
    key, secret = api_key_create(workspace=workspace, name="production", created_by_id=owner.pk)
    client = _client(member, workspace)
    assert client.post(f"/keys/{key.pk}/revoke/").status_code == 403
    assert client.post(f"/keys/{key.pk}/rename/", {"name": "mine now"}).status_code == 403
    stored = api_key_get(workspace=workspace, key_id=key.pk)
    assert stored.revoked_at is None and stored.name == "production" and not _hot_revoked(secret)


def test_key_list_shows_a_member_manage_buttons_only_for_their_own_keys(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, owner, _, member, _ = _team(make_user, make_workspace)
    owners_key, _ = api_key_create(workspace=workspace, name="owners-key", created_by_id=owner.pk)
    client = _client(member, workspace)
    client.post("/keys/", {"name": "members-key"})
    page = client.get("/keys/").content.decode()
    assert "owners-key" in page and "members-key" in page and owner.email in page
    assert f"/keys/{owners_key.pk}/revoke/" not in page and f"/keys/{owners_key.pk}/rename/" not in page
    own_id = int(re.search(r"/keys/(\d+)/revoke/", page).group(1))
    assert own_id != owners_key.pk
    assert client.post(f"/keys/{own_id}/revoke/").status_code == 302
    owner_page = _client(owner, workspace).get("/keys/").content.decode()
    assert f"/keys/{owners_key.pk}/revoke/" in owner_page and f"/keys/{own_id}/rename/" in owner_page


def test_admin_revokes_a_members_key_in_the_web_view(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, _, admin, member, _ = _team(make_user, make_workspace)
    key, _ = api_key_create(workspace=workspace, name="m", created_by_id=member.pk)
    assert _client(admin, workspace).post(f"/keys/{key.pk}/revoke/").status_code == 302
    assert _revoked(workspace, key)
