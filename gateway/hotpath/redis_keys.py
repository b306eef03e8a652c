"""Redis key names the hot path and the Django side share: every format in one place."""

from __future__ import annotations

# --- routing and health (issue 16) ---
# Each deployment's keys carry the hash tag {<deployment id>}, so they live in one Redis
# Cluster slot. The health sync script (gateway/hotpath/health.py, SYNC) runs once per
# deployment and touches that deployment's HEALTH hash and PROBE key together, plus the
# shared HEALTH_EVENTS stream when the circuit changes state: that stream is the one key
# outside the deployment's slot (fine on one Redis; on a cluster, issue 21, the script
# already returns the transition, so the caller can append it instead).

HEALTH_EVENTS_STREAM = "aip:health:events"  # circuit transitions: id, name, state ("down"/"up"), error, at (ms)
HEALTH_EVENTS_MAXLEN = 10_000  # approximate cap (XADD MAXLEN ~)
HEALTH_EVENTS_CURSOR = "aip:health:events:cursor"  # the last entry the alert task has mailed
HEALTH_ALERTS_LOCK = "aip:health:events:lock"  # one alert task at a time


def deployment_health_key(deployment_id: int) -> str:
    """Hash: the circuit (state, fails, opened, error), latency averages, the minute's
    requests and tokens, the error-rate window's cells and each process's requests in flight."""
    return f"aip:dep:{{{deployment_id}}}:health"


def deployment_probe_key(deployment_id: int) -> str:
    """String, SET NX PX: the one process (and request) trying an open circuit (half-open)."""
    return f"aip:dep:{{{deployment_id}}}:probe"
