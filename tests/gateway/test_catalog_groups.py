"""Model groups in the catalog: staff build a group of deployments in Django admin, the
snapshot published to Redis carries every routing field, and each gateway process reads it
back as a ModelGroup (or an older snapshot, one group per model)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from django.test import Client

from gateway.catalog.models import Deployment, Model, ModelFallback, Provider
from gateway.catalog.publish import catalog_snapshot_build, redis_sync
from gateway.catalog.services import model_group_create
from gateway.hotpath.credentials import credential_encrypt
from gateway.hotpath.directory import Deployment as HotDeployment
from gateway.hotpath.directory import ModelGroup, Timeouts, _groups_from_snapshot
from gateway.hotpath.redis_keys import CATALOG_KEY
from tests.gateway.admin_forms import deployment_row, inline_rows, staff_client


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _provider(secret: str = "", **fields: Any) -> Provider:
    provider = Provider(name=_unique("prov"), kind="openai", base_url="https://upstream.example/v1", **fields)
    provider.set_credential(secret)
    provider.save()
    return provider


def _group(**fields: Any) -> Model:
    return model_group_create(public_name=_unique("group"), provider=_provider(), upstream_name="u", **fields)


def _published(name: str) -> dict[str, Any]:
    snapshot = orjson.loads(redis_sync().get(CATALOG_KEY) or b"{}")
    return next(g for g in snapshot["groups"] if g["name"] == name)  # type: ignore[no-any-return]


def _group_form(group: Model | None = None, deployments: list[dict[str, Any]] | None = None,
                fallbacks: list[Model] | None = None, **fields: Any) -> dict[str, Any]:
    """The group's change form as the browser posts it (existing deployments left out: untouched)."""
    data: dict[str, Any] = {
        "public_name": group.public_name if group else _unique("group"), "enabled": "on", "strategy": "weighted",
        "max_attempts": "3", "retry_deadline_seconds": "60", "context_window": "",
        **inline_rows("deployments", deployments or []),
        **inline_rows("fallback_links", [{"position": str(i), "fallback": f.pk} for i, f in enumerate(fallbacks or [])]),
    }
    data.update(fields)
    return data


def _change(client: Client, group: Model, **form: Any) -> Any:
    return client.post(f"/admin/gateway/model/{group.pk}/change/", _group_form(group, **form))


def test_admin_creates_a_group_of_two_deployments_published_with_every_field(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    primary, spare = _provider(secret="sk-primary-secret", rpm_limit=600), _provider(secret="sk-spare-secret")
    bigger, backup, safer = _group(context_window=200_000), _group(), _group()
    name = _unique("chat")
    response = client.post("/admin/gateway/model/add/", _group_form(
        public_name=name, strategy="priority", max_attempts="5", retry_deadline_seconds="12.5", context_window="8000",
        rpm_limit="100", context_window_fallback=bigger.pk, content_policy_fallback=safer.pk,
        fallbacks=[backup, bigger],
        deployments=[
            deployment_row(provider=primary.pk, upstream_name="gpt-4o", name="eu-primary", weight="3", priority="0",
                           input_price_per_mtok="2.5", output_price_per_mtok="10", rpm_limit="60", tpm_limit="9000",
                           max_in_flight="8", connect_timeout="1.5", first_byte_timeout="20", total_timeout="120",
                           health_check="on"),
            deployment_row(provider=spare.pk, upstream_name="gpt-4o-2024-08-06", priority="1"),
        ]))
    assert response.status_code == 302, response.content.decode()[:3000]

    group = Model.objects.get(public_name=name)
    first, second = group.deployments.order_by("priority")
    published = _published(name)
    assert {k: v for k, v in published.items() if k != "deployments"} == {
        "name": name, "strategy": "priority", "context_window": 8000, "workspace_ids": [],
        "created": int(group.created_at.timestamp()), "model_limits": {"rpm": 100}, "bounds": group.request_bounds(),
        "fallbacks": [backup.public_name, bigger.public_name], "context_fallback": bigger.public_name,
        "content_policy_fallback": safer.public_name, "max_attempts": 5, "retry_deadline": 12.5,
    }
    entry, other = published["deployments"]
    assert {k: v for k, v in entry.items() if k != "credential_encrypted"} == {
        "id": first.pk, "name": "eu-primary", "provider_name": primary.name, "provider_kind": "openai",
        "base_url": "https://upstream.example/v1", "api_version": "", "upstream_name": "gpt-4o",
        "input_price_per_mtok": "2.500000", "output_price_per_mtok": "10.000000", "weight": 3, "priority": 0,
        "deployment_limits": {"rpm": 60, "tpm": 9000}, "provider_limits": {"rpm": 600}, "max_in_flight": 8,
        "timeouts": {"connect": 1.5, "first_byte": 20.0, "total": 120.0},
    }
    assert (other["id"], other["name"], other["weight"], other["max_in_flight"]) == (second.pk, spare.name, 1, None)
    assert other["timeouts"] == {"connect": None, "first_byte": None, "total": None}
    assert b"sk-primary-secret" not in redis_sync().get(CATALOG_KEY), "credentials stay encrypted in Redis"

    hot = _groups_from_snapshot(orjson.loads(redis_sync().get(CATALOG_KEY)))[name]
    assert (hot.strategy, hot.fallbacks, hot.context_fallback, hot.content_policy_fallback) == (
        "priority", (backup.public_name, bigger.public_name), bigger.public_name, safer.public_name)
    assert (hot.max_attempts, hot.retry_deadline, hot.context_window) == (5, 12.5, 8000)
    one, two = hot.deployments
    assert (one.deployment_id, one.name, one.weight, one.priority, one.max_in_flight) == (first.pk, "eu-primary", 3, 0, 8)
    assert one.timeouts == Timeouts(connect=1.5, first_byte=20.0, total=120.0)
    assert (one.deployment_limits, one.provider_limits, one.model_limits) == ({"rpm": 60, "tpm": 9000}, {"rpm": 600},
                                                                             {"rpm": 100})
    assert (one.credential, two.credential) == ("sk-primary-secret", "sk-spare-secret")
    assert (one.public_name, one.context_window, one.input_price_per_mtok) == (name, 8000, 2.5)
    assert (two.upstream_name, two.provider_name, two.priority) == ("gpt-4o-2024-08-06", spare.name, 1)


def test_admin_names_deployments_after_their_provider_unique_in_the_group(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    provider = _provider()
    name = _unique("twins")
    response = client.post("/admin/gateway/model/add/", _group_form(public_name=name, deployments=[
        deployment_row(provider=provider.pk, upstream_name="a"), deployment_row(provider=provider.pk, upstream_name="b")]))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [d["name"] for d in _published(name)["deployments"]] == [provider.name, f"{provider.name}-2"]
    third = Deployment.objects.create(group=Model.objects.get(public_name=name), provider=provider, upstream_name="c")
    assert third.name == f"{provider.name}-3"


def test_model_list_shows_each_groups_deployment_count_and_strategy(make_user):  # type: ignore[no-untyped-def]
    group = _group(strategy="least_busy")
    Deployment.objects.create(group=group, provider=_provider(), upstream_name="second")
    page = staff_client(make_user()).get(f"/admin/gateway/model/?q={group.public_name}").content.decode()
    assert "Least busy" in page and '<td class="field-deployment_count">2</td>' in page


def test_deployment_admin_lists_deployments_filtered_by_provider(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    group = _group()
    mine = group.deployments.get()
    other = Deployment.objects.create(group=group, provider=_provider(), upstream_name="elsewhere")
    page = client.get(f"/admin/gateway/deployment/?provider__id__exact={mine.provider_id}").content.decode()
    assert f"/admin/gateway/deployment/{mine.pk}/change/" in page
    assert f"/admin/gateway/deployment/{other.pk}/change/" not in page
    page = client.get(f"/admin/gateway/deployment/?group__id__exact={group.pk}").content.decode()
    assert f"/admin/gateway/deployment/{other.pk}/change/" in page


@pytest.mark.parametrize("field, value, message", [
    ("weight", "0", "greater than or equal to 1"),
    ("total_timeout", "0", "Must be more than 0 seconds"),
    ("connect_timeout", "-1", "Must be more than 0 seconds"),
    ("max_in_flight", "0", "greater than or equal to 1"),
])
def test_admin_refuses_a_deployment_setting_out_of_range(make_user, field, value, message):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    name = _unique("refused")
    response = client.post("/admin/gateway/model/add/", _group_form(public_name=name, deployments=[
        deployment_row(provider=_provider().pk, upstream_name="u", **{field: value})]))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Model.objects.filter(public_name=name).exists()


def test_admin_refuses_a_group_falling_back_to_itself(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    group = _group()
    response = _change(client, group, fallbacks=[group])
    assert response.status_code == 200 and "A group cannot fall back to itself." in response.content.decode()
    response = _change(client, group, content_policy_fallback=group.pk)
    assert response.status_code == 200 and "A group cannot fall back to itself." in response.content.decode()
    assert not ModelFallback.objects.filter(model=group).exists()


def test_admin_refuses_a_fallback_chain_that_loops_back(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    first, second, third = _group(), _group(), _group()
    assert _change(client, first, fallbacks=[second]).status_code == 302
    assert _change(client, second, fallbacks=[third]).status_code == 302
    response = _change(client, third, fallbacks=[first])
    assert response.status_code == 200 and "lead back to" in response.content.decode()
    assert _published(third.public_name)["fallbacks"] == []
    assert _published(first.public_name)["fallbacks"] == [second.public_name]


def test_admin_refuses_a_content_policy_fallback_loop(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    strict, lenient = _group(), _group()
    assert _change(client, strict, content_policy_fallback=lenient.pk).status_code == 302
    response = _change(client, lenient, content_policy_fallback=strict.pk)
    assert response.status_code == 200 and "that would be a loop" in response.content.decode()


def test_admin_refuses_a_context_fallback_without_a_larger_window(make_user):  # type: ignore[no-untyped-def]
    client = staff_client(make_user())
    small, same = _group(context_window=8000), _group(context_window=8000)
    response = _change(client, small, context_window="8000", context_window_fallback=same.pk)
    assert response.status_code == 200 and "not larger than this group&#x27;s 8,000" in response.content.decode()
    large = _group(context_window=128_000)
    assert _change(client, small, context_window="8000", context_window_fallback=large.pk).status_code == 302
    assert _published(small.public_name)["context_fallback"] == large.public_name


def test_disabled_deployments_providers_and_groups_are_left_out_of_the_snapshot() -> None:
    group = _group()
    (served,) = group.deployments.all()
    Deployment.objects.create(group=group, provider=_provider(), upstream_name="off", enabled=False)
    Deployment.objects.create(group=group, provider=_provider(enabled=False), upstream_name="provider-off")
    gone = _group()
    Model.objects.filter(pk=gone.pk).update(enabled=False)
    ModelFallback.objects.create(model=group, fallback=gone, position=0)
    empty = _group()
    Deployment.objects.filter(group=empty).update(enabled=False)

    groups = {g["name"]: g for g in catalog_snapshot_build()["groups"]}
    assert [d["id"] for d in groups[group.public_name]["deployments"]] == [served.pk]
    assert groups[group.public_name]["fallbacks"] == [], "only enabled groups are fallbacks"
    assert gone.public_name not in groups
    assert groups[empty.public_name]["deployments"] == [], "published, so the gateway can answer 503 for it"


def test_a_deployment_change_republishes_the_catalog() -> None:
    group = _group()
    deployment = group.deployments.get()
    deployment.weight = 7
    deployment.save()
    assert _published(group.public_name)["deployments"][0]["weight"] == 7
    other = _group()
    ModelFallback.objects.create(model=group, fallback=other, position=0)
    assert _published(group.public_name)["fallbacks"] == [other.public_name]
    deployment.delete()
    assert _published(group.public_name)["deployments"] == []


def test_a_snapshot_published_before_model_groups_loads_one_group_per_model() -> None:
    old = {"models": [{
        "public_name": "legacy", "upstream_name": "gpt-4o-mini", "provider_name": "openai-main", "provider_kind": "openai",
        "base_url": "https://api.openai.com/v1/", "credential_encrypted": credential_encrypt("sk-legacy"),
        "api_version": "", "input_price_per_mtok": "0.15", "output_price_per_mtok": "0.6", "context_window": 128000,
        "workspace_ids": [4], "created": 1700000000, "model_limits": {"rpm": 5}, "provider_limits": {"tpm": 9},
        "bounds": {"max_n": 2},
    }], "global_limits": {}}
    group = _groups_from_snapshot(old)["legacy"]
    assert isinstance(group, ModelGroup) and (group.strategy, group.fallbacks, group.max_attempts) == ("weighted", (), 3)
    assert (group.context_window, group.workspace_ids, group.created) == (128000, frozenset({4}), 1700000000)
    (deployment,) = group.deployments
    assert isinstance(deployment, HotDeployment)
    assert (deployment.public_name, deployment.upstream_name, deployment.name) == ("legacy", "gpt-4o-mini", "openai-main")
    assert (deployment.base_url, deployment.credential) == ("https://api.openai.com/v1", "sk-legacy")
    assert (deployment.model_limits, deployment.provider_limits, deployment.bounds.max_n) == ({"rpm": 5}, {"tpm": 9}, 2)
    assert (deployment.input_price_per_mtok, deployment.weight, deployment.timeouts) == (0.15, 1, Timeouts())
