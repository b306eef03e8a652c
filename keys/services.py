from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, cast

import orjson
import redis
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.catalog.publish import redis_sync
from gateway.hotpath.directory import KeyRecord
from gateway.hotpath.forward import MAX_ATTEMPTS_CAP
from gateway.hotpath.key_policy import KeyPolicy
from gateway.hotpath.redis_keys import key_record_key
from tenants.models import KeyIndex, Workspace

from .models import ApiKey, model_names_validate
from .selectors import model_names_offered
from .tokens import KEY_PREFIX, token_hash

PREFIX_VISIBLE = 12


def key_policy(workspace: Workspace, key: ApiKey) -> dict[str, Any]:
    """The limits, budgets and quota the gateway enforces for this key, as published in
    its hot record: the key's own, its creator's (as a member) and the workspace's, with the
    workspace's routing bounds (only where they differ from the defaults, to keep it small)."""
    from billing.models import Plan
    from tenants.models import Membership

    policy: dict[str, Any] = {}
    own: dict[str, Any] = dict(key.rate_limits())
    if key.budget_policy():
        own["budget"] = key.budget_policy()
    if own:
        policy["key"] = own
    member = Membership.objects.filter(workspace=workspace, user_id=key.created_by_id).first() if key.created_by_id else None
    if member is not None and member.rate_limits():
        policy["user"] = {"id": key.created_by_id, **member.rate_limits()}
    shared: dict[str, Any] = dict(workspace.rate_limits())
    if workspace.budget_policy():
        shared["budget"] = workspace.budget_policy()
    plan = workspace.plan or Plan.objects.filter(code="free").first()
    if plan is not None and plan.monthly_request_quota:
        shared["quota"] = plan.monthly_request_quota
    if workspace.limits_fail_open:
        shared["fail_open"] = True
    if workspace.routing_max_attempts < MAX_ATTEMPTS_CAP:
        shared["max_attempts"] = workspace.routing_max_attempts
    if not workspace.routing_overrides:
        shared["overrides"] = False
    cache = key_cache_policy(workspace, key)
    if cache is not None:
        policy["cache"] = cache
    if key.allowed_models:
        policy["models"] = sorted(key.allowed_models)
    if shared:
        policy["workspace"] = shared
    return policy


def key_cache_policy(workspace: Workspace, key: ApiKey) -> dict[str, Any] | None:
    """The response cache settings for this key: its own where set, else the workspace's.
    None: no caching at all."""
    enabled = workspace.cache_enabled if key.cache_enabled is None else key.cache_enabled
    if not enabled:
        return None
    semantic = workspace.cache_semantic if key.cache_semantic is None else key.cache_semantic
    threshold = key.cache_semantic_threshold or workspace.cache_semantic_threshold
    return {
        "ttl": key.cache_ttl_seconds or workspace.cache_ttl_seconds,
        "scope": workspace.cache_scope,
        "nondeterministic": workspace.cache_nondeterministic,
        "semantic": semantic,
        **({"threshold": threshold} if threshold else {}),
    }


def key_record_build(workspace: Workspace, key: ApiKey) -> KeyRecord:
    return KeyRecord(
        key_hash=key.key_hash,
        workspace_id=workspace.pk,
        schema=workspace.schema_name,
        slug=workspace.slug,
        key_id=key.pk,
        key_name=key.name,
        revoked=key.revoked_at is not None,
        policy=KeyPolicy.from_wire(key_policy(workspace, key)),
    )


def key_record_write(record: KeyRecord) -> None:
    """Publish a key's hot record; every gateway process reads it within KEY_TTL."""
    redis_sync().set(key_record_key(record.key_hash), orjson.dumps(record.to_wire()))


def key_record_load(key_hash: str) -> KeyRecord | None:
    """Rebuild a key's record from PostgreSQL (cold start, Redis lost) and publish it: the
    gateway's key loader (settings.GATEWAY_KEY_LOADER)."""
    entry = KeyIndex.objects.select_related("workspace").filter(key_hash=key_hash).first()
    if entry is None:
        return None
    with schema_context(entry.workspace.schema_name):
        key = ApiKey.objects.filter(pk=entry.key_id).first()
        if key is None:
            return None
        record = key_record_build(entry.workspace, key)
    try:
        key_record_write(record)
    except redis.RedisError:  # Redis down: serve from PostgreSQL; publishing waits for the next change
        pass
    return record


def workspace_keys_publish(*, workspace: Workspace) -> int:
    """Re-publish every key's hot record (after a workspace, member or plan limit changed)."""
    with schema_context(workspace.schema_name):
        records = [key_record_build(workspace, key) for key in ApiKey.objects.all()]
    for record in records:
        key_record_write(record)
    return len(records)


def model_names_clean(*, workspace: Workspace, names: object, kept: Iterable[str] = ()) -> list[str]:
    """A key's model list, sorted and without repeats, or a ValidationError saying what is wrong
    with it. Each name must be offered to the workspace, or already be on the key (`kept`): a model
    renamed or deleted since stays listed, matching nothing, until someone removes it, so saving a
    key's other settings never widens what it may call."""
    model_names_validate(names)
    wanted = set(cast(list[str], names))
    unknown = sorted(wanted - set(model_names_offered(workspace=workspace)) - set(kept))
    if unknown:
        shown = ", ".join(f"“{name}”" for name in unknown[:5])
        if len(unknown) > 5:
            shown += f" and {len(unknown) - 5} more"
        raise ValidationError(f"Not a model this workspace can use: {shown}.", code="unknown_model")
    return sorted(wanted)


def _model_names_field_clean(*, workspace: Workspace, names: object, kept: Iterable[str] = ()) -> list[str]:
    try:
        return model_names_clean(workspace=workspace, names=names, kept=kept)
    except ValidationError as exc:
        raise ValidationError({"allowed_models": exc.error_list}) from exc


def api_key_create(
    *, workspace: Workspace, name: str, created_by_id: int | None = None, allowed_models: list[str] | None = None
) -> tuple[ApiKey, str]:
    """Issue a key, limited to `allowed_models` if given (a ValidationError when one is not offered
    to the workspace). The secret is returned once and only its hash is stored."""
    models = _model_names_field_clean(workspace=workspace, names=allowed_models or [])
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with schema_context(workspace.schema_name), transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=secret[:PREFIX_VISIBLE], key_hash=token_hash(secret), created_by_id=created_by_id,
            allowed_models=models,
        )
        KeyIndex.objects.create(key_hash=key.key_hash, workspace=workspace, key_id=key.pk)
    # after our atomic block: committed, unless a caller's own transaction is still open
    key_record_write(key_record_build(workspace, key))
    return key, secret


def api_key_revoke(*, workspace: Workspace, key: ApiKey) -> ApiKey:
    """Revoke a key; every gateway process refuses it within a second."""
    if key.revoked_at is not None:
        return key
    with schema_context(workspace.schema_name), transaction.atomic():
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        KeyIndex.objects.filter(key_hash=key.key_hash).update(revoked=True)
    key_record_write(key_record_build(workspace, key))
    return key


def api_key_rename(*, workspace: Workspace, key: ApiKey, name: str) -> ApiKey:
    with schema_context(workspace.schema_name), transaction.atomic():
        key.name = name
        key.save(update_fields=["name"])
    key_record_write(key_record_build(workspace, key))
    return key


def api_keys_list(*, workspace: Workspace) -> list[ApiKey]:
    with schema_context(workspace.schema_name):
        return list(ApiKey.objects.all())


def api_key_get(*, workspace: Workspace, key_id: int) -> ApiKey | None:
    with schema_context(workspace.schema_name):
        return ApiKey.objects.filter(pk=key_id).first()


KEY_POLICY_FIELDS = ("rpm_limit", "tpm_limit", "budget_amount", "budget_period", "budget_hard", "budget_alert_thresholds",
                     "cache_enabled", "cache_semantic", "cache_semantic_threshold", "cache_ttl_seconds",
                     "allowed_models")


def api_key_policy_update(*, workspace: Workspace, key: ApiKey, **fields: Any) -> ApiKey:
    """Set a key's rate limits, budget, response cache overrides (None: as the workspace) and the
    models it may call ([]: all); every gateway process applies them within a second."""
    unknown = set(fields) - set(KEY_POLICY_FIELDS)
    if unknown:
        raise TypeError(f"not key policy fields: {sorted(unknown)}")
    if "allowed_models" in fields:
        fields["allowed_models"] = _model_names_field_clean(
            workspace=workspace, names=fields["allowed_models"], kept=key.allowed_models or []
        )
    with schema_context(workspace.schema_name), transaction.atomic():
        for name, value in fields.items():
            setattr(key, name, value)
        key.full_clean(exclude=["key_hash"])
        key.save(update_fields=list(fields))
        record = key_record_build(workspace, key)
    key_record_write(record)
    return key

