"""Rotating AIPROXY_ENCRYPTION_KEY: a new key first, old keys still decrypt, credentials_reencrypt
moves every stored credential (database and the gateway's published catalog) to the new key,
then the old key can go."""

from __future__ import annotations

import uuid
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateway.catalog.models import Provider
from gateway.catalog.publish import redis_sync
from gateway.catalog.services import model_group_create
from gateway.hotpath.directory import _groups_from_snapshot
from gateway.hotpath.redis_keys import CATALOG_KEY

OLD, NEW = "old-rotation-key-" + uuid.uuid4().hex, "new-rotation-key-" + uuid.uuid4().hex


@pytest.fixture
def install_keys(settings):  # type: ignore[no-untyped-def]
    """The suite's own keys; every credential is moved back to them afterwards, for the other tests."""
    original = list(settings.ENCRYPTION_KEYS)
    yield original
    settings.ENCRYPTION_KEYS = [*original, NEW, OLD]
    call_command("credentials_reencrypt", stdout=StringIO())


def _reencrypt() -> str:
    out = StringIO()
    call_command("credentials_reencrypt", stdout=out)
    return out.getvalue()


def test_rotated_key_keeps_old_credentials_readable_and_reencrypt_lets_the_old_key_go(settings, install_keys):  # type: ignore[no-untyped-def]
    settings.ENCRYPTION_KEYS = [OLD, *install_keys]
    secrets = {f"rot-{uuid.uuid4().hex[:8]}": f"upstream-secret-{uuid.uuid4().hex}" for _ in range(3)}
    for name, secret in secrets.items():
        provider = Provider(name=name, kind="openai", base_url="https://api.openai.com/v1")
        provider.set_credential(secret)
        provider.save()
        model_group_create(public_name=f"{name}-model", provider=provider, upstream_name="gpt-4o-mini")
    Provider.objects.create(name=f"rot-{uuid.uuid4().hex[:8]}", kind="openai-compatible", base_url="http://x/v1")

    settings.ENCRYPTION_KEYS = [NEW, OLD, *install_keys]  # rotation, step 1: the new key first
    for name, secret in secrets.items():
        assert Provider.objects.get(name=name).get_credential() == secret  # the old key still decrypts
    fresh = Provider(name=f"rot-{uuid.uuid4().hex[:8]}", kind="openai", base_url="https://api.openai.com/v1")
    fresh.set_credential("written-after-rotation")  # new credentials use the new key at once
    fresh.save()

    output = _reencrypt()  # step 2
    assert "re-encrypted" in output and "0 unreadable" in output
    assert int(output.split()[0]) >= len(secrets)
    assert all(secret not in output for secret in secrets.values())
    second = _reencrypt()
    assert second.startswith("0 provider credential(s) re-encrypted")  # idempotent

    settings.ENCRYPTION_KEYS = [NEW]  # step 3: the old keys are gone
    for name, secret in secrets.items():
        assert Provider.objects.get(name=name).get_credential() == secret
    assert Provider.objects.get(pk=fresh.pk).get_credential() == "written-after-rotation"
    groups = _groups_from_snapshot(orjson.loads(redis_sync().get(CATALOG_KEY)))  # what gateways read
    assert {name: groups[f"{name}-model"].deployments[0].credential for name in secrets} == secrets

    settings.ENCRYPTION_KEYS = [OLD]  # and the old key alone no longer reads anything
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Provider.objects.get(name=next(iter(secrets))).get_credential()


def test_reencrypt_names_credentials_no_key_decrypts_and_never_prints_them(settings, install_keys):  # type: ignore[no-untyped-def]
    settings.ENCRYPTION_KEYS = [OLD, *install_keys]
    lost = Provider(name=f"rot-lost-{uuid.uuid4().hex[:8]}", kind="openai", base_url="https://api.openai.com/v1")
    lost.set_credential("lost-upstream-secret")
    lost.save()
    settings.ENCRYPTION_KEYS = [NEW, *install_keys]  # OLD dropped too early
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("credentials_reencrypt", stdout=out)
    assert lost.name in str(raised.value)
    assert "1 unreadable" in out.getvalue()
    assert "lost-upstream-secret" not in str(raised.value) + out.getvalue()
    Provider.objects.filter(pk=lost.pk).delete()
