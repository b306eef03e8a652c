"""benchmarks.bench.ladders: the targets climb the rates together, each stops at its first
rate that does not hold, and a target's maximum is the last rate that held."""

from __future__ import annotations

from typing import Any

from benchmarks.bench import LADDER, Target, ladders


def test_targets_climb_in_turn_and_stop_at_their_first_failed_rate() -> None:
    limits = {"direct": 1000, "gateway": 500, "bare": 700}  # the highest rate each holds
    calls: list[tuple[str, int]] = []

    def step(target: Target, rate: int, p99: float, seconds: float, steps: list[dict[str, Any]]) -> bool:
        calls.append((target.name, rate))
        steps.append({"rate": rate, "held": rate <= limits[target.name]})
        return rate <= limits[target.name]

    targets = [Target(name, 0, None, None) for name in limits]
    results = ladders(targets, 100.0, 1.0, step=step)

    assert {name: r["max_sustainable_rps"] for name, r in results.items()} == limits
    # interleaved: at every rate, each target still climbing runs once, in the same order
    assert calls[:3] == [("direct", 200), ("gateway", 200), ("bare", 200)]
    assert ("gateway", 600) in calls and ("gateway", 700) not in calls  # stopped after its first failure
    assert [c for c in calls if c[1] == 800] == [("direct", 800), ("bare", 800)]  # the gateway failed at 600
    assert [c for c in calls if c[1] == 900] == [("direct", 900)]  # bare failed at 800
    rates = [rate for _, rate in calls]
    assert rates == sorted(rates)  # never back to a lower rate
    assert all(results[n]["steps"][-1]["held"] is False for n in limits)  # each ends on its failed step
    assert LADDER[-1] > max(limits.values())


def test_a_slow_target_starts_low_and_stops_alone() -> None:
    seen: list[int] = []

    def step(target: Target, rate: int, p99: float, seconds: float, steps: list[dict[str, Any]]) -> bool:
        seen.append(rate)
        return rate <= 10

    results = ladders([Target("litellm", 0, None, None)], 100.0, 1.0, step=step)
    assert results["litellm"]["max_sustainable_rps"] == 10
    assert seen == [10, 20]
