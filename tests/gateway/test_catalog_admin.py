"""Providers and models in Django admin; credentials encrypted at rest and never shown."""

from __future__ import annotations

import orjson
from django.db import connection
from django.test import Client

from gateway.directory import CATALOG_KEY, redis_sync
from gateway.models import Model, Provider


def _staff_client(make_user):  # type: ignore[no-untyped-def]
    user = make_user()
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_admin_saves_provider_credential_encrypted_and_never_renders_it(make_user):  # type: ignore[no-untyped-def]
    client = _staff_client(make_user)
    secret = "sk-live-upstream-credential-XYZ123"
    response = client.post("/admin/gateway/provider/add/", {
        "name": "openai-main", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_version": "",
        "enabled": "on", "credential": secret,
    })
    assert response.status_code == 302
    provider = Provider.objects.get(name="openai-main")
    assert provider.get_credential() == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT credential_encrypted FROM gateway_provider WHERE name = 'openai-main'")
        (stored,) = cursor.fetchone()
    assert secret not in stored and stored
    page = client.get(f"/admin/gateway/provider/{provider.pk}/change/").content.decode()
    assert secret not in page and stored not in page
    # saving again without a credential keeps the stored one
    client.post(f"/admin/gateway/provider/{provider.pk}/change/", {
        "name": "openai-main", "kind": "openai", "base_url": "https://api.openai.com/v1", "api_version": "", "enabled": "on",
    })
    provider.refresh_from_db()
    assert provider.get_credential() == secret


def test_model_added_in_admin_is_published_to_gateway_catalog(make_user):  # type: ignore[no-untyped-def]
    client = _staff_client(make_user)
    provider = Provider(name="local-vllm", kind="openai-compatible", base_url="http://127.0.0.1:9/v1")
    provider.set_credential("local-secret-abc")
    provider.save()
    response = client.post("/admin/gateway/model/add/", {
        "public_name": "llama-local", "provider": provider.pk, "upstream_name": "meta-llama/Llama-3.1-8B",
        "input_price_per_mtok": "0.10", "output_price_per_mtok": "0.20", "context_window": "8192", "enabled": "on",
    })
    assert response.status_code == 302 and Model.objects.filter(public_name="llama-local").exists()
    raw = redis_sync().get(CATALOG_KEY)
    snapshot = orjson.loads(raw)
    entry = next(m for m in snapshot["models"] if m["public_name"] == "llama-local")
    assert entry["upstream_name"] == "meta-llama/Llama-3.1-8B" and entry["input_price_per_mtok"] == "0.100000"
    assert b"local-secret-abc" not in raw, "credentials stay encrypted in Redis too"
