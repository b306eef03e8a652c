"""A workspace's host matches exactly: look-alike hosts (trailing dot, deeper or `www.`
subdomains) and a client's X-Forwarded-Host are not the workspace's host, unless a trusted
proxy sets X-Forwarded-Host (AIPROXY_TRUSTED_PROXY -> USE_X_FORWARDED_HOST)."""

from __future__ import annotations

from django.test import Client, override_settings

from keys.services import api_key_create


def _setup(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, outsider = make_user(), make_user()
    private = make_workspace(name="Private host", owner=owner)
    make_workspace(name="Outsider's own", owner=outsider)
    api_key_create(workspace=private, name="private-key", created_by_id=owner.pk)
    client = Client()
    client.force_login(outsider)
    return private, client


def test_look_alike_workspace_hosts_are_unknown_hosts(make_user, make_workspace):  # type: ignore[no-untyped-def]
    private, outsider = _setup(make_user, make_workspace)
    assert outsider.get("/keys/", HTTP_HOST=private.host).status_code == 403
    for host in (
        private.host + ".",
        "x." + private.host,
        "www." + private.host,
        private.host + ".:8000",
        "nope.localhost",
        "localhost.",
    ):
        response = outsider.get("/keys/", HTTP_HOST=host)
        assert response.status_code == 404, host
        assert b"private-key" not in response.content and b"Outsider" not in response.content
        assert Client().get("/accounts/login/", HTTP_HOST=host).status_code == 404, host


def test_the_main_host_and_exact_workspace_hosts_still_work(make_user, make_workspace):  # type: ignore[no-untyped-def]
    private, outsider = _setup(make_user, make_workspace)
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "www.localhost"):
        assert outsider.get("/keys/", HTTP_HOST=host).status_code == 200, host
    owner = private.memberships.get().user
    owner_client = Client()
    owner_client.force_login(owner)
    page = owner_client.get("/keys/", HTTP_HOST=private.host.upper() + ":8000")
    assert page.status_code == 200 and b"private-key" in page.content


def test_a_forged_x_forwarded_host_is_not_the_workspaces_host(make_user, make_workspace):  # type: ignore[no-untyped-def]
    private, outsider = _setup(make_user, make_workspace)
    page = outsider.get("/keys/", HTTP_HOST="localhost", HTTP_X_FORWARDED_HOST=private.host)
    assert page.status_code == 200 and b"private-key" not in page.content and b"Outsider&#x27;s own" in page.content
    look_alike = outsider.get("/keys/", HTTP_HOST="localhost", HTTP_X_FORWARDED_HOST=private.host + ".")
    assert look_alike.status_code == 200


@override_settings(USE_X_FORWARDED_HOST=True)
def test_behind_a_trusted_proxy_x_forwarded_host_is_matched_strictly(make_user, make_workspace):  # type: ignore[no-untyped-def]
    private, outsider = _setup(make_user, make_workspace)
    assert outsider.get("/keys/", HTTP_HOST="localhost", HTTP_X_FORWARDED_HOST=private.host).status_code == 403
    assert outsider.get("/keys/", HTTP_HOST="localhost", HTTP_X_FORWARDED_HOST="x." + private.host).status_code == 404
