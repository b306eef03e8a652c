"""A key limited to a list of models: chosen on the key pages and through the management API,
checked against the models the workspace can use, and published in the key's hot record."""

from __future__ import annotations

import re
import uuid

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from gateway.catalog.models import Model, Provider
from gateway.catalog.publish import redis_sync
from gateway.catalog.services import model_group_create
from gateway.hotpath.redis_keys import key_record_key
from keys.forms import KeyModelsForm
from keys.selectors import model_names_offered
from keys.services import api_key_create, api_key_get, api_key_policy_update, key_policy
from keys.tokens import token_hash
from tenants.models import Workspace
from tenants.services import member_add
from tests.cache.seed import admin_api_client

LIMITS = {
    "rpm_limit": "",
    "tpm_limit": "",
    "budget_amount": "",
    "budget_period": "monthly",
    "budget_alert_thresholds": "",
}


def _model(*, workspaces: tuple[Workspace, ...] = (), enabled: bool = True) -> str:
    """A catalog model with a fresh name, offered to `workspaces` (none: to every workspace)."""
    tag = uuid.uuid4().hex[:8]
    provider = Provider.objects.create(name=f"p-{tag}", kind="fake", base_url="http://127.0.0.1:9")
    model = model_group_create(public_name=f"m-{tag}", provider=provider, upstream_name="m", enabled=enabled)
    model.workspaces.set(workspaces)
    return model.public_name


def _published(secret: str) -> dict:  # type: ignore[type-arg]
    raw = redis_sync().get(key_record_key(token_hash(secret)))
    assert isinstance(raw, bytes)
    return orjson.loads(raw)["policy"]  # type: ignore[no-any-return]


def _web(user, workspace: Workspace) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()
    return client


def test_workspace_is_offered_shared_and_its_own_enabled_models_only(make_workspace):  # type: ignore[no-untyped-def]
    workspace, other = make_workspace(), make_workspace()
    shared, own = _model(), _model(workspaces=(workspace,))
    theirs, disabled = _model(workspaces=(other,)), _model(workspaces=(workspace,), enabled=False)
    offered = model_names_offered(workspace=workspace)
    assert shared in offered and own in offered
    assert theirs not in offered and disabled not in offered
    assert offered == sorted(offered) and len(offered) == len(set(offered))


def test_key_policy_lists_the_models_sorted_only_when_the_key_is_limited(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    first, second = sorted([_model(workspaces=(workspace,)), _model(workspaces=(workspace,))])
    key, secret = api_key_create(workspace=workspace, name="limited", allowed_models=[second, first, second])
    free, free_secret = api_key_create(workspace=workspace, name="free")
    assert key.allowed_models == [first, second]
    assert key_policy(workspace, key)["models"] == [first, second]
    assert _published(secret)["models"] == [first, second]
    assert "models" not in key_policy(workspace, free) and "models" not in _published(free_secret)
    api_key_policy_update(workspace=workspace, key=key, allowed_models=[])
    assert "models" not in _published(secret)


def test_a_model_the_workspace_cannot_use_is_refused_and_nothing_is_saved(make_workspace):  # type: ignore[no-untyped-def]
    workspace, other = make_workspace(), make_workspace()
    theirs = _model(workspaces=(other,))
    with pytest.raises(ValidationError) as refused:
        api_key_create(workspace=workspace, name="k", allowed_models=[theirs])
    assert theirs in str(refused.value.message_dict["allowed_models"])
    key, secret = api_key_create(workspace=workspace, name="k")
    with pytest.raises(ValidationError) as refused:
        api_key_policy_update(workspace=workspace, key=key, rpm_limit=5, allowed_models=["no-such-model"])
    assert list(refused.value.message_dict) == ["allowed_models"]
    stored = api_key_get(workspace=workspace, key_id=key.pk)
    assert stored is not None and stored.allowed_models == [] and stored.rpm_limit is None


def test_a_deleted_model_stays_on_the_key_matching_nothing_until_removed(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    kept, gone = _model(workspaces=(workspace,)), _model(workspaces=(workspace,))
    key, secret = api_key_create(workspace=workspace, name="k", allowed_models=[kept, gone])
    Model.objects.filter(public_name=gone).delete()
    api_key_policy_update(workspace=workspace, key=key, rpm_limit=5, allowed_models=[kept, gone])
    assert _published(secret)["models"] == sorted([kept, gone])  # saving other settings never widens the key
    with pytest.raises(ValidationError):  # but a name that was never on the key must be offered
        api_key_policy_update(workspace=workspace, key=key, allowed_models=[kept, "m-" + uuid.uuid4().hex[:8]])
    api_key_policy_update(workspace=workspace, key=key, allowed_models=[kept])
    with pytest.raises(ValidationError):  # once removed, it cannot come back
        api_key_policy_update(workspace=workspace, key=key, allowed_models=[kept, gone])


def test_models_form_defaults_to_all_and_needs_a_ticked_model_otherwise():  # type: ignore[no-untyped-def]
    assert KeyModelsForm(offered=["a", "b"])["model_scope"].value() == "all"
    everything = KeyModelsForm({"model_scope": "all", "allowed_models": ["a"]}, offered=["a", "b"])
    assert everything.is_valid() and everything.cleaned_data["allowed_models"] == []
    some = KeyModelsForm({"model_scope": "some", "allowed_models": ["b"]}, offered=["a", "b"])
    assert some.is_valid() and some.cleaned_data["allowed_models"] == ["b"]
    none_ticked = KeyModelsForm({"model_scope": "some"}, offered=["a", "b"])
    assert not none_ticked.is_valid() and "Tick at least one model" in str(none_ticked.errors["allowed_models"])
    unknown = KeyModelsForm({"model_scope": "some", "allowed_models": ["c"]}, offered=["a", "b"])
    assert not unknown.is_valid() and list(unknown.errors) == ["allowed_models"]
    unchosen = KeyModelsForm({}, offered=["a", "b"], kept=["a"])  # a post without the fields
    assert unchosen.is_valid() and unchosen.models_chosen() == {}
    assert everything.models_chosen() == {"allowed_models": []} and some.models_chosen() == {"allowed_models": ["b"]}


def test_models_form_keeps_a_name_no_longer_offered_ticked_and_marked():  # type: ignore[no-untyped-def]
    form = KeyModelsForm(offered=["a"], kept=["gone"])
    assert form["model_scope"].value() == "some" and form["allowed_models"].value() == ["gone"]
    assert "gone (no longer offered)" in str(form["allowed_models"])
    assert KeyModelsForm({"model_scope": "some", "allowed_models": ["gone"]}, offered=["a"], kept=["gone"]).is_valid()


def test_a_key_created_on_the_keys_page_with_ticked_models_is_limited_to_them(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace, other = make_workspace(owner=owner), make_workspace()
    wanted, unwanted, theirs = (
        _model(workspaces=(workspace,)),
        _model(workspaces=(workspace,)),
        _model(workspaces=(other,)),
    )
    client = _web(owner, workspace)
    page = client.get("/keys/").content.decode()
    assert f'value="{wanted}"' in page and f'value="{unwanted}"' in page and theirs not in page
    assert re.search(r'<input type="radio" name="model_scope" value="all"[^>]* checked>', page)
    response = client.post(
        "/keys/", {"name": "reports", "model_scope": "some", "allowed_models": [wanted]}, follow=True
    )
    secret = response.context["new_secret"]
    assert _published(secret)["models"] == [wanted]
    cell = response.content.decode().split('data-testid="key-models">')[1].split("</td>")[0]
    assert cell == wanted
    refused = client.post("/keys/", {"name": "sneaky", "model_scope": "some", "allowed_models": [theirs]})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert "sneaky" not in refused.content.decode().split('data-testid="keys"')[1]


def test_admins_limit_and_unlimit_a_key_on_its_page_members_cannot(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner, member = make_user(), make_user()
    workspace = make_workspace(owner=owner)
    member_add(workspace=workspace, user=member, role="member")
    first, second = sorted([_model(workspaces=(workspace,)), _model(workspaces=(workspace,))])
    key, secret = api_key_create(workspace=workspace, name="reports", created_by_id=member.pk)
    limit = {**LIMITS, "model_scope": "some", "allowed_models": [second, first]}
    _web(member, workspace).post(f"/keys/{key.pk}/", limit)
    assert "models" not in _published(secret)
    client = _web(owner, workspace)
    page = client.post(f"/keys/{key.pk}/", limit, follow=True).content.decode()
    assert "Settings saved" in page and f"Only <code>{first}</code>, <code>{second}</code>" in page
    assert _published(secret)["models"] == [first, second]
    client.post(f"/keys/{key.pk}/", {**LIMITS, "rpm_limit": "7"})  # a post without the models leaves them
    assert _published(secret)["models"] == [first, second] and _published(secret)["key"] == {"rpm": 7}
    none_ticked = client.post(f"/keys/{key.pk}/", {**LIMITS, "model_scope": "some"}).content.decode()
    assert "Tick at least one model" in none_ticked and _published(secret)["models"] == [first, second]
    page = client.post(f"/keys/{key.pk}/", {**LIMITS, "model_scope": "all"}, follow=True).content.decode()
    assert "All models the workspace can use" in page and "models" not in _published(secret)


def test_api_sets_reads_and_clears_a_keys_models(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    first, second = sorted([_model(workspaces=(workspace,)), _model()])
    client = admin_api_client(workspace)
    created = client.post("/api/keys/", {"name": "ci", "allowed_models": [second, first]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["allowed_models"] == [first, second] and _published(body["key"])["models"] == [first, second]
    assert client.get(f"/api/keys/{body['id']}/").json()["allowed_models"] == [first, second]
    narrowed = client.patch(f"/api/keys/{body['id']}/", {"allowed_models": [second]}, format="json")
    assert narrowed.status_code == 200 and narrowed.json()["allowed_models"] == [second]
    assert _published(body["key"])["models"] == [second]
    renamed = client.patch(f"/api/keys/{body['id']}/", {"name": "renamed"}, format="json").json()
    assert renamed["allowed_models"] == [second]  # a PATCH without the field leaves it alone
    cleared = client.patch(f"/api/keys/{body['id']}/", {"allowed_models": []}, format="json").json()
    assert cleared["allowed_models"] == [] and "models" not in _published(body["key"])
    plain = client.post("/api/keys/", {"name": "plain"}, format="json").json()
    assert plain["allowed_models"] == []


@pytest.mark.parametrize(
    "value",
    [
        "fake-openai",
        None,
        {"name": "x"},
        [1],
        [True],
        [["nested"]],
        [""],
        ["x" * 129],
        ["no-such-model"],
        [f"m-{n}" for n in range(201)],
    ],
)
def test_bad_model_lists_are_a_400_naming_the_field(make_workspace, value):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    client = admin_api_client(workspace)
    key, _ = api_key_create(workspace=workspace, name="k")
    for response in (
        client.post("/api/keys/", {"name": "new", "allowed_models": value}, format="json"),
        client.patch(f"/api/keys/{key.pk}/", {"allowed_models": value}, format="json"),
    ):
        assert response.status_code == 400 and list(response.json()) == ["allowed_models"], response.json()
        assert isinstance(response.json()["allowed_models"], list)
    assert [k["name"] for k in client.get("/api/keys/").json()] == ["k"]


def test_a_member_may_limit_a_key_they_create_but_not_change_it_after(make_user, make_workspace):  # type: ignore[no-untyped-def]
    member = make_user()
    workspace = make_workspace()
    member_add(workspace=workspace, user=member, role="member")
    name = _model(workspaces=(workspace,))
    client = _web(member, workspace)
    created = client.post("/api/keys/", {"name": "mine", "allowed_models": [name]}, content_type="application/json")
    assert created.status_code == 201 and created.json()["allowed_models"] == [name]
    widened = client.patch(
        f"/api/keys/{created.json()['id']}/", {"allowed_models": []}, content_type="application/json"
    )
    assert widened.status_code == 403 and _published(created.json()["key"])["models"] == [name]


def test_published_schema_describes_the_model_list(make_workspace):  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    schemas = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("ApiKey", "ApiKeyCreate", "PatchedApiKeyUpdate"):
        field = schemas[name]["properties"]["allowed_models"]
        assert (field["type"], field["items"]["type"], field["items"]["maxLength"], field["maxItems"]) == (
            "array",
            "string",
            128,
            200,
        ), name
