"""Management API for keys: session and admin-token auth, workspace isolation."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from keys.models import ApiKey
from keys.tokens import token_hash as key_hash
from tenants.models import KeyIndex
from tenants.services import admin_token_create, admin_token_revoke


@pytest.fixture
def admin_client(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = admin_token_create(workspace=workspace, name="ci", created_by=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return workspace, client


def test_admin_token_creates_key_and_secret_is_only_stored_as_hash(admin_client):  # type: ignore[no-untyped-def]
    workspace, client = admin_client
    response = client.post("/api/keys/", {"name": "backend"}, format="json")
    assert response.status_code == 201
    secret = response.json()["key"]
    assert secret.startswith("sk-aip-") and response.json()["prefix"] == secret[:12]
    index = KeyIndex.objects.get(key_hash=key_hash(secret))
    assert index.workspace == workspace
    from django_tenants.utils import schema_context

    with schema_context(workspace.schema_name):
        stored = ApiKey.objects.get()
    assert stored.key_hash == key_hash(secret) and secret not in str(stored.__dict__)
    listed = client.get("/api/keys/").json()
    assert [k["name"] for k in listed] == ["backend"] and "key" not in listed[0]


def test_revoke_through_api_marks_key_revoked(admin_client):  # type: ignore[no-untyped-def]
    _, client = admin_client
    key_id = client.post("/api/keys/", {"name": "temp"}, format="json").json()["id"]
    response = client.delete(f"/api/keys/{key_id}/")
    assert response.status_code == 200 and response.json()["revoked"] is True
    assert client.get(f"/api/keys/{key_id}/").json()["revoked_at"] is not None


def test_api_keys_of_one_workspace_are_invisible_to_another(admin_client, make_workspace):  # type: ignore[no-untyped-def]
    _, client_a = admin_client
    other = make_workspace()
    _, other_secret = admin_token_create(workspace=other, name="other", created_by=None)
    client_b = APIClient()
    client_b.credentials(HTTP_AUTHORIZATION=f"Bearer {other_secret}")
    key_id = client_a.post("/api/keys/", {"name": "a-only"}, format="json").json()["id"]
    assert client_b.get("/api/keys/").json() == []
    assert client_b.get(f"/api/keys/{key_id}/").status_code == 404
    assert client_b.delete(f"/api/keys/{key_id}/").status_code == 404


def test_missing_name_is_400(admin_client):  # type: ignore[no-untyped-def]
    _, client = admin_client
    response = client.post("/api/keys/", {}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_unauthenticated_and_revoked_tokens_are_refused(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    token, secret = admin_token_create(workspace=workspace, name="x", created_by=None)
    assert APIClient().get("/api/keys/").status_code in (401, 403)
    admin_token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/keys/").status_code == 401


def test_session_user_manages_keys_of_current_workspace(make_user, make_workspace):  # type: ignore[no-untyped-def]
    user = make_user()
    workspace = make_workspace(owner=user)
    client = APIClient()
    client.force_login(user)
    assert client.post("/api/keys/", {"name": "from-session"}, format="json").status_code == 201
    assert [k["name"] for k in client.get("/api/keys/").json()] == ["from-session"]
    assert workspace.slug


def test_openapi_schema_and_docs_are_served():  # type: ignore[no-untyped-def]
    schema = APIClient().get("/api/schema/")
    assert schema.status_code == 200 and b"/api/keys/" in schema.content
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_wrong_admin_token_is_refused_as_invalid_not_as_missing(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    _, secret = admin_token_create(workspace=workspace, name="x", created_by=None)
    for wrong in ["aip-admin-" + "x" * 43, secret[:-1], "not-a-token", ""]:
        response = _bearer(wrong).get("/api/keys/")
        assert response.status_code == 401, wrong
        assert response.json() == {"detail": "Invalid admin token."}, wrong
        assert response["WWW-Authenticate"].startswith("Bearer")
    sk = _bearer(secret).post("/api/keys/", {"name": "proxy"}, format="json").json()["key"]
    detail = _bearer(sk).get("/api/keys/").json()["detail"]
    assert detail.startswith("Invalid admin token.") and "gateway" in detail
    other_scheme = APIClient()
    other_scheme.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    response = other_scheme.get("/api/keys/")
    assert response.status_code == 401 and "Bearer" in response.json()["detail"]
    assert APIClient().get("/api/keys/").json() == {"detail": "Authentication credentials were not provided."}


def test_a_revoked_admin_token_is_refused_as_revoked(make_workspace):  # type: ignore[no-untyped-def]
    token, secret = admin_token_create(workspace=make_workspace(), name="x", created_by=None)
    admin_token_revoke(token=token)
    response = _bearer(secret).get("/api/workspace/")
    assert response.status_code == 401 and response.json() == {"detail": "This admin token has been revoked."}


def test_unknown_management_api_paths_answer_json_404(admin_client):  # type: ignore[no-untyped-def]
    _, client = admin_client
    for path in ["/api/keys/abc/", "/api/keys/-1/", "/api/keys/99999999999999999999999/", "/api/nothing/here/"]:
        for method in ("get", "patch", "delete"):
            response = getattr(client, method)(path)
            assert response.status_code == 404, (method, path)
            assert response.json() == {"detail": "Not found."}, (method, path)
    with_cookie = APIClient()
    with_cookie.cookies["sessionid"] = "stale"
    assert with_cookie.delete("/api/keys/abc/").json() == {"detail": "Not found."}, "no CSRF page for an unknown path"


def test_bodies_are_json_only_and_text_postgresql_cannot_store_is_400(admin_client):  # type: ignore[no-untyped-def]
    _, client = admin_client
    assert client.post("/api/keys/", {"name": "form"}).status_code == 415
    for name in ["\x00", "a\x00b", "   ", ""]:
        response = client.post("/api/keys/", {"name": name}, format="json")
        assert response.status_code == 400 and "name" in response.json(), repr(name)
    response = client.post("/api/keys/", b'{"name": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400 and "surrogate" in response.json()["detail"]
    assert client.get("/api/keys/").json() == []


def test_published_schema_documents_every_answer_the_api_gives():  # type: ignore[no-untyped-def]
    schema = APIClient().get("/api/schema/?format=json").json()
    keys, key = schema["paths"]["/api/keys/"], schema["paths"]["/api/keys/{key_id}/"]
    assert set(key["delete"]["responses"]) == {"200", "401", "403", "404"}
    revoked = key["delete"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert revoked == {"$ref": "#/components/schemas/ApiKey"}
    assert set(keys["post"]["responses"]) == {"201", "400", "401", "403", "415"}
    assert set(key["patch"]["responses"]) == {"200", "400", "401", "403", "404", "415"}
    assert "WWW-Authenticate" in keys["get"]["responses"]["401"]["headers"]
    assert list(keys["post"]["requestBody"]["content"]) == ["application/json"]
    assert {"adminToken": []} in keys["get"]["security"]
    assert schema["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    api_key = schema["components"]["schemas"]["ApiKey"]["properties"]
    assert api_key["budget_alert_thresholds"]["type"] == "array"
    assert "-" not in api_key["budget_amount"]["pattern"]


@pytest.mark.parametrize(("method", "path"), [("post", "/api/keys/"), ("patch", "/api/workspace/")])
@pytest.mark.parametrize("body", ["[" * 1000 + "]" * 1000, '{"budget_alert_thresholds": ' + "[" * 100 + "]" * 100 + "}",
                                  '{"name": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"])
def test_deeply_nested_json_is_a_400_json_answer_not_a_500(admin_client, method, path, body):  # type: ignore[no-untyped-def]
    _, client = admin_client
    response = getattr(client, method)(path, body, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    assert "nested deeper" in response.json()["detail"]
