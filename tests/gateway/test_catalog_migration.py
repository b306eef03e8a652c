"""The model-groups migrations on a database of their own (the suite's database stays at
the latest state): models saved before groups existed become one-deployment groups, and
migrating back restores them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("gateway", "0005_model_request_bounds")
AFTER = ("gateway", "0008_model_deployment_fields_removed")
ALIAS = "migration_test"


@pytest.fixture
def scratch_connection(settings) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A connection to an empty database; django-tenants' router only migrates the default
    alias, so this test runs without it."""
    default = connections["default"]
    name = default.settings_dict["NAME"] + "_migrations"
    with default._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    settings.DATABASE_ROUTERS = []
    connections.settings[ALIAS] = {**default.settings_dict, "NAME": name}
    try:
        yield connections[ALIAS]
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]
        with default._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(connection: Any, target: tuple[str, str]) -> Any:
    """Migrate to `target`; returns the app registry as of that migration."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


def test_models_become_one_deployment_groups_and_come_back(scratch_connection) -> None:  # type: ignore[no-untyped-def]
    old = _migrate(scratch_connection, BEFORE)
    providers = old.get_model("gateway", "Provider").objects.using(ALIAS)
    openai = providers.create(name="openai-main", kind="openai", base_url="https://api.openai.com/v1",
                              credential_encrypted="encrypted-blob", rpm_limit=500)
    local = providers.create(name="local", kind="openai-compatible", base_url="http://127.0.0.1:8000/v1")
    models = old.get_model("gateway", "Model").objects.using(ALIAS)
    models.create(public_name="gpt-4o", provider=openai, upstream_name="gpt-4o-2024-08-06",
                  input_price_per_mtok=Decimal("2.5"), output_price_per_mtok=Decimal("10"), context_window=128000,
                  rpm_limit=60, max_n=4)
    models.create(public_name="llama", provider=local, upstream_name="meta-llama/Llama-3.1-8B", enabled=False)

    new = _migrate(scratch_connection, AFTER)
    Model = new.get_model("gateway", "Model")
    groups = {g.public_name: g for g in Model.objects.using(ALIAS)}
    assert set(groups) == {"gpt-4o", "llama"}
    gpt = groups["gpt-4o"]
    assert (gpt.context_window, gpt.rpm_limit, gpt.max_n, gpt.enabled) == (128000, 60, 4, True), "the group keeps its own"
    assert (gpt.strategy, gpt.max_attempts, gpt.retry_deadline_seconds) == ("weighted", 3, 60)
    assert not any(hasattr(gpt, field) for field in ("provider_id", "upstream_name", "input_price_per_mtok"))
    (deployment,) = gpt.deployments.all()
    assert (deployment.name, deployment.provider_id, deployment.upstream_name) == (
        "openai-main", openai.pk, "gpt-4o-2024-08-06")
    assert (deployment.input_price_per_mtok, deployment.output_price_per_mtok) == (Decimal("2.5"), Decimal("10"))
    assert (deployment.weight, deployment.priority, deployment.enabled, deployment.max_in_flight) == (1, 0, True, None)
    assert [(d.name, d.upstream_name) for d in groups["llama"].deployments.all()] == [
        ("local", "meta-llama/Llama-3.1-8B")]
    new.get_model("gateway", "Deployment").objects.using(ALIAS).create(
        group=gpt, provider_id=local.pk, name="local", upstream_name="spare", priority=5)

    back = _migrate(scratch_connection, BEFORE)
    restored = {m.public_name: m for m in back.get_model("gateway", "Model").objects.using(ALIAS)}
    model = restored["gpt-4o"]
    assert (model.provider_id, model.upstream_name, model.input_price_per_mtok) == (
        openai.pk, "gpt-4o-2024-08-06", Decimal("2.5")), "the first deployment in priority order"
    assert (restored["llama"].provider_id, restored["llama"].enabled) == (local.pk, False)
