"""Schemathesis over the management API's published OpenAPI schema (`/api/schema/`), against the
real ASGI server with a workspace admin token: no 5xx, no traceback in the server's log, and every
response conforms to the schema (status code, content type, headers, body).

The run is reproducible (a fixed seed, deterministic generation, no example database, fixed names)
and bounded: MAX_EXAMPLES per operation and phase (about two minutes here), with MAX_SECONDS as a
ceiling that stops a stalled run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.core import EventStream
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

from tests.servers import ROOT, free_port, process_stop, wait_http

SEED = 15
MAX_EXAMPLES = 60  # per operation and phase
CATALOG_MODEL = "schema-conformance-model"  # the one model the run's workspace can use
MAX_SECONDS = 300  # a ceiling for a stalled run; a normal run ends on its example budget, well before
# Not run: `use_after_free`, because DELETE revokes a key and the revoked key stays readable (its
# `revoked_at` says so), and `negative_data_rejection`, because DRF coerces loose input by design
# (`"5"` for 5, `0` for false) rather than refusing it.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "ensure_resource_availability",
    "ignored_auth",
    "unsupported_method",
    "missing_required_header",
]


@pytest.fixture(scope="module")
def api_server(django_db_setup, tmp_path_factory) -> Iterator[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    """The whole site under daphne, as `gateway_url` runs it, with its log kept for the traceback check."""
    from django.conf import settings

    log = tmp_path_factory.mktemp("api-schema") / "server.log"
    port = free_port()
    env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aiproxy_site.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/schema/", proc)
        yield url, log
    finally:
        process_stop(proc)


@pytest.fixture(scope="module")
def admin_token(django_db_blocker) -> str:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from gateway.catalog.models import Provider
    from gateway.catalog.services import model_group_create
    from tenants.services import admin_token_create, workspace_create

    email = "schema-conformance@example.com"  # fixed, like everything the run may learn from (a fresh database)
    with django_db_blocker.unblock():
        owner = get_user_model().objects.create_user(username=email, email=email, password="a-long-test-password")
        workspace = workspace_create(name="Schema conformance", owner=owner)
        _, secret = admin_token_create(workspace=workspace, name="schemathesis", created_by=None)
        provider = Provider.objects.create(name="schema-conformance", kind="fake", base_url="http://127.0.0.1:9")
        model = model_group_create(public_name=CATALOG_MODEL, provider=provider, upstream_name="m")
        model.workspaces.set([workspace])
    return secret


def _catalog_model_names(context: HookContext, case: Case) -> Case:
    """A key's `allowed_models` must name models the workspace can use, which no JSON schema can
    list: a positive case's names become the workspace's one model (an empty list stays empty)."""
    body = case.body
    if case.meta is not None and case.meta.generation.mode.is_positive and isinstance(body, dict):
        if isinstance(body.get("allowed_models"), list):
            case.body = {**body, "allowed_models": [CATALOG_MODEL] if body["allowed_models"] else []}
    return case


def _run(stream: EventStream) -> tuple[dict[str, list[str]], set[str]]:
    """Failures grouped by check, operation and title, each with its reproductions; and the
    operations that were called."""
    found: dict[str, list[str]] = {}
    called: set[str] = set()
    deadline = time.monotonic() + MAX_SECONDS
    for event in stream:
        if time.monotonic() > deadline:
            stream.stop()
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            called.update(f"{i.request.method} {urlsplit(i.request.uri).path}" for i in recorder.interactions.values())
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    response = interaction.response if interaction is not None else None
                    sent = check.failure_info.code_sample
                    answer = f"{response.status_code} {response.content[:300]!r}" if response is not None else "-"
                    key = f"[{check.name}] {failure.operation}: {failure.title}"
                    found.setdefault(key, []).append(f"{failure.message}\n{sent}\n-> {answer}")
        elif isinstance(event, events.NonFatalError):
            found.setdefault(f"[error] {event.label}", []).append(repr(event.value))
        elif isinstance(event, events.FatalError):
            found.setdefault("[fatal]", []).append(repr(event.exception))
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:
                found.setdefault(f"[after run] {failure.title}", []).append(failure.message)
    return found, called


def test_management_api_conforms_to_its_published_schema(api_server, admin_token):  # type: ignore[no-untyped-def]
    url, log = api_server
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": url,
            "request-timeout": 30,
            "headers": {"Authorization": f"Bearer {admin_token}"},
            "workers": 1,
        "cache": {"enabled": False},  # nothing learnt in an earlier run steers this one
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    schema = schemathesis.openapi.from_url(url + "/api/schema/", config=config)
    schema.hook("map_case")(_catalog_model_names)
    failures, called = _run(from_schema(schema).execute())
    operations = {
        (method.upper(), re.sub(r"\{\w+\}", "[^/]+", path))
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "put", "delete")
    }
    uncalled = {op for op in operations if not any(re.fullmatch(f"{op[0]} {op[1]}", call) for call in called)}
    assert len(operations) >= 8 and not uncalled, uncalled
    report = "\n\n".join(f"{key} ({len(cases)}x), e.g.:\n{cases[0]}" for key, cases in sorted(failures.items()))
    assert not failures, f"{len(failures)} kinds of failure:\n\n{report}"
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]
