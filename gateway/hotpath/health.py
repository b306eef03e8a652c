"""Deployment health shared by every gateway process: circuit breakers, latency averages,
requests in flight and per-minute use, kept in Redis and mirrored in each process.

INTERFACE STUB (issue 16): the coordinator's routing code calls exactly this API; the
implementation fills it in. Nothing here may add a Redis round trip per request: outcomes
are queued locally and `sync()` (one round trip, run by a background task every
SYNC_INTERVAL seconds) sends them and reads back the shared view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .directory import Deployment

SYNC_INTERVAL = 0.25  # seconds between a process's syncs with Redis

Outcome = Literal["ok", "fail"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class DeploymentHealth:
    """What one process knows of a deployment (shared view plus its own unsynced outcomes)."""

    state: BreakerState = "closed"
    in_flight: int = 0  # across all processes (as of the last sync) plus this process's change since
    ttfb_ms: float | None = None  # moving average of time to first byte
    total_ms: float | None = None  # moving average of total time
    minute_requests: int = 0  # requests started in the current minute, across processes
    minute_tokens: int = 0
    last_error: str = ""
    opened_at: float | None = None  # unix seconds the circuit last opened


class HealthBoard:
    """Per-process (per event loop) mirror of every deployment's health."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def health(self, deployment: Deployment) -> DeploymentHealth:
        return DeploymentHealth()

    def usable(self, deployment: Deployment) -> bool:
        """Closed circuit, under its max in flight and its rpm/tpm (as far as this process
        knows). An open circuit whose cooldown has passed is not usable here: see probe()."""
        return True

    async def probe(self, deployment: Deployment) -> bool:
        """For an open circuit past its cooldown: True for the one request (across all
        processes) that may try it (half-open); False otherwise."""
        return False

    def begin(self, deployment: Deployment) -> None:
        """An attempt on `deployment` starts (in flight +1, minute requests +1)."""

    def end(self, deployment: Deployment, outcome: Outcome, *, ttfb_ms: float | None = None,
            total_ms: float | None = None, tokens: int = 0, error: str = "") -> None:
        """The attempt ended: in flight -1; the outcome feeds the breaker (a "fail" is a
        connect error, a timeout, a 429, 500-504 or 529: the upstream's fault, never the
        client's), the latency averages and the minute's tokens."""

    async def sync(self) -> None:
        """Send queued outcomes and read the shared view (one Redis round trip)."""

    def start(self) -> None:
        """Start the background sync task on the running loop (idempotent)."""

    async def close(self) -> None:
        """Stop the background task after a last sync."""
