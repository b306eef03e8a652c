"""Sign-up and new workspaces: every workspace gets its own schema, slug and host, and a sign-up creates
its user and workspace together or not at all, also when sign-ups race (Django test client)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists

from tenants.models import Domain, Membership, Workspace

PASSWORD = "Very-secret-pass-42"


def _signup(client: Client, email: str, workspace_name: str) -> int:
    response = client.post(
        "/accounts/signup/",
        {
            "email": email,
            "password1": PASSWORD,
            "password2": PASSWORD,
            "workspace_name": workspace_name,
        },
    )
    return response.status_code


def _owned_workspace(email: str) -> Workspace:
    user = get_user_model().objects.get(email=email)
    (membership,) = Membership.objects.filter(user=user).select_related("workspace")
    assert membership.role == "owner"
    return membership.workspace


def _assert_distinct_and_complete(workspaces: list[Workspace]) -> None:
    assert len({w.schema_name for w in workspaces}) == len(workspaces)
    assert len({w.slug for w in workspaces}) == len(workspaces)
    for workspace in workspaces:
        assert schema_exists(workspace.schema_name)
        assert Domain.objects.filter(tenant=workspace, domain=workspace.host).exists()
        assert "_" not in workspace.slug, "a slug is a host label"


def test_two_names_that_map_to_one_schema_each_get_their_own_workspace():  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    first, second = f"first-{tag}@example.com", f"second-{tag}@example.com"
    assert _signup(Client(), first, f"Coll {tag} Ab") == 302
    assert _signup(Client(), second, f"coll_{tag}_ab") == 302
    workspaces = [_owned_workspace(first), _owned_workspace(second)]
    assert [w.name for w in workspaces] == [f"Coll {tag} Ab", f"coll_{tag}_ab"]
    _assert_distinct_and_complete(workspaces)


def test_a_name_whose_schema_is_left_in_the_database_gets_a_fresh_schema():  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA ws_left_{tag}")
        cursor.execute(f"CREATE TABLE ws_left_{tag}.keys_apikey (id int)")
    email = f"left-{tag}@example.com"
    assert _signup(Client(), email, f"Left {tag}") == 302
    workspace = _owned_workspace(email)
    assert workspace.schema_name != f"ws_left_{tag}"
    _assert_distinct_and_complete([workspace])


def test_additional_workspaces_with_clashing_names_each_get_their_own_schema(make_user):  # type: ignore[no-untyped-def]
    user = make_user()
    client = Client()
    client.force_login(user)
    tag = uuid.uuid4().hex[:6]
    names = [f"Coll {tag} Ab", f"coll_{tag}_ab", f"COLL-{tag}-AB"]
    for name in names:
        response = client.post("/workspaces/new/", {"name": name})
        assert response.status_code == 302, response.content[:500]
    memberships = Membership.objects.filter(user=user).select_related("workspace").order_by("created_at")
    assert [m.workspace.name for m in memberships] == names and {m.role for m in memberships} == {"owner"}
    _assert_distinct_and_complete([m.workspace for m in memberships])


def test_a_sign_up_that_fails_leaves_no_user_and_no_workspace(monkeypatch):  # type: ignore[no-untyped-def]
    """The last step fails: the user, the workspace row, its domain and its schema are all rolled back."""
    tag = uuid.uuid4().hex[:6]
    email = f"fails-{tag}@example.com"

    def refuse(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("membership refused")

    monkeypatch.setattr(Membership.objects, "create", refuse)
    assert _signup(Client(raise_request_exception=False), email, f"Fails {tag}") == 500
    assert not get_user_model().objects.filter(email=email).exists()
    assert not Workspace.objects.filter(name=f"Fails {tag}").exists()
    assert not Domain.objects.filter(domain__startswith=f"fails-{tag}").exists()
    assert not schema_exists(f"ws_fails_{tag}")


@pytest.mark.parametrize("names", [("Race {tag}", "race_{tag}", "RACE-{tag}", "race {tag}")])
def test_concurrent_sign_ups_with_clashing_names_all_get_a_workspace(names):  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:6]
    emails = [f"race{i}-{tag}@example.com" for i in range(len(names))]
    start = threading.Barrier(len(names))
    statuses: dict[str, int] = {}

    def sign_up(email: str, name: str) -> None:
        try:
            start.wait()
            statuses[email] = _signup(Client(raise_request_exception=False), email, name.format(tag=tag))
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=pair) for pair in zip(emails, names, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == {email: 302 for email in emails}
    _assert_distinct_and_complete([_owned_workspace(email) for email in emails])
