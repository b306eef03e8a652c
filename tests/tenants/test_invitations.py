"""Joining a workspace takes consent: an emailed, expiring, single-use invitation link that the
invitee accepts while signed in as the invited email."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.models import Invitation, Membership
from tenants.services import member_add

LINK = re.compile(r"https?://[^\s]+/workspaces/invite/[^\s/]+/")
CONFIRM_LINK = re.compile(r"https?://[^\s]+/accounts/confirm-email/[^\s/]+/")


def _signed_in(user, workspace=None) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    if workspace is not None:
        session = client.session
        session["workspace_id"] = workspace.pk
        session.save()
    return client


def _invite(client: Client, email: str, role: str = "member") -> str:
    """Invite through the members page; the link from the email."""
    sent = len(mail.outbox)
    response = client.post("/workspaces/members/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()
    assert len(mail.outbox) == sent + 1 and mail.outbox[-1].to == [email]
    found = LINK.search(mail.outbox[-1].body)
    assert found, mail.outbox[-1].body
    return found.group(0)


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_adding_a_registered_user_sends_an_invitation_and_grants_nothing_until_accepted(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, invitee = make_user(), make_user()
    stranger_ws = make_workspace(name="Stranger Co", owner=owner)
    make_workspace(name="Own Co", owner=invitee)
    link = _invite(_signed_in(owner), invitee.email, role="admin")
    assert link.startswith("http://testserver/workspaces/invite/"), "the link follows the host the admin used"
    assert "Stranger Co" in mail.outbox[-1].subject and "7 days" in mail.outbox[-1].body

    invitee_client = _signed_in(invitee)  # a fresh sign-in, no workspace picked yet
    assert b"Own Co" in invitee_client.get("/").content
    invitee_client.post("/keys/", {"name": "my-private-key"})
    assert not Membership.objects.filter(workspace=stranger_ws, user=invitee).exists()
    assert b"my-private-key" not in _signed_in(owner, stranger_ws).get("/keys/").content

    page = invitee_client.get(_path(link))
    assert page.status_code == 200 and b"Accept invitation" in page.content and b"Stranger Co" in page.content
    accepted = invitee_client.post(_path(link))
    assert accepted.status_code == 302
    assert Membership.objects.get(workspace=stranger_ws, user=invitee).role == "admin"
    again = invitee_client.get(_path(link))
    assert again.status_code == 410 and b"already accepted" in again.content


def test_an_unregistered_invitee_signs_up_then_accepts(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(name="Hiring Co", owner=owner)
    email = f"new-{timezone.now().timestamp():.0f}@example.com"
    link = _invite(_signed_in(owner), email)
    browser = Client()
    landing = browser.get(_path(link)).content.decode()
    assert "sign up" in landing and f"next={_path(link)}" in landing.replace("%2F", "/")
    signup = browser.post(
        f"/accounts/signup/?next={_path(link)}",
        {
            "email": email,
            "password1": "Very-secret-pass-42",
            "password2": "Very-secret-pass-42",
            "workspace_name": "Newcomer's own",
            "next": _path(link),
        },
    )
    assert signup.status_code == 302 and signup["Location"].endswith(_path(link))
    landing = browser.get(_path(link)).content.decode()
    assert "Accept invitation" not in landing and "not confirmed yet" in landing and 'href="/accounts/email/"' in landing
    refused = browser.post(_path(link))
    assert refused.status_code == 403 and "Confirm " + email in refused.content.decode()
    assert not Membership.objects.filter(workspace=workspace, user__email=email).exists()
    confirm = CONFIRM_LINK.search(next(m for m in reversed(mail.outbox) if m.to == [email] and CONFIRM_LINK.search(m.body)).body)
    assert confirm is not None
    browser.post(_path(confirm.group(0)))
    assert b"Accept invitation" in browser.get(_path(link)).content
    browser.post(_path(link))
    assert Membership.objects.filter(workspace=workspace, user__email=email, role="member").exists()
    assert b"Hiring Co" in browser.get("/").content, "accepting switches to the workspace joined"


def test_accepting_requires_being_signed_in_as_the_invited_email(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, invitee, someone_else = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    link = _invite(_signed_in(owner), invitee.email)
    wrong = _signed_in(someone_else)
    page = wrong.get(_path(link)).content.decode()
    assert "Accept invitation" not in page and f"This invitation is for {invitee.email}" in page
    refused = wrong.post(_path(link))
    assert refused.status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=someone_else).exists()
    logged_out = Client().post(_path(link))
    assert logged_out.status_code == 302 and "/accounts/login/" in logged_out["Location"]
    _signed_in(invitee).post(_path(link))
    assert Membership.objects.filter(workspace=workspace, user=invitee).exists()


def test_expired_revoked_resent_and_unknown_links_get_a_clear_page(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, expiring, revoked, resent = make_user(), make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    client = _signed_in(owner)
    expiring_link, revoked_link, first_link = (_invite(client, u.email) for u in (expiring, revoked, resent))
    members_page = client.get("/workspaces/members/").content.decode()
    assert all(f'data-invitation="{u.email}"' in members_page for u in (expiring, revoked, resent))

    Invitation.objects.filter(workspace=workspace, email=expiring.email).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    page = _signed_in(expiring).get(_path(expiring_link))
    assert page.status_code == 410 and b"expired" in page.content
    assert _signed_in(expiring).post(_path(expiring_link)).status_code == 410

    invitation = Invitation.objects.get(workspace=workspace, email=revoked.email)
    client.post(f"/workspaces/invitations/{invitation.pk}/revoke/")
    page = _signed_in(revoked).get(_path(revoked_link))
    assert page.status_code == 410 and b"revoked" in page.content
    assert f'data-invitation="{revoked.email}"' not in client.get("/workspaces/members/").content.decode()

    invitation = Invitation.objects.get(workspace=workspace, email=resent.email)
    client.post(f"/workspaces/invitations/{invitation.pk}/resend/")
    second_link = LINK.search(mail.outbox[-1].body).group(0)
    assert second_link != first_link and mail.outbox[-1].to == [resent.email]
    assert _signed_in(resent).get(_path(first_link)).status_code == 404, "a resent invitation replaces the old link"
    _signed_in(resent).post(_path(second_link))
    assert Membership.objects.filter(workspace=workspace, user__in=[expiring, revoked, resent]).count() == 1

    unknown = Client().get("/workspaces/invite/not-a-real-token/")
    assert unknown.status_code == 404 and b"not valid" in unknown.content


def test_admins_cannot_invite_owners_and_members_cannot_invite_or_revoke(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, admin, member = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=admin, role="admin")
    member_add(workspace=workspace, user=member, role="member")
    admin_client = _signed_in(admin, workspace)
    page = admin_client.post("/workspaces/members/", {"email": "boss@example.com", "role": "owner"})
    assert page.status_code == 200 and "Only owners can make someone an owner" in page.content.decode()
    assert not Invitation.objects.filter(workspace=workspace, email="boss@example.com").exists()
    _invite(admin_client, "helper@example.com", role="admin")
    invitation = Invitation.objects.get(workspace=workspace, email="helper@example.com")
    member_client = _signed_in(member, workspace)
    assert member_client.post("/workspaces/members/", {"email": "x@example.com", "role": "member"}).status_code == 403
    assert member_client.post(f"/workspaces/invitations/{invitation.pk}/revoke/").status_code == 403
    assert "helper@example.com" not in member_client.get("/workspaces/members/").content.decode()
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_an_unverified_address_matching_the_invitation_cannot_accept_it(make_user, make_workspace):  # type: ignore[no-untyped-def]
    from allauth.account.models import EmailAddress

    owner, user, bare = make_user(), make_user(), make_user()
    workspace = make_workspace(owner=owner)
    invited = f"Second-{timezone.now().timestamp():.0f}@Example.com"
    EmailAddress.objects.create(user=user, email=invited, verified=False, primary=False)
    link = _invite(_signed_in(owner), invited.lower())
    client = _signed_in(user)
    page = client.get(_path(link)).content.decode()
    assert "Accept invitation" not in page and "not confirmed yet" in page and 'href="/accounts/email/"' in page
    assert client.post(_path(link)).status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=user).exists()

    EmailAddress.objects.filter(user=bare).delete()  # the account's email column alone proves nothing
    bare_link = _invite(_signed_in(owner), bare.email)
    assert _signed_in(bare).post(_path(bare_link)).status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=bare).exists()

    EmailAddress.objects.filter(user=user, email__iexact=invited).update(verified=True)
    assert client.post(_path(link)).status_code == 302
    assert Membership.objects.filter(workspace=workspace, user=user).exists()
