from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import schema_context

from keys.tokens import token_hash

from .models import AdminToken, Domain, Membership, Workspace

RESERVED_SLUGS = {"www", "api", "admin", "app", "public", "static", "mail"}
ADMIN_TOKEN_PREFIX = "aip-admin-"


def _unique_slug(name: str) -> str:
    base = (slugify(name)[:30].strip("-") or "workspace")
    if base in RESERVED_SLUGS:
        base = f"{base}-ws"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(2)}"
    return slug


def workspace_create(*, name: str, owner: AbstractBaseUser, slug: str | None = None) -> Workspace:
    """Create a workspace: its own schema (migrated), its domain, and the owner's membership.

    Creating the schema runs DDL outside a transaction (django-tenants), so if a later
    step fails the workspace row and schema are removed again.
    """
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        slug = slug or _unique_slug(name)
        workspace = Workspace(name=name, slug=slug, schema_name="ws_" + slug.replace("-", "_"))
        workspace.save()  # creates and migrates the schema
        try:
            with transaction.atomic():
                Domain.objects.create(domain=workspace.host, tenant=workspace, is_primary=True)
                Membership.objects.create(user=owner, workspace=workspace, role=Membership.Role.OWNER)
        except Exception:
            workspace.delete(force_drop=True)
            raise
    return workspace


def membership_get(*, user: AbstractBaseUser, workspace_id: int) -> Membership | None:
    return Membership.objects.select_related("workspace").filter(user=user, workspace_id=workspace_id).first()


def workspaces_for(*, user: AbstractBaseUser) -> list[Membership]:
    return list(Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name"))


def member_add(*, workspace: Workspace, user: AbstractBaseUser, role: str = "member") -> Membership:
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
                           "cache_semantic", "cache_semantic_threshold", "cache_max_mb")


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

