"""benchmarks/steadiness.py: the host probe finds the slow episodes in a count series."""

from __future__ import annotations

from benchmarks.steadiness import describe, probe, summarise


def test_summarise_merges_slow_windows_into_episodes() -> None:
    counts = [1000] * 40
    counts[10:13] = [300, 200, 650]  # one episode of 150 ms, down to 20 %
    counts[30] = 500  # another, 50 ms
    result = summarise(counts)
    assert result["windows"] == 40 and result["slow_windows"] == 4 and result["episodes"] == 2
    assert result["first_episodes"][0] == {"start_s": 0.5, "length_ms": 150.0, "slowest": 0.2}
    assert result["first_episodes"][1]["start_s"] == 1.5
    assert result["typical_gap_s"] == 1.0 and result["longest_ms"] == 150.0 and result["slowest_speed"] == 0.2


def test_a_steady_series_has_no_episode() -> None:
    result = summarise([1000, 990, 1010, 1000] * 10)
    assert result["episodes"] == 0 and result["slow_share"] == 0 and result["typical_gap_s"] is None
    assert summarise([]) == {"windows": 0}


def test_probe_runs_a_loop_per_cpu() -> None:
    result = probe((0,), 0.5)
    assert result["cpu0"]["windows"] >= 5
    assert describe(result).startswith("cpu0: ")
