"""Periodic eviction of every workspace's response cache (celery beat: "cache-evict")."""

from __future__ import annotations

import logging
from collections import Counter

from celery import shared_task
from django.conf import settings

from tenants.models import Workspace

from .services import cache_evict

logger = logging.getLogger("aiproxy.cache")


@shared_task(name="cache.tasks.cache_evict_all", ignore_result=True)
def cache_evict_all() -> dict[str, int]:
    """Evict expired and over-cap entries in every workspace; a workspace that fails is
    logged and skipped, the others are still done."""
    totals: Counter[str] = Counter()
    for workspace in Workspace.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("pk"):
        try:
            totals.update(cache_evict(workspace=workspace))
        except Exception:
            logger.exception("cache eviction failed for workspace %s", workspace.schema_name)
            totals["failed"] += 1
        else:
            totals["workspaces"] += 1
    return dict(totals)
