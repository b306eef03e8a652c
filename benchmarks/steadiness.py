"""How steadily this machine's CPUs run: a plain busy loop per CPU, nothing else.

    python -m benchmarks.steadiness [--seconds 8] [--cpus 0,1]

Each CPU runs a loop that counts its own iterations in 50 ms windows. On a steady host
every window counts about the same. On a shared VM some windows count far fewer: the
vCPU keeps running (no gap in the clock) but does a fraction of its usual work, because
the host gives the physical core to someone else. A server whose request needs 1 ms of
CPU at 500 requests/s falls behind in such a window, and the requests queued in it come
out as a cluster of slow ones: that is what set the p99 of the benchmark's open-loop runs
on this VM (see README, "Hot path and benchmarks"). `make bench` runs this probe before
and after its measurements and records both in results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import PY, ROOT

WINDOW_S = 0.05
SLOW = 0.7  # a window below 70 % of the median count is a slow one


def _worker(seconds: float) -> None:
    """Busy loop; print the iteration count of every window as one JSON line."""
    counts = []
    clock = time.perf_counter
    end = clock() + seconds
    edge = clock() + WINDOW_S
    n = 0
    while True:
        n += 1
        if n & 63 == 0:
            now = clock()
            if now >= edge:
                counts.append(n)
                n = 0
                edge += WINDOW_S
                if now >= end:
                    break
    print(json.dumps(counts), flush=True)


def summarise(counts: list[int]) -> dict[str, Any]:
    """Slow windows, merged into episodes: when they start, how long, how slow."""
    if not counts:
        return {"windows": 0}
    median = statistics.median(counts)
    episodes: list[dict[str, float]] = []
    for i, count in enumerate(counts):
        ratio = count / median if median else 1.0
        if ratio >= SLOW:
            continue
        start = round(i * WINDOW_S, 2)
        last = episodes[-1] if episodes else None
        if last is not None and start - (last["start_s"] + last["length_ms"] / 1000) <= WINDOW_S + 1e-9:
            last["length_ms"] += WINDOW_S * 1000
            last["slowest"] = min(last["slowest"], round(ratio, 2))
        else:
            episodes.append({"start_s": start, "length_ms": WINDOW_S * 1000, "slowest": round(ratio, 2)})
    starts = [e["start_s"] for e in episodes]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    slow_windows = sum(1 for c in counts if median and c / median < SLOW)
    return {
        "windows": len(counts),
        "slow_windows": slow_windows,
        "slow_share": round(slow_windows / len(counts), 3),
        "episodes": len(episodes),
        "typical_gap_s": round(statistics.median(gaps), 2) if gaps else None,
        "longest_ms": max((e["length_ms"] for e in episodes), default=0.0),
        "slowest_speed": min((e["slowest"] for e in episodes), default=1.0),
        "first_episodes": episodes[:8],
    }


def probe(cpus: tuple[int, ...] = (0, 1), seconds: float = 8.0) -> dict[str, Any]:
    """Run the busy loop on every CPU at once (both busy, as under load) and summarise each."""
    procs = []
    for cpu in cpus:
        cmd = ["taskset", "-c", str(cpu), PY, "-c",
               f"from benchmarks.steadiness import _worker; _worker({seconds!r})"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    out: dict[str, Any] = {"seconds": seconds, "window_ms": WINDOW_S * 1000, "slow_below": SLOW}
    for cpu, proc in zip(cpus, procs, strict=True):
        stdout, _ = proc.communicate(timeout=seconds + 60)
        try:
            counts = json.loads(stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            counts = []
        out[f"cpu{cpu}"] = summarise(counts)
    return out


def describe(result: dict[str, Any]) -> str:
    parts = []
    for key, value in result.items():
        if not key.startswith("cpu") or not isinstance(value, dict) or not value.get("windows"):
            continue
        gap = f", about every {value['typical_gap_s']} s" if value.get("typical_gap_s") else ""
        parts.append(f"{key}: {value['episodes']} slow episodes in {result['seconds']:g} s{gap}, "
                     f"{value['slow_share']:.0%} of the time, down to {value['slowest_speed']:.0%} speed, "
                     f"longest {value['longest_ms']:.0f} ms")
    return "; ".join(parts) or "no data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cpus", default="0,1", help="comma-separated CPU numbers")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)
    result = probe(tuple(int(c) for c in args.cpus.split(",")), args.seconds)
    print(json.dumps(result, indent=2) if args.json else describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
