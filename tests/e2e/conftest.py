"""Starts the real ASGI server (daphne) and the fake provider against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.e2e.sdk import PRICEY
from tests.servers import ROOT
from tests.servers import free_port as _free_port
from tests.servers import process_stop as _stop
from tests.servers import wait_http as _wait

UPSTREAM_CREDENTIAL = "sk-upstream-secret-123"


@pytest.fixture(scope="session")
def embedder_socket():  # type: ignore[no-untyped-def]
    """The semantic cache's embedding service (the real model, from the wheel)."""
    from django.conf import settings

    path = settings.GATEWAY_EMBEDDER_SOCKET
    if os.path.exists(path):
        os.unlink(path)  # a stale socket from an earlier run would look ready
    proc = subprocess.Popen([sys.executable, "-m", "gateway.hotpath.embedder", "--socket", path], cwd=ROOT,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the embedder did not start")
        time.sleep(0.2)
    yield path
    _stop(proc)


@pytest.fixture(scope="session")
def gateway_url(django_db_setup, fake_provider_url, embedder_socket):  # type: ignore[no-untyped-def]
    from django.conf import settings

    port = _free_port()
    env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL, GATEWAY_UPSTREAM_TIMEOUT="2",
               GATEWAY_MAX_BODY_BYTES="12000000", FAKE_PROVIDER_URL=fake_provider_url,
               GATEWAY_EMBEDDER_SOCKET=embedder_socket)
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
    """The demo catalog (one model per upstream kind on the fake provider) plus a model
    whose upstream is unreachable."""
    from gateway.catalog.demo import fake_catalog_ensure
    from gateway.catalog.models import Provider
    from gateway.catalog.services import model_group_create

    with django_db_blocker.unblock():
        names = fake_catalog_ensure(fake_url=fake_provider_url, credential=UPSTREAM_CREDENTIAL)
        dead = Provider.objects.create(name="dead-upstream", kind="openai-compatible",
                                       base_url=f"http://127.0.0.1:{_free_port()}/v1")
        model_group_create(public_name="dead-model", provider=dead, upstream_name="x")
        # a small context window on an unreachable upstream: a 400 proves no upstream call was made
        model_group_create(public_name="tiny-window", provider=dead, upstream_name="x", context_window=1000)
    return names


@pytest.fixture(scope="module")
def sdk_key(django_db_blocker, fake_models):  # type: ignore[no-untyped-def]
    """One workspace and key for a whole module (creating a tenant schema per test is slow)."""
    import uuid

    from django.contrib.auth import get_user_model

    from keys.services import api_key_create
    from tenants.services import workspace_create

    with django_db_blocker.unblock():
        email = f"sdk-{uuid.uuid4().hex[:8]}@example.com"
        user = get_user_model().objects.create_user(username=email, email=email, password="a-long-test-password")
        workspace = workspace_create(name=f"SDK {uuid.uuid4().hex[:6]}", owner=user)
        _, secret = api_key_create(workspace=workspace, name="conformance")
    return workspace, secret


@pytest.fixture(scope="session")
def pricey_model(django_db_blocker, fake_models):  # type: ignore[no-untyped-def]
    from gateway.catalog.models import Model, Provider
    from gateway.catalog.services import model_group_create

    with django_db_blocker.unblock():
        if not Model.objects.filter(public_name=PRICEY).exists():
            model_group_create(public_name=PRICEY, provider=Provider.objects.get(name="fake"), upstream_name="pricey-fake",
                               input_price_per_mtok="1000", output_price_per_mtok="1000", context_window=128000)
    time.sleep(1.1)  # the gateway re-reads the catalog at most once a second
    return PRICEY
