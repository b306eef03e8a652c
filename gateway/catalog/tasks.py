"""Periodic deployment health work (celery beat: "deployment-health-alerts", "deployment-health-checks")."""

from __future__ import annotations

from celery import shared_task

from .health import health_alerts_send, health_checks_run_all


@shared_task(name="gateway.catalog.tasks.deployment_health_alerts", ignore_result=True)
def deployment_health_alerts() -> int:
    """Email staff about deployments that went down or came back up; returns emails sent."""
    return health_alerts_send()


@shared_task(name="gateway.catalog.tasks.deployment_health_checks", ignore_result=True)
def deployment_health_checks() -> int:
    """Ping the deployments with health_check on; returns how many were checked."""
    return health_checks_run_all()
