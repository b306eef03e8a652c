from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import schema_context, schema_exists

from keys.tokens import token_hash

from .models import AdminToken, Domain, Membership, Workspace

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

