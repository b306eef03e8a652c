"""Tests run against real servers: an embedded PostgreSQL and Redis of their own
(under .aiproxy/test, see testenv.py), a database recreated for each run, and for e2e the real
ASGI server and fake provider as subprocesses.

Workspaces own PostgreSQL schemas, so tests write committed data (unique names per
test) instead of wrapping each test in a rolled-back transaction.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.servers import ROOT, free_port, process_stop, wait_http
from tests.testenv import EXTERNAL_REDIS


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker):  # type: ignore[no-untyped-def]
    """A fresh database on the tests' own embedded server (or DATABASE_URL's server)."""
    from django.core.management import call_command
    from django.db import connection

    from gateway.catalog.publish import redis_sync
    from tenants.services import public_domain_ensure

    with django_db_blocker.unblock():
        connection.close()
        name = connection.settings_dict["NAME"]
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        call_command("migrate_schemas", "--shared", verbosity=0)
        public_domain_ensure()
    # the embedded test Redis is the suite's own; an external one only loses REDIS_URL's db
    redis_sync().flushdb() if EXTERNAL_REDIS else redis_sync().flushall()
    yield


@pytest.fixture(autouse=True)
def _db(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    from django.db import connection

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        yield
        connection.set_schema_to_public()


@pytest.fixture
def make_user():  # type: ignore[no-untyped-def]
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    def make(email: str | None = None, password: str = "a-long-test-password"):  # type: ignore[no-untyped-def]
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        user = get_user_model().objects.create_user(username=email, email=email, password=password)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    return make


@pytest.fixture
def make_workspace(make_user):  # type: ignore[no-untyped-def]
    from tenants.services import workspace_create

    def make(name: str | None = None, owner=None):  # type: ignore[no-untyped-def]
        name = name or f"Team {uuid.uuid4().hex[:8]}"
        return workspace_create(name=name, owner=owner or make_user())

    return make


@pytest.fixture(scope="session")
def fake_provider_url():  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway.fake_provider:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc)
    yield url
    process_stop(proc)
