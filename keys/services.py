from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.directory import KeyRecord, key_record_write
from tenants.models import KeyIndex, Workspace

from .models import ApiKey
from .tokens import KEY_PREFIX, token_hash

PREFIX_VISIBLE = 12


def _record(workspace: Workspace, key: ApiKey) -> KeyRecord:
    return KeyRecord(
        key_hash=key.key_hash,
        workspace_id=workspace.pk,
        schema=workspace.schema_name,
        slug=workspace.slug,
        key_id=key.pk,
        key_name=key.name,
        revoked=key.revoked_at is not None,
    )


def api_key_create(*, workspace: Workspace, name: str, created_by_id: int | None = None) -> tuple[ApiKey, str]:
    """Issue a key. The secret is returned once and only its hash is stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with schema_context(workspace.schema_name), transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=secret[:PREFIX_VISIBLE], key_hash=token_hash(secret), created_by_id=created_by_id
        )
        KeyIndex.objects.create(key_hash=key.key_hash, workspace=workspace, key_id=key.pk)
    # after our atomic block: committed, unless a caller's own transaction is still open
    key_record_write(_record(workspace, key))
    return key, secret


def api_key_revoke(*, workspace: Workspace, key: ApiKey) -> ApiKey:
    """Revoke a key; every gateway process refuses it within a second."""
    if key.revoked_at is not None:
        return key
    with schema_context(workspace.schema_name), transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        KeyIndex.objects.filter(key_hash=key.key_hash).update(revoked=True)
    key_record_write(_record(workspace, key))
    return key


def api_key_rename(*, workspace: Workspace, key: ApiKey, name: str) -> ApiKey:
    with schema_context(workspace.schema_name), transaction.atomic():
        key.name = name
        key.save(update_fields=["name"])
    key_record_write(_record(workspace, key))
    return key


def api_keys_list(*, workspace: Workspace) -> list[ApiKey]:
    with schema_context(workspace.schema_name):
        return list(ApiKey.objects.all())


def api_key_get(*, workspace: Workspace, key_id: int) -> ApiKey | None:
    with schema_context(workspace.schema_name):
        return ApiKey.objects.filter(pk=key_id).first()
