"""Hit rate and money saved by the response cache, per key and per model, over a period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.test import Client
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from analytics.selectors import cache_savings
from keys.services import api_key_create, api_key_rename


def _events(workspace, rows):  # type: ignore[no-untyped-def]
    with schema_context(workspace.schema_name):
        UsageEvent.objects.bulk_create([
            UsageEvent(event_id=uuid.uuid4().hex, created_at=when, key_id=key.pk, key_name=key.name,
                       endpoint="chat.completions", model=model, status_code=200, cache_status=status,
                       cost=Decimal("0") if status.startswith("hit") else Decimal("0.01"), cost_saved=Decimal(saved))
            for key, model, status, saved, when in rows])


def _seed(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    alpha, _ = api_key_create(workspace=workspace, name="alpha")
    beta, _ = api_key_create(workspace=workspace, name="beta")
    now = datetime.now(UTC)
    _events(workspace, [
        (alpha, "gpt-a", "hit-exact", "0.10", now), (alpha, "gpt-a", "hit-exact", "0.10", now),
        (alpha, "gpt-b", "hit-semantic", "0.05", now), (alpha, "gpt-a", "miss", "0", now),
        (beta, "gpt-a", "miss", "0", now), (beta, "gpt-b", "bypass", "0", now),
        (beta, "gpt-b", "hit-semantic", "0.25", now),
        (alpha, "gpt-a", "hit-exact", "9.00", now - timedelta(days=40)),  # before the period
    ])
    return workspace, alpha, beta, now


def test_savings_selector_splits_hits_and_sums_money_saved(make_workspace):  # type: ignore[no-untyped-def]
    workspace, alpha, beta, now = _seed(make_workspace)
    savings = cache_savings(workspace=workspace, since=now - timedelta(days=30))
    total = savings["total"]
    assert (total["requests"], total["hits_exact"], total["hits_semantic"], total["hits"]) == (7, 2, 2, 4)
    assert total["saved"] == Decimal("0.50") and abs(total["hit_rate"] - 4 / 7) < 1e-9
    by_key = {row["key_name"]: row for row in savings["by_key"]}
    assert (by_key["alpha"]["requests"], by_key["alpha"]["hits_exact"], by_key["alpha"]["hits_semantic"]) == (4, 2, 1)
    assert by_key["alpha"]["hit_rate"] == 0.75 and by_key["alpha"]["exact_rate"] == 0.5
    assert by_key["alpha"]["saved"] == Decimal("0.25") and by_key["beta"]["saved"] == Decimal("0.25")
    by_model = {row["model"]: row for row in savings["by_model"]}
    assert (by_model["gpt-a"]["requests"], by_model["gpt-a"]["hits"], by_model["gpt-a"]["saved"]) == (4, 2, Decimal("0.20"))
    assert (by_model["gpt-b"]["requests"], by_model["gpt-b"]["hits_semantic"], by_model["gpt-b"]["saved"]) \
        == (3, 2, Decimal("0.30"))
    assert cache_savings(workspace=workspace, since=None)["total"]["saved"] == Decimal("9.50")
    only_beta = cache_savings(workspace=workspace, since=now - timedelta(days=30), key_id=beta.pk)["total"]
    assert (only_beta["requests"], only_beta["hits"], only_beta["saved"]) == (3, 1, Decimal("0.25"))
    api_key_rename(workspace=workspace, key=alpha, name="alpha v2")
    assert {row["key_name"] for row in cache_savings(workspace=workspace, since=None)["by_key"]} == {"alpha v2", "beta"}


def test_usage_page_shows_hit_rate_and_savings_per_key_and_model(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace, *_ = _seed(lambda: make_workspace(owner=owner))
    client = Client()
    client.force_login(owner)
    page = client.get("/usage/").content.decode()
    assert 'data-testid="hit-rate">57%' in page and "4 of 7 requests: 2 exact, 2 semantic" in page
    assert 'data-testid="saved">$0.50' in page
    assert 'data-testid="savings-by-key"' in page and 'data-testid="savings-by-model"' in page
    assert "<td>alpha</td><td>4</td>\n<td>75%</td><td>2 (50%)</td>\n<td>1 (25%)</td><td>$0.25</td>" in page
    assert "<td>gpt-b</td><td>3</td>\n<td>67%</td><td>0 (0%)</td>\n<td>2 (67%)</td><td>$0.30</td>" in page
    older = client.get("/usage/?days=90").content.decode()
    assert 'data-testid="saved">$9.50' in older and "<strong>90 days</strong>" in older


def test_usage_page_explains_when_nothing_was_served_from_the_cache(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace = make_workspace(owner=owner)
    client = Client()
    client.force_login(owner)
    assert "No requests in this period yet." in client.get("/usage/").content.decode()
    key, _ = api_key_create(workspace=workspace, name="k")
    _events(workspace, [(key, "gpt-a", "miss", "0", datetime.now(UTC))])
    page = client.get("/usage/?days=7").content.decode()
    assert "No request in the last 7 days was answered from the cache." in page and "hit-rate" not in page


def test_key_page_shows_what_the_cache_saved_for_that_key(make_user, make_workspace):  # type: ignore[no-untyped-def]
    owner = make_user()
    workspace, alpha, beta, _ = _seed(lambda: make_workspace(owner=owner))
    client = Client()
    client.force_login(owner)
    page = client.get(f"/keys/{alpha.pk}/").content.decode()
    assert "<strong>$0.25</strong> saved" in page and "75% hit rate: 2 exact, 1 semantic of 4 requests" in page
    assert 'data-testid="key-savings-by-model"' in page
    fresh, _ = api_key_create(workspace=workspace, name="fresh")
    assert "No requests yet." in client.get(f"/keys/{fresh.pk}/").content.decode()
