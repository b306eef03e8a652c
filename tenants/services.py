from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import schema_context, schema_exists

from keys.tokens import token_hash

from .models import AdminToken, Domain, Invitation, Membership, Workspace

RESERVED_SLUGS = {"www", "api", "admin", "app", "public", "static", "mail"}
ADMIN_TOKEN_PREFIX = "aip-admin-"


SLUG_MAX = 30
SLUG_ATTEMPTS = 8


class WorkspaceSlugTaken(Exception):
    """An explicitly requested slug (or its schema or host) belongs to another workspace."""


def _slug_base(name: str) -> str:
    """A host label: lowercase letters, digits and single hyphens. Underscores become hyphens, so two
    names that differ only there ("Coll Ab", "coll_ab") get the same base and then distinct slugs,
    never two slugs that map to one schema."""
    base = re.sub(r"-{2,}", "-", slugify(name).replace("_", "-"))[:SLUG_MAX].strip("-") or "workspace"
    return f"{base}-ws" if base in RESERVED_SLUGS else base


def _schema_name(slug: str) -> str:
    return "ws_" + slug.replace("-", "_")


def _slug_taken(slug: str) -> bool:
    """Taken by a workspace (its slug, schema or host), or by a schema left in the database: a new
    workspace never adopts an old schema and its data."""
    schema_name = _schema_name(slug)
    return (
        Workspace.objects.filter(Q(slug=slug) | Q(schema_name=schema_name)).exists()
        or Domain.objects.filter(domain=f"{slug}.{settings.BASE_DOMAIN}").exists()
        or schema_exists(schema_name)
    )


def _slug_candidates(name: str) -> Iterator[str]:
    base = _slug_base(name)
    yield base
    for _ in range(SLUG_ATTEMPTS - 1):
        yield f"{base[: SLUG_MAX - 7].rstrip('-')}-{secrets.token_hex(3)}"


def workspace_create(*, name: str, owner: AbstractBaseUser, slug: str | None = None) -> Workspace:
    """Create a workspace: its own schema (migrated), its domain, and the owner's membership, in one
    transaction (PostgreSQL rolls the schema's DDL back too), so a failure leaves no part of it.

    The slug comes from the name; when it, its schema or its host is taken, by an earlier workspace
    or by a concurrent sign-up (the unique constraints decide), the next candidate has a random
    suffix. An explicit `slug` that is taken raises WorkspaceSlugTaken.
    """
    candidates = iter([slug]) if slug else _slug_candidates(name)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        for candidate in candidates:
            if _slug_taken(candidate):
                continue
            try:
                with transaction.atomic():
                    workspace = Workspace(name=name, slug=candidate, schema_name=_schema_name(candidate))
                    workspace.save()  # creates and migrates the schema
                    Domain.objects.create(domain=workspace.host, tenant=workspace, is_primary=True)
                    Membership.objects.create(user=owner, workspace=workspace, role=Membership.Role.OWNER)
            except (IntegrityError, ValidationError):
                if not _slug_taken(candidate):
                    raise
                continue  # a concurrent sign-up took it first
            return workspace
    raise WorkspaceSlugTaken(f"No free workspace address for {slug or name!r}; try another name.")


def membership_get(*, user: AbstractBaseUser, workspace_id: int) -> Membership | None:
    return Membership.objects.select_related("workspace").filter(user=user, workspace_id=workspace_id).first()


def workspaces_for(*, user: AbstractBaseUser) -> list[Membership]:
    return list(Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name"))


def member_add(*, workspace: Workspace, user: AbstractBaseUser, role: str = "member") -> Membership:
    """Membership without the user's consent: for operators' tooling and tests only; people join
    through an invitation they accept (invitation_create, invitation_accept)."""
    membership, _ = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


def admin_token_create(*, workspace: Workspace, name: str, created_by: AbstractBaseUser | None) -> tuple[AdminToken, str]:
    secret = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AdminToken.objects.create(
        workspace=workspace, name=name, prefix=secret[:16], token_hash=token_hash(secret), created_by=created_by
    )
    return token, secret


def admin_token_revoke(*, token: AdminToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def public_domain_ensure() -> None:
    """The public tenant and its domain (BASE_DOMAIN), created once."""
    public, _ = Workspace.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME, defaults={"name": "Public", "slug": "public"}
    )
    Domain.objects.get_or_create(domain=settings.BASE_DOMAIN, defaults={"tenant": public, "is_primary": True})


WORKSPACE_POLICY_FIELDS = ("rpm_limit", "tpm_limit", "budget_amount", "budget_period", "budget_hard",
                           "budget_alert_thresholds", "budget_alert_recipients", "limits_fail_open", "plan",
                           "cache_enabled", "cache_ttl_seconds", "cache_scope", "cache_nondeterministic",
                           "cache_semantic", "cache_semantic_threshold", "cache_max_mb", "routing_max_attempts",
                           "routing_overrides")


def workspace_policy_update(*, workspace: Workspace, **fields: object) -> Workspace:
    """Set the workspace's limits, budget, plan or alert recipients, and re-publish its keys'
    hot records so every gateway process enforces the change within a second."""
    from keys.services import workspace_keys_publish

    unknown = set(fields) - set(WORKSPACE_POLICY_FIELDS)
    if unknown:
        raise TypeError(f"not workspace policy fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(workspace, name, value)
    workspace.full_clean(exclude=["schema_name"])
    workspace.save(update_fields=list(fields))
    workspace_keys_publish(workspace=workspace)
    return workspace


def member_limits_update(*, membership: Membership, rpm_limit: int | None, tpm_limit: int | None) -> Membership:
    """Per-member rate limits, over every key the member created in the workspace."""
    from keys.services import workspace_keys_publish

    membership.rpm_limit, membership.tpm_limit = rpm_limit, tpm_limit
    membership.full_clean()
    membership.save(update_fields=["rpm_limit", "tpm_limit"])
    workspace_keys_publish(workspace=membership.workspace)
    return membership



# --- Invitations, roles and removal --------------------------------------------------------
# Joining a workspace takes the invitee's consent: an owner or admin invites an email, the
# invitee follows the emailed link while signed in as that email, and accepts.

INVITATION_VALID_FOR = timedelta(days=7)


class MembershipError(Exception):
    """A refused invitation, role change or removal; the message is shown to the user."""


class InvitationInvalid(Exception):
    """An invitation link that cannot be used; `reason` says why (unknown, revoked, used, expired)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def membership_use(*, membership: Membership) -> None:
    """Remember the workspace the user works in, so they land in it when they next sign in."""
    membership.last_used_at = timezone.now()
    membership.save(update_fields=["last_used_at"])


def membership_last_used(*, user: AbstractBaseUser) -> Membership | None:
    """The workspace the user last picked; else the first they joined."""
    return (
        Membership.objects.select_related("workspace")
        .filter(user=user)
        .order_by(F("last_used_at").desc(nulls_last=True), "created_at", "pk")
        .first()
    )


def _invitation_send(*, invitation: Invitation, base_url: str | None) -> str:
    """Give the invitation a fresh token and expiry (older links stop working) and email the link."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_hash = token_hash(token)
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_VALID_FOR
    invitation.save()
    link = (base_url or settings.SITE_URL).rstrip("/") + reverse("tenants:invitation_accept", args=[token])
    inviter = invitation.invited_by.email if invitation.invited_by else "An owner"
    context = {"invitation": invitation, "link": link, "inviter": inviter, "workspace": invitation.workspace,
               "days": INVITATION_VALID_FOR.days}
    send_mail(
        subject=f"{inviter} invited you to the {invitation.workspace.name} workspace on AIProxy",
        message=render_to_string("tenants/invitation_email.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
    return token


def _invite_role_check(*, actor: Membership, role: str) -> None:
    if not actor.is_admin:
        raise MembershipError("Only the workspace's owners and admins can invite members.")
    if role not in Membership.Role.values:
        raise MembershipError(f"Unknown role “{role}”.")
    if role == Membership.Role.OWNER and not actor.is_owner:
        raise MembershipError("Only owners can make someone an owner.")


def invitation_create(*, actor: Membership, email: str, role: str, base_url: str | None = None) -> Invitation:
    """Invite an email (registered or not) to the actor's workspace and email them the link.

    Inviting an email that already has a pending invitation updates its role and sends a new link."""
    _invite_role_check(actor=actor, role=role)
    workspace = actor.workspace
    email = email.strip().lower()
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise MembershipError(f"{email} is already a member of this workspace.")
    invitation = next((i for i in invitations_pending(workspace=workspace) if i.email == email), None)
    if invitation is None:
        invitation = Invitation(workspace=workspace, email=email)
    invitation.role, invitation.invited_by = role, actor.user
    _invitation_send(invitation=invitation, base_url=base_url)
    return invitation


def invitations_pending(*, workspace: Workspace) -> list[Invitation]:
    return list(
        Invitation.objects.select_related("invited_by")
        .filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-sent_at")
    )


def invitation_resend(*, actor: Membership, invitation: Invitation, base_url: str | None = None) -> Invitation:
    """Email a new link (the old one stops working) valid for another full period."""
    if invitation.workspace_id != actor.workspace_id:
        raise MembershipError("No such invitation in this workspace.")
    _invite_role_check(actor=actor, role=invitation.role)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise MembershipError("This invitation was already accepted or revoked.")
    _invitation_send(invitation=invitation, base_url=base_url)
    return invitation


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> Invitation:
    if invitation.workspace_id != actor.workspace_id:
        raise MembershipError("No such invitation in this workspace.")
    if not actor.is_admin:
        raise MembershipError("Only the workspace's owners and admins can revoke invitations.")
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_for_token(*, token: str) -> Invitation:
    """The invitation a link stands for; InvitationInvalid when it cannot be accepted."""
    found = Invitation.objects.select_related("workspace", "invited_by").filter(token_hash=token_hash(token))
    invitation = found.first()
    if invitation is None:
        raise InvitationInvalid("unknown")
    if invitation.revoked_at is not None:
        raise InvitationInvalid("revoked")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("used")
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid("expired")
    return invitation


def user_email_status(*, user: AbstractBaseUser, email: str) -> str | None:
    """"verified" when one of the user's addresses is this email and confirmed, "unverified" when
    it is theirs but not confirmed yet, else None. Only a confirmed address proves the user reads
    that mailbox; the account's `email` column alone does not."""
    from allauth.account.models import EmailAddress

    verified = EmailAddress.objects.filter(user=user, email__iexact=email).values_list("verified", flat=True)
    if any(verified):
        return "verified"
    if verified or (getattr(user, "email", "") or "").lower() == email.lower():
        return "unverified"
    return None


def user_has_email(*, user: AbstractBaseUser, email: str) -> bool:
    """The user has confirmed this email (one of their allauth addresses, verified)."""
    return user_email_status(user=user, email=email) == "verified"


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Join the workspace as the invitation's role; the link then stops working. The user must
    be signed in as the invited email. An existing membership keeps its role."""
    with transaction.atomic():
        invitation = invitation_for_token(token=token)
        invitation = Invitation.objects.select_for_update().select_related("workspace").get(pk=invitation.pk)
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise InvitationInvalid("used" if invitation.accepted_at else "revoked")
        status = user_email_status(user=user, email=invitation.email)
        if status == "unverified":
            raise MembershipError(f"Confirm {invitation.email} first: open the link in the confirmation email we sent "
                                  "it (or send it again from your email page), then accept.")
        if status is None:
            raise MembershipError(f"This invitation is for {invitation.email}. Sign in as that email to accept it.")
        membership, _ = Membership.objects.get_or_create(
            workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        membership_use(membership=membership)
    return membership


def _same_workspace(actor: Membership, membership: Membership) -> None:
    if actor.workspace_id != membership.workspace_id:
        raise MembershipError("No such member in this workspace.")


def _owners_locked(workspace: Workspace) -> int:
    """How many owners the workspace has, with their rows locked until the transaction ends."""
    return len(list(Membership.objects.select_for_update().filter(workspace=workspace, role=Membership.Role.OWNER)))


def _admin_tokens_revoke(*, membership: Membership) -> None:
    """Admin tokens act as a workspace admin: those a user issued go when they stop being one."""
    AdminToken.objects.filter(
        workspace=membership.workspace, created_by_id=membership.user_id, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


def member_role_change(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """Owners change anyone's role; admins change admins' and members' roles but not to owner.
    A workspace keeps at least one owner."""
    _same_workspace(actor, membership)
    if not actor.is_admin:
        raise MembershipError("Only the workspace's owners and admins can change roles.")
    if role not in Membership.Role.values:
        raise MembershipError(f"Unknown role “{role}”.")
    if not actor.is_owner and (role == Membership.Role.OWNER or membership.is_owner):
        raise MembershipError("Only owners can make someone an owner or change an owner's role.")
    with transaction.atomic():
        if membership.is_owner and role != Membership.Role.OWNER and _owners_locked(membership.workspace) <= 1:
            raise MembershipError("A workspace needs an owner: make someone else an owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
        if not membership.is_admin:
            _admin_tokens_revoke(membership=membership)
    return membership


def member_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member (or leave, when actor is the membership). Owners remove anyone; admins
    remove admins and members. The API keys and admin tokens the member created in the workspace
    are revoked, so nobody keeps access through them (and the member's rate limits cannot be
    shed by leaving). A workspace keeps at least one owner."""
    from keys.models import ApiKey
    from keys.services import api_key_revoke

    _same_workspace(actor, membership)
    leaving = actor.pk == membership.pk
    if not leaving and not actor.is_admin:
        raise MembershipError("Only the workspace's owners and admins can remove members.")
    if not leaving and membership.is_owner and not actor.is_owner:
        raise MembershipError("Only owners can remove an owner.")
    workspace = membership.workspace
    with transaction.atomic():
        if membership.is_owner and _owners_locked(workspace) <= 1:
            raise MembershipError("A workspace needs an owner: make someone else an owner first.")
        _admin_tokens_revoke(membership=membership)
        membership.delete()
    with schema_context(workspace.schema_name):
        keys = list(ApiKey.objects.filter(created_by_id=membership.user_id, revoked_at__isnull=True))
    for key in keys:
        api_key_revoke(workspace=workspace, key=key)
