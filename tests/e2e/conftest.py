"""Starts the real ASGI server (daphne) and the fake provider against the test database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import ROOT
from tests.servers import free_port as _free_port
from tests.servers import process_stop as _stop
from tests.servers import wait_http as _wait


@pytest.fixture(scope="session")
def gateway_url(django_db_setup, fake_provider_url):  # type: ignore[no-untyped-def]
    from django.conf import settings

    port = _free_port()
    env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL, GATEWAY_UPSTREAM_TIMEOUT="2",
               GATEWAY_MAX_BODY_BYTES="12000000", FAKE_PROVIDER_URL=fake_provider_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aiproxy_site.asgi:application"],
        cwd=ROOT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/accounts/login/", proc)
    yield url
    _stop(proc)


@pytest.fixture(scope="session")
def fake_models(django_db_setup, django_db_blocker, fake_provider_url):  # type: ignore[no-untyped-def]
    from gateway.models import Model, Provider

    with django_db_blocker.unblock():
        provider = Provider(name="fake-e2e", kind="fake", base_url=fake_provider_url + "/v1")
        provider.set_credential("sk-upstream-secret-123")
        provider.save()
        Model.objects.create(public_name="fake-openai", provider=provider, upstream_name="gpt-fake",
                             input_price_per_mtok="1.00", output_price_per_mtok="2.00", context_window=128000)
        azure = Provider.objects.create(name="fake-azure-e2e", kind="azure-openai", base_url=fake_provider_url,
                                        api_version="2024-10-21")
        Model.objects.create(public_name="fake-azure", provider=azure, upstream_name="my-deployment",
                             input_price_per_mtok="1.00", output_price_per_mtok="2.00")
        dead = Provider.objects.create(name="dead-upstream", kind="openai-compatible",
                                       base_url=f"http://127.0.0.1:{_free_port()}/v1")
        Model.objects.create(public_name="dead-model", provider=dead, upstream_name="x")
    return ["fake-openai", "fake-azure"]
