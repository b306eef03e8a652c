"""Providers and model groups in Django admin; credentials encrypted at rest and never shown."""

from __future__ import annotations

from html.parser import HTMLParser

import orjson
from django.db import connection

from gateway.catalog.models import Model, Provider
from gateway.catalog.publish import redis_sync
from gateway.catalog.services import model_group_create
from gateway.hotpath.bounds import BOUND_NAMES, DEFAULT_BOUNDS
from gateway.hotpath.redis_keys import CATALOG_KEY
from tests.gateway.admin_forms import deployment_row, inline_rows, staff_client


def test_admin_saves_provider_credential_encrypted_and_never_renders_it(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
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
    client = staff_client(make_user())
    provider = Provider(name="local-vllm", kind="openai-compatible", base_url="http://127.0.0.1:9/v1")
    provider.set_credential("local-secret-abc")
    provider.save()
    response = client.post("/admin/gateway/model/add/", {
        "public_name": "llama-local", "context_window": "8192", "enabled": "on", "strategy": "weighted",
        "max_attempts": "3", "retry_deadline_seconds": "60",
        **inline_rows("deployments", [deployment_row(provider=provider.pk, upstream_name="meta-llama/Llama-3.1-8B",
                                                     input_price_per_mtok="0.10", output_price_per_mtok="0.20")]),
        **inline_rows("fallback_links", []),
    })
    assert response.status_code == 302 and Model.objects.filter(public_name="llama-local").exists()
    raw = redis_sync().get(CATALOG_KEY)
    snapshot = orjson.loads(raw)
    (entry,) = next(g for g in snapshot["groups"] if g["name"] == "llama-local")["deployments"]
    assert entry["upstream_name"] == "meta-llama/Llama-3.1-8B" and entry["input_price_per_mtok"] == "0.100000"
    assert entry["name"] == "local-vllm", "an empty name is the provider's"
    assert b"local-secret-abc" not in raw, "credentials stay encrypted in Redis too"


def _model_form(model: Model, **changes: str) -> dict[str, object]:
    data: dict[str, object] = {
        "public_name": model.public_name, "context_window": "", "enabled": "on", "rpm_limit": "", "tpm_limit": "",
        "strategy": model.strategy, "max_attempts": str(model.max_attempts),
        "retry_deadline_seconds": str(model.retry_deadline_seconds),
        **inline_rows("deployments", []), **inline_rows("fallback_links", []),
    }
    data.update(changes)
    return data


def _published_bounds(public_name: str) -> dict[str, int]:
    snapshot = orjson.loads(redis_sync().get(CATALOG_KEY) or b"{}")
    return next(g["bounds"] for g in snapshot["groups"] if g["name"] == public_name)  # type: ignore[no-any-return]


def test_request_bounds_edited_in_admin_are_published_to_gateway_catalog(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    provider = Provider.objects.create(name="bounds-vllm", kind="openai-compatible", base_url="http://127.0.0.1:9/v1")
    model = model_group_create(public_name="bounded-llama", provider=provider, upstream_name="llama")
    assert _published_bounds("bounded-llama") == {name: getattr(DEFAULT_BOUNDS, name) for name in BOUND_NAMES}
    page = client.get(f"/admin/gateway/model/{model.pk}/change/").content.decode()
    assert "Request bounds" in page and 'name="max_embedding_dimensions"' in page
    response = client.post(f"/admin/gateway/model/{model.pk}/change/", _model_form(
        model, max_n="2", max_output_tokens="4096", max_stop_sequences="4", max_top_logprobs="5", max_logit_bias="10",
        max_embedding_dimensions="", max_embedding_inputs="96"))
    assert response.status_code == 302
    bounds = _published_bounds("bounded-llama")
    assert (bounds["max_n"], bounds["max_output_tokens"], bounds["max_embedding_inputs"]) == (2, 4096, 96)
    assert bounds["max_embedding_dimensions"] == DEFAULT_BOUNDS.max_embedding_dimensions, "empty is the default"
    # a form without the bounds (a script written before they existed) keeps them
    assert client.post(f"/admin/gateway/model/{model.pk}/change/", _model_form(model)).status_code == 302
    assert _published_bounds("bounded-llama")["max_n"] == 2


def test_admin_refuses_a_zero_bound_on_choices(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    provider = Provider.objects.create(name="bounds-zero", kind="openai-compatible", base_url="http://127.0.0.1:9/v1")
    model = model_group_create(public_name="bounded-zero", provider=provider, upstream_name="llama")
    response = client.post(f"/admin/gateway/model/{model.pk}/change/", _model_form(model, max_n="0"))
    assert response.status_code == 200 and "greater than or equal to 1" in response.content.decode()


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def test_admin_shows_the_azure_resource_placeholder_in_the_base_url_help(make_user):  # type: ignore[no-untyped-def]
    page = staff_client(make_user()).get("/admin/gateway/provider/add/").content.decode()
    parser = _VisibleText()
    parser.feed(page)
    assert "Azure https://<resource>.openai.azure.com" in "".join(parser.parts)
