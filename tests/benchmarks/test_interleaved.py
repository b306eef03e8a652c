"""benchmarks.bench.interleaved and merged: single, open500 and stream run in rounds, each
test on every target in turn, and each target's slices become one result whose
percentiles are taken over every request of every slice."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.bench import Target, interleaved, merged


def _slice(latencies: list[float], *, ok: int | None = None, errors: int = 0, cpu: float = 1.0,
           stream: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "url": "u", "concurrency": 1, "stream": stream, "elapsed_s": 1.0, "requests": len(latencies),
        "ok": len(latencies) if ok is None else ok, "errors": errors, "error_kinds": {"timeout": errors} if errors else {},
        "statuses": {"200": len(latencies)}, "target_cpu_s": cpu, "peak_rss_mb": 100.0 + len(latencies),
        "latency_ms": {"p50": 0.0, "p99": 0.0}, "samples_ms": {"latency_ms": latencies, "ttfb_ms": []},
    }
    if stream:
        result["ttfb_ms"] = {"p50": 0.0, "p99": 0.0}
        result["samples_ms"]["ttfb_ms"] = latencies
    return result


def test_each_round_runs_each_test_on_every_target_in_a_rotated_order() -> None:
    calls: list[tuple[str, str, float]] = []

    def run(target: Target, **kwargs: Any) -> dict[str, Any]:
        test = "open500" if kwargs.get("rate") else "single"
        calls.append((target.name, test, kwargs["seconds"]))
        return _slice([50.0 + len(calls)])

    targets = [Target(name, 0, None, None) for name in ("direct", "gateway", "bare")]
    results = interleaved(targets, {"single": {"concurrency": 1, "seconds": 5}, "open500": {"rate": 500, "seconds": 5}}, 3,
                          run=run)

    assert len(calls) == 3 * 2 * 3
    assert [c[0] for c in calls[:6]] == ["direct", "gateway", "bare"] * 2  # round 1: single on each, then open500
    assert [c[0] for c in calls[6:9]] == ["gateway", "bare", "direct"]  # round 2 starts one further on
    assert [c[0] for c in calls[12:15]] == ["bare", "direct", "gateway"]
    assert [c[1] for c in calls[:6]] == ["single"] * 3 + ["open500"] * 3
    assert {name: {test: r["requests"] for test, r in by.items()} for name, by in results.items()} == {
        name: {"single": 3, "open500": 3} for name in ("direct", "gateway", "bare")}
    assert len(results["gateway"]["open500"]["slices"]) == 3


def test_merged_adds_counts_and_takes_percentiles_over_every_request() -> None:
    slow_slice = _slice([100.0] * 10, errors=2, cpu=3.0)
    calm = [_slice([10.0] * 45, cpu=1.0), _slice([10.0] * 45, cpu=1.0)]
    out = merged([slow_slice, *calm])
    assert out["requests"] == 100 and out["ok"] == 100 and out["errors"] == 2
    assert out["error_kinds"] == {"timeout": 2}
    assert out["latency_ms"]["p50"] == 10.0  # 90 of the 100 requests took 10 ms
    assert out["latency_ms"]["p99"] == 100.0 and out["latency_ms"]["max"] == 100.0
    assert out["rps"] == round(100 / 3.0, 1)
    assert out["target_cpu_ms_per_req"] == round(5.0 * 1000 / 100, 3)
    assert out["peak_rss_mb"] == 145.0
    assert "samples_ms" not in out  # the report keeps percentiles, not every latency


def test_merged_streams_use_time_to_first_byte() -> None:
    out = merged([_slice([5.0, 6.0], stream=True), _slice([7.0, 8.0], stream=True)])
    assert out["ttfb_ms"]["max"] == 8.0 and out["stream"] is True
    assert [s["p99_ms"] for s in out["slices"]] == [0.0, 0.0]  # each slice's own summary, as loadgen gave it


def test_every_slice_sends_a_prompt_no_earlier_slice_sent(monkeypatch: Any) -> None:
    """Requests are numbered from 1 in each slice: with the same prompt, a later slice would
    be answered from the gateway's cache (everything is cacheable at temperature 0)."""
    import benchmarks.bench as bench

    bodies: list[str] = []

    class Proc:
        def communicate(self, timeout: float) -> tuple[str, None]:
            return json.dumps(_slice([1.0])), None

    def spawn(cmd: list[str], cpu: Any, capture: bool = False) -> Proc:
        bodies.append(cmd[cmd.index("--body") + 1])
        return Proc()

    monkeypatch.setattr(bench, "spawn", spawn)
    monkeypatch.setattr(bench, "stop", lambda proc: None)
    target = Target("gateway", 0, "sk-test", None)
    for _ in range(2):
        bench.load(target, concurrency=4, seconds=1, stream=True, chunk_ms=20)
        bench.load(target, rate=500, seconds=1)
    assert len(set(bodies)) == 4
    assert all("[[fake:chunk_ms=20]]" in b for b in bodies[::2])
