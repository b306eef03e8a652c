"""The smoke version of `make bench` (benchmarks/bench.py --smoke): the same processes as
the benchmark (fake provider, the Procfile's gateway with everything on, the bare proxy),
a few hundred requests each, closed loop, open loop and streams, on the one-deployment
model and the three-deployment group, and a short failover run (issue 16). It checks correctness
only: every request answered, and a usage event queued and persisted per gateway request.
No timing is asserted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT


def _four_free_ports() -> int:
    """The first of four consecutive free ports (the benchmark's gateway, bare proxy, LiteLLM, fake provider)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first > 65000:
            continue
        try:
            for port in range(first, first + 4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no four consecutive free ports")


def test_bench_smoke_answers_every_request_and_records_its_usage() -> None:
    data_dir = Path(os.environ["AIPROXY_DATA_DIR"]).with_name(Path(os.environ["AIPROXY_DATA_DIR"]).name + "-bench")
    out = data_dir / "smoke.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}  # its own servers
    env["AIPROXY_DATA_DIR"] = str(data_dir)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--smoke", "--port",
                           str(_four_free_ports()), "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    checks = report["smoke_checks"]
    assert set(checks) == {"direct: every request answered", "gateway: every request answered",
                           "gateway-three: every request answered", "bare: every request answered",
                           "gateway: the failover run answered every request",
                           "gateway: a usage event per request", "gateway: usage persisted to PostgreSQL"}
    assert all(check["ok"] for check in checks.values()), checks
    gateway = report["tests"]["gateway"]
    for test in ("single", "open500", "stream"):
        run = gateway[test]
        assert run["errors"] == 0 and run["ok"] == run["requests"] > 0, (test, run)
    assert gateway["stream"]["ttfb_ms"]["p50"] is not None  # the streams streamed
    assert report["setup"]["gateway_command"].split()[1:3] == ["-m", "uvicorn"]  # the Procfile's server
    # issue 16: the routing figure (3 deployments minus 1) and the failover run are reported
    routing = report["routing"]
    assert set(routing["tests"]) == {"single", "open500", "stream"}
    assert isinstance(routing["routing_cpu_ms_per_request"], float) and routing["budget_ms"] == 0.05
    failover = report["failover"]
    assert failover["requests"] == failover["baseline"]["requests"] == 100
    assert set(failover["added_latency_ms"]) == {"p50", "p99"}
    assert set(failover["failover"]["deployments"]) <= {"demo-failover-bench/a", "demo-failover-bench/b"}
    assert set(report["targets"]) >= {"routing_cpu_3_deployments", "failover_errors"}
    probe = report["host"]["steadiness"]["before"]  # the host probe ran on both CPUs
    assert probe["cpu0"]["windows"] > 0 and probe["cpu1"]["windows"] > 0
