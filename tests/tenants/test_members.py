"""Owners and admins change roles and remove members (a workspace keeps an owner); a user lands
in the workspace they last used."""

from __future__ import annotations

from django.test import Client
from rest_framework.test import APIClient

from keys.services import api_key_create, api_key_get
from tenants.models import AdminToken, Membership
from tenants.services import admin_token_create, member_add


def _signed_in(user, workspace=None) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session["workspace_id"] = workspace.pk
        session.save()
    return client


def _team(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, admin, member = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    memberships = [
        Membership.objects.get(workspace=workspace, user=owner),
        member_add(workspace=workspace, user=admin, role="admin"),
        member_add(workspace=workspace, user=member, role="member"),
    ]
    return workspace, (owner, admin, member), memberships


def _role(membership: Membership) -> str | None:
    found = Membership.objects.filter(pk=membership.pk).first()
    return found.role if found else None


def test_owner_changes_roles_and_an_admin_cannot_promote_to_owner_or_touch_an_owner(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (owner, admin, _), (owner_m, admin_m, member_m) = _team(make_user, make_workspace)
    owner_client, admin_client = _signed_in(owner, workspace), _signed_in(admin, workspace)
    assert owner_client.post(f"/workspaces/members/{member_m.pk}/role/", {"role": "admin"}).status_code == 302
    assert _role(member_m) == "admin"
    assert admin_client.post(f"/workspaces/members/{member_m.pk}/role/", {"role": "owner"}).status_code == 403
    assert admin_client.post(f"/workspaces/members/{owner_m.pk}/role/", {"role": "member"}).status_code == 403
    assert admin_client.post(f"/workspaces/members/{owner_m.pk}/remove/").status_code == 403
    assert (_role(member_m), _role(owner_m)) == ("admin", "owner")
    assert admin_client.post(f"/workspaces/members/{member_m.pk}/role/", {"role": "member"}).status_code == 302
    assert _role(member_m) == "member"
    assert owner_client.post(f"/workspaces/members/{admin_m.pk}/role/", {"role": "owner"}).status_code == 302
    assert _role(admin_m) == "owner"


def test_members_cannot_change_roles_or_remove_others(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (_, _, member), (owner_m, admin_m, member_m) = _team(make_user, make_workspace)
    client = _signed_in(member, workspace)
    assert client.post(f"/workspaces/members/{member_m.pk}/role/", {"role": "admin"}).status_code == 403
    assert client.post(f"/workspaces/members/{admin_m.pk}/remove/").status_code == 403
    assert (_role(member_m), _role(admin_m)) == ("member", "admin")
    page = client.get("/workspaces/members/").content.decode()
    assert (
        f"/workspaces/members/{admin_m.pk}/remove/" not in page
        and f"/workspaces/members/{member_m.pk}/role/" not in page
    )


def test_the_last_owner_can_be_neither_demoted_nor_removed(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (owner, _, _), (owner_m, admin_m, _) = _team(make_user, make_workspace)
    client = _signed_in(owner, workspace)
    demote = client.post(f"/workspaces/members/{owner_m.pk}/role/", {"role": "admin"})
    assert demote.status_code == 403 and b"needs an owner" in demote.content
    assert client.post(f"/workspaces/members/{owner_m.pk}/remove/").status_code == 403
    assert _role(owner_m) == "owner"
    client.post(f"/workspaces/members/{admin_m.pk}/role/", {"role": "owner"})
    assert client.post(f"/workspaces/members/{owner_m.pk}/role/", {"role": "member"}).status_code == 302
    assert _role(owner_m) == "member"


def test_removing_a_member_revokes_their_keys_and_admin_tokens(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (owner, admin, member), (_, admin_m, member_m) = _team(make_user, make_workspace)
    members_key, _ = api_key_create(workspace=workspace, name="m", created_by_id=member.pk)
    owners_key, _ = api_key_create(workspace=workspace, name="o", created_by_id=owner.pk)
    _, token = admin_token_create(workspace=workspace, name="admin's", created_by=admin)
    client = _signed_in(owner, workspace)
    assert client.post(f"/workspaces/members/{member_m.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member_m.pk).exists()
    assert api_key_get(workspace=workspace, key_id=members_key.pk).revoked_at is not None
    assert api_key_get(workspace=workspace, key_id=owners_key.pk).revoked_at is None
    assert _signed_in(member).get("/keys/", HTTP_HOST=workspace.host).status_code == 403

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/keys/").status_code == 200
    client.post(f"/workspaces/members/{admin_m.pk}/role/", {"role": "member"})
    assert api.get("/api/keys/").status_code == 401, "a demoted admin's admin tokens are revoked"
    assert AdminToken.objects.get(workspace=workspace, name="admin's").revoked_at is not None


def test_a_member_leaves_a_workspace(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (_, _, member), (_, _, member_m) = _team(make_user, make_workspace)
    client = _signed_in(member, workspace)
    assert client.post(f"/workspaces/members/{member_m.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member_m.pk).exists()


def test_a_user_lands_in_the_workspace_they_last_used_on_their_next_sign_in(make_user, make_workspace):  # type: ignore[no-untyped-def]
    user = make_user()
    first = make_workspace(name="Alpha first", owner=user)
    second = make_workspace(name="Zulu second", owner=user)
    client = _signed_in(user)
    assert client.get("/").context["current_workspace"] == first
    client.post(f"/workspaces/switch/{second.pk}/")
    client.logout()
    again = _signed_in(user)  # a new session: nothing remembered in it
    assert again.get("/").context["current_workspace"] == second
    again.post(f"/workspaces/switch/{first.pk}/")
    assert _signed_in(user).get("/").context["current_workspace"] == first


def test_member_limits_beyond_the_integer_column_are_refused_with_a_message(make_user, make_workspace):  # type: ignore[no-untyped-def]
    workspace, (owner, _, _), (_, _, member) = _team(make_user, make_workspace)
    client = _signed_in(owner, workspace)
    page = client.post(f"/workspaces/members/{member.pk}/limits/", {"rpm_limit": "5", "tpm_limit": "1099511627776"},
                       follow=True)
    assert page.status_code == 200 and "Limits are whole numbers" in page.content.decode()
    member.refresh_from_db()
    assert (member.rpm_limit, member.tpm_limit) == (None, None)
