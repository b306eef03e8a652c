"""Sign-up, workspaces, members and keys through the web UI (Django test client)."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client, override_settings

from tenants.models import Domain, Membership, Workspace


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_signup_creates_workspace_with_schema_domain_and_owner():  # type: ignore[no-untyped-def]
    client = Client()
    response = client.post("/accounts/signup/", {
        "email": "founder@acme.test", "password1": "Very-secret-pass-42", "password2": "Very-secret-pass-42",
        "workspace_name": "Acme Labs",
    })
    assert response.status_code == 302
    workspace = Workspace.objects.get(name="Acme Labs")
    assert workspace.schema_name == "ws_acme_labs"
    assert Domain.objects.filter(tenant=workspace, domain="acme-labs.localhost").exists()
    membership = Membership.objects.get(workspace=workspace)
    assert membership.user.email == "founder@acme.test" and membership.role == "owner"
    assert any("founder@acme.test" in m.to for m in mail.outbox), "a confirmation email goes through the backend"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name='keys_apikey'",
                       [workspace.schema_name])
        assert cursor.fetchone()
    page = client.get("/")
    assert b"Acme Labs" in page.content


def test_key_secret_shown_once_then_only_prefix(make_user, make_workspace):  # type: ignore[no-untyped-def]
    user = make_user()
    make_workspace(owner=user)
    client = Client()
    client.force_login(user)
    created = client.post("/keys/", {"name": "laptop"}, follow=True).content.decode()
    secret = re.search(r"sk-aip-[A-Za-z0-9_\-]+", created).group(0)
    again = client.get("/keys/").content.decode()
    assert secret not in again and secret[:12] in again and "laptop" in again


def test_user_switches_between_workspaces_and_sees_only_each_ones_keys(make_user, make_workspace):  # type: ignore[no-untyped-def]
    user = make_user()
    first = make_workspace(name="First Co", owner=user)
    second = make_workspace(name="Second Co", owner=user)
    client = Client()
    client.force_login(user)
    client.post(f"/workspaces/switch/{first.pk}/")
    client.post("/keys/", {"name": "key-of-first"})
    client.post(f"/workspaces/switch/{second.pk}/")
    page = client.get("/keys/").content.decode()
    assert "key-of-first" not in page and "No keys yet" in page
    client.post(f"/workspaces/switch/{first.pk}/")
    assert "key-of-first" in client.get("/keys/").content.decode()


def test_outsider_cannot_switch_to_or_see_another_workspace(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, outsider = make_user(), make_user()
    private = make_workspace(name="Private", owner=owner)
    mine = make_workspace(name="Mine", owner=outsider)
    client = Client()
    client.force_login(outsider)
    assert client.post(f"/workspaces/switch/{private.pk}/").status_code == 404
    members = client.get("/workspaces/members/").content.decode()
    assert owner.email not in members and mine.name in client.get("/").content.decode()
    assert client.get("/keys/", HTTP_HOST=private.host).status_code == 403


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_admin_invites_member_and_member_cannot_invite(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, colleague, third = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    client = Client()
    client.force_login(owner)
    client.post("/workspaces/members/", {"email": colleague.email, "role": "member"})
    assert not Membership.objects.filter(workspace=workspace, user=colleague).exists(), "joining takes consent"
    link = re.search(r"https?://\S+/workspaces/invite/\S+/", mail.outbox[-1].body).group(0)
    member_client = Client()
    member_client.force_login(colleague)
    member_client.post(link)
    assert Membership.objects.filter(workspace=workspace, user=colleague, role="member").exists()
    member_client.post(f"/workspaces/switch/{workspace.pk}/")
    assert member_client.post("/workspaces/members/", {"email": third.email, "role": "admin"}).status_code == 403


def test_key_can_be_renamed_in_ui_and_gateway_sees_new_name(make_user, make_workspace):  # type: ignore[no-untyped-def]
    import orjson

    from gateway.catalog.publish import redis_sync
    from gateway.hotpath.redis_keys import key_record_key
    from keys.services import api_key_create
    from keys.tokens import token_hash as key_hash

    user = make_user()
    workspace = make_workspace(owner=user)
    key, secret = api_key_create(workspace=workspace, name="old name")
    client = Client()
    client.force_login(user)
    page = client.post(f"/keys/{key.pk}/rename/", {"name": "billing service"}, follow=True).content.decode()
    assert "billing service" in page and "old name" not in page
    assert orjson.loads(redis_sync().get(key_record_key(key_hash(secret))))["key_name"] == "billing service"
    assert client.post(f"/keys/{key.pk}/rename/", {"name": ""}, follow=True).status_code == 200


def test_usage_pages_show_only_the_current_workspaces_requests(make_user, make_workspace):  # type: ignore[no-untyped-def]
    import datetime as dt

    from django_tenants.utils import schema_context

    from analytics.models import UsageEvent

    owner_a, owner_b = make_user(), make_user()
    workspace_a = make_workspace(owner=owner_a)
    make_workspace(owner=owner_b)
    with schema_context(workspace_a.schema_name):
        UsageEvent.objects.create(event_id="evt-a-1", created_at=dt.datetime.now(dt.UTC), key_name="secret-project-key",
                                  endpoint="chat.completions", model="fake-openai", status_code=200)
    client_a, client_b = Client(), Client()
    client_a.force_login(owner_a)
    client_b.force_login(owner_b)
    assert "secret-project-key" in client_a.get("/usage/").content.decode()
    assert "secret-project-key" not in client_b.get("/usage/").content.decode()
    assert "secret-project-key" not in client_b.get("/").content.decode()
