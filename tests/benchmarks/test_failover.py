"""benchmarks/failover.py: its schedule, its report, and a short run against the fake
provider alone (no gateway: one deployment, no routing headers)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from benchmarks import failover
from benchmarks.failover import NO_HEADER, NO_RESPONSE, Outcome


def test_schedule_is_rate_times_seconds_evenly_spaced_before_the_end() -> None:
    offsets = failover.schedule(200, 20)
    assert len(offsets) == 4000 and offsets[0] == 0 and offsets[-1] < 20
    assert {round(b - a, 9) for a, b in zip(offsets, offsets[1:], strict=False)} == {0.005}
    assert len(failover.schedule(200, 0.1)) == 20  # no float shortfall


@pytest.mark.parametrize(
    ("rate", "seconds"), [(0, 10), (-5, 10), (200, 0), (failover.MAX_RATE + 1, 1), (200, failover.MAX_SECONDS + 1)]
)
def test_schedule_refuses_unbounded_or_empty_runs(rate: float, seconds: float) -> None:
    with pytest.raises(ValueError):
        failover.schedule(rate, seconds)


def test_arguments_refuse_a_run_out_of_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        failover.arguments(["--key", "k", "--rate", "100000"])
    assert "rate" in capsys.readouterr().err


def test_requests_are_split_into_the_flaky_then_the_dead_half() -> None:
    assert [failover.phase_of(t, 20) for t in (0, 9.995, 10, 19.995)] == ["flaky", "flaky", "dead", "dead"]


def _outcome(
    offset: float,
    status: int | None,
    latency: float | None,
    deployment: str = "a",
    attempts: str = "1",
    error: str | None = None,
) -> Outcome:
    if error is None and status is not None and status >= 400:
        error = f"HTTP {status}"
    return Outcome(offset, status, latency, error, deployment, attempts)


def test_report_counts_errors_latency_of_answers_and_header_splits_per_half() -> None:
    outcomes = [
        *(_outcome(0.01 * i, 200, 0.001 * (i + 1), "fake-a", "1") for i in range(100)),  # 1..100 ms
        _outcome(1.0, 200, 0.5, "fake-b", "2"),
        _outcome(6.0, 200, 0.02, "fake-b", "2"),
        _outcome(6.5, 200, 0.03, "fake-b", "10"),
        _outcome(7.0, 503, 0.004, "fake-b", "3"),  # quick, but an error: not in the latency
        _outcome(8.0, None, None, NO_RESPONSE, NO_RESPONSE, "timeout"),
        _outcome(9.0, 200, 0.02, NO_HEADER, NO_HEADER),
    ]
    report = failover.report_build(outcomes, url="http://gw/v1", model="m", rate=200, seconds=10, elapsed=10.5)
    assert (report["requests"], report["answered"], report["errors"]) == (106, 104, 2)
    assert report["error_rate"] == round(2 / 106, 4)
    assert report["errors_by_kind"] == {"HTTP 503": 1, "timeout": 1}
    assert report["latency_ms"]["p50"] == 49.0 and report["latency_ms"]["max"] == 500.0
    assert report["deployments"] == {"fake-a": 100, "fake-b": 4, NO_HEADER: 1, NO_RESPONSE: 1}
    assert list(report["attempts"]) == ["1", "2", "3", "10", NO_RESPONSE, NO_HEADER]
    flaky, dead = report["phases"]["flaky"], report["phases"]["dead"]
    assert flaky["fault"] == {"status": 503, "rate": 0.3} and dead["fault"] == {"status": 503}
    assert (flaky["requests"], flaky["errors"], dead["requests"], dead["errors"]) == (101, 0, 5, 2)
    assert dead["deployments"] == {"fake-b": 3, NO_HEADER: 1, NO_RESPONSE: 1}


def test_an_empty_run_reports_no_rates_rather_than_failing() -> None:
    report = failover.report_build([], url="u", model="m", rate=1, seconds=1, elapsed=0)
    assert report["requests"] == 0 and report["error_rate"] is None and report["latency_ms"]["p99"] is None


def test_outcome_reads_the_routing_headers() -> None:
    answered = httpx.Response(200, headers={"x-aiproxy-deployment": "fake-b", "x-aiproxy-attempts": "2"})
    assert failover.outcome_of(1.0, answered, 0.05) == Outcome(1.0, 200, 0.05, None, "fake-b", "2")
    refused = failover.outcome_of(2.0, httpx.Response(502), 0.01)
    assert (refused.error, refused.deployment, refused.attempts) == ("HTTP 502", NO_HEADER, NO_HEADER)


def test_a_short_run_against_the_fake_alone_obeys_and_then_clears_the_fault(fake_provider_url: str) -> None:
    """The fake as the only deployment: it fails about 30 % in the first half, all in the
    second, and the fault is gone afterwards."""
    fault = "bench-test-" + uuid.uuid4().hex[:8]
    outcomes = asyncio.run(
        failover.load_run(
            url=fake_provider_url + "/v1",
            key="k",
            model=f"gpt-fake[[fake:fault={fault}]]",
            fake_url=fake_provider_url,
            fault=fault,
            rate=50,
            seconds=2,
            timeout=10,
        )
    )
    report = failover.report_build(outcomes, url="u", model="m", rate=50, seconds=2, elapsed=2)
    flaky, dead = report["phases"]["flaky"], report["phases"]["dead"]
    assert report["requests"] == 100 and flaky["requests"] == dead["requests"] == 50
    assert 0.05 <= flaky["error_rate"] <= 0.6
    assert dead["error_rate"] == 1.0 and dead["errors_by_kind"] == {"HTTP 503": 50}
    assert report["deployments"] == {NO_HEADER: 100}
    assert httpx.get(f"{fake_provider_url}/control/faults/{fault}").status_code == 404


def test_a_run_without_the_fault_sets_nothing_and_reports_no_fault(fake_provider_url: str) -> None:
    """The baseline: the same schedule, the fault never set, so a deployment obeying it
    answers every request."""
    fault = "bench-test-" + uuid.uuid4().hex[:8]
    outcomes = asyncio.run(
        failover.load_run(
            url=fake_provider_url + "/v1",
            key="k",
            model=f"gpt-fake[[fake:fault={fault}]]",
            fake_url=fake_provider_url,
            fault=None,
            rate=50,
            seconds=1,
            timeout=10,
        )
    )
    report = failover.report_build(outcomes, url="u", model="m", rate=50, seconds=1, elapsed=1, faulted=False)
    assert report["requests"] == 50 and report["errors"] == 0
    assert report["phases"]["flaky"]["fault"] is None and report["phases"]["dead"]["fault"] is None
