"""Django admin shows each deployment's live health (circuit, latencies, last error), read
from the state the gateway processes share in Redis."""

from __future__ import annotations

import asyncio
import dataclasses

from django.conf import settings

from gateway.catalog.models import Deployment, Provider
from gateway.catalog.services import model_group_create
from gateway.hotpath.health import BreakerPolicy, HealthBoard
from gateway.hotpath.rediswire import WireRedis
from tests.gateway.admin_forms import staff_client
from tests.gateway.deployments import deployment_make


def _report(deployment_id: int, outcomes: list[tuple[str, dict[str, object]]]) -> None:
    """Outcomes as a gateway process reports them, then one sync to Redis."""
    async def run() -> None:
        board = HealthBoard(WireRedis(settings.REDIS_URL), BreakerPolicy(failures=3, error_rate=0.5, window_seconds=30,
                                                                         min_requests=20, cooldown_seconds=60))
        hot = dataclasses.replace(deployment_make(public_name="admin-health"), deployment_id=deployment_id, name="x")
        board.usable(hot)
        for outcome, fields in outcomes:
            board.begin(hot)
            board.end(hot, outcome, **fields)  # type: ignore[arg-type]
        await board.sync()
        await board.client.aclose()

    asyncio.run(run())


def test_deployment_list_and_group_page_show_circuit_latency_and_last_error(make_user) -> None:  # type: ignore[no-untyped-def]
    provider = Provider.objects.create(name="health-admin-prov", kind="fake", base_url="http://127.0.0.1:1/v1")
    group = model_group_create(public_name="health-admin-group", provider=provider, upstream_name="m")
    healthy = group.deployments.get()
    broken = Deployment.objects.create(group=group, provider=provider, name="broken", upstream_name="n")
    _report(healthy.pk, [("ok", {"ttfb_ms": 120.0, "total_ms": 480.0})])
    _report(broken.pk, [("fail", {"error": "503 upstream_error"})] * 3)
    client = staff_client(make_user())

    listing = client.get(f"/admin/gateway/deployment/?group__id__exact={group.pk}").content.decode()
    assert "DOWN" in listing and "503 upstream_error" in listing
    assert "120 / 480" in listing

    page = client.get(f"/admin/gateway/model/{group.pk}/change/").content.decode()
    assert "DOWN (circuit open)" in page and "first byte 120 ms" in page and "last error: 503 upstream_error" in page
