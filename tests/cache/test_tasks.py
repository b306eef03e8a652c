"""The periodic eviction task covers every workspace, even when one of them fails."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from cache import tasks
from cache.services import cache_evict
from tests.cache.seed import semantic_entry_create, semantic_ids


def test_task_evicts_expired_entries_in_every_workspace_despite_one_failing(make_workspace, monkeypatch):  # type: ignore[no-untyped-def]
    first, broken, last = make_workspace(), make_workspace(), make_workspace()
    expired = {ws.pk: semantic_entry_create(ws, expires_in=timedelta(seconds=-5)) for ws in (first, broken, last)}
    live = {ws.pk: semantic_entry_create(ws) for ws in (first, last)}

    def evict(*, workspace, now=None):  # type: ignore[no-untyped-def]
        if workspace.pk == broken.pk:
            raise RuntimeError("schema unavailable")
        return cache_evict(workspace=workspace, now=now)

    monkeypatch.setattr(tasks, "cache_evict", evict)
    result = tasks.cache_evict_all()

    assert result["failed"] == 1 and result["workspaces"] >= 2 and result["semantic_expired"] >= 2
    assert semantic_ids(first) == {live[first.pk].pk} and semantic_ids(last) == {live[last.pk].pk}
    assert expired[broken.pk].pk in semantic_ids(broken)


def test_eviction_runs_on_the_beat_schedule_every_five_minutes():  # type: ignore[no-untyped-def]
    from aiproxy_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["cache-evict"]
    assert entry["task"] == "cache.tasks.cache_evict_all" and entry["schedule"] == 300
    app.loader.import_default_modules()
    assert "cache.tasks.cache_evict_all" in app.tasks
