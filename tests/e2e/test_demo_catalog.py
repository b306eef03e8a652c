"""The demo catalog `make run` loads (and the e2e tests use): one-deployment groups per
upstream kind, and a failover group whose first deployment always fails; loading it again
changes nothing."""

from __future__ import annotations

import httpx

from gateway.catalog.demo import FAILOVER_GROUP, FAKE_MODELS, fake_catalog_ensure
from gateway.catalog.models import Deployment, Model
from tests.e2e.conftest import UPSTREAM_CREDENTIAL


def test_demo_catalog_is_one_deployment_groups_and_a_failover_group(fake_models, fake_provider_url) -> None:  # type: ignore[no-untyped-def]
    before = list(Deployment.objects.order_by("pk").values_list("pk", "group__public_name", "name", "upstream_name"))
    names = fake_catalog_ensure(fake_url=fake_provider_url, credential=UPSTREAM_CREDENTIAL)
    assert names == fake_models == [m.public_name for m in FAKE_MODELS] + [FAILOVER_GROUP]
    assert list(Deployment.objects.order_by("pk").values_list("pk", "group__public_name", "name", "upstream_name")) == before
    for spec in FAKE_MODELS:
        (deployment,) = Deployment.objects.filter(group__public_name=spec.public_name).select_related("provider")
        assert (deployment.provider.name, deployment.upstream_name) == (spec.provider_name, spec.upstream_name)
    failover = Model.objects.get(public_name=FAILOVER_GROUP)
    assert failover.strategy == "priority"
    down, up = failover.deployments.order_by("priority").select_related("provider")
    assert (down.name, down.priority, up.name, up.priority) == ("down", 0, "up", 1)
    assert down.provider == up.provider and down.provider.kind == "fake"
    assert (down.upstream_name, up.upstream_name) == ("gpt-4o-mini-fake[[fake:status=503]]", "gpt-4o-mini-fake")


def test_demo_failover_group_is_listed_by_the_gateway(gateway_url, sdk_key) -> None:  # type: ignore[no-untyped-def]
    _, secret = sdk_key
    response = httpx.get(f"{gateway_url}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    ids = {m["id"] for m in response.json()["data"]}
    assert {FAILOVER_GROUP, *(m.public_name for m in FAKE_MODELS)} <= ids
