"""benchmarks.bench's issue 16 figures: the routing CPU (three deployments minus one, per
round, from the interleaved slices) and the failover summary (errors, latency added over
the healthy baseline)."""

from __future__ import annotations

from typing import Any

from benchmarks.bench import ROUTING_BUDGET_MS, THREE, failover_summary, routing_cpu


def _sliced(*cpu_ms: float | None) -> dict[str, Any]:
    return {"slices": [{"cpu_ms_per_req": v} for v in cpu_ms], "target_cpu_ms_per_req": 99.0}


def test_routing_cpu_is_the_median_of_the_per_round_differences() -> None:
    tests = {
        "gateway": {"open500": _sliced(0.50, 0.70, 0.52), "single": _sliced(1.4, 1.3, 1.5)},
        THREE: {"open500": _sliced(0.53, 0.69, 0.60), "single": _sliced(1.5, 1.2, 1.6)},
    }
    out = routing_cpu(tests)
    open500 = out["tests"]["open500"]
    assert open500["paired_differences_ms"] == [0.03, -0.01, 0.08]
    assert open500["difference_ms"] == 0.03  # not 0.60 - 0.52: rounds are paired
    assert (open500["one_ms"], open500["three_ms"]) == (0.52, 0.6)
    assert out["routing_cpu_ms_per_request"] == 0.03 and out["judged_test"] == "open500"
    assert out["met"] is (0.03 <= ROUTING_BUDGET_MS)
    assert set(out["tests"]) == {"open500", "single"}  # stream not measured on both: left out


def test_routing_cpu_over_the_budget_is_not_met_and_unsliced_runs_count_as_one_slice() -> None:
    tests = {"gateway": {"open500": {"target_cpu_ms_per_req": 0.5}},
             THREE: {"open500": {"target_cpu_ms_per_req": 0.6}}}
    out = routing_cpu(tests)
    assert out["tests"]["open500"]["paired_differences_ms"] == [0.1]
    assert out["routing_cpu_ms_per_request"] == 0.1 and out["met"] is False


def test_routing_cpu_without_the_three_deployment_runs_is_not_judged() -> None:
    out = routing_cpu({"gateway": {"open500": _sliced(0.5)}})
    assert out["tests"] == {} and out["routing_cpu_ms_per_request"] is None and out["met"] is False


def _run(p50: float | None, p99: float | None, errors: int = 0, requests: int = 100, **extra: Any) -> dict[str, Any]:
    return {"requests": requests, "errors": errors, "error_rate": errors / requests if requests else None,
            "latency_ms": {"p50": p50, "p99": p99, "max": p99}, **extra}


def test_failover_summary_adds_latency_over_the_baseline_and_counts_client_errors() -> None:
    baseline = _run(52.0, 60.0)
    run = _run(55.5, 112.25, errors=2, requests=4000, model="demo-failover-bench", rate=200, seconds=20,
               phases={"flaky": _run(70.0, 130.0), "dead": _run(53.0, 59.0)})
    out = failover_summary(baseline, run)
    assert (out["errors"], out["requests"], out["error_rate"]) == (2, 4000, 2 / 4000)
    assert out["added_latency_ms"] == {"p50": 3.5, "p99": 52.25}
    assert out["added_latency_ms_by_phase"] == {"flaky": {"p50": 18.0, "p99": 70.0}, "dead": {"p50": 1.0, "p99": -1.0}}
    assert out["baseline"] is baseline and out["failover"] is run


def test_failover_summary_without_answers_adds_nothing() -> None:
    out = failover_summary(_run(None, None), _run(50.0, 60.0, phases={}))
    assert out["added_latency_ms"] == {"p50": None, "p99": None}
