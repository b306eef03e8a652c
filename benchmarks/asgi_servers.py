"""Which ASGI server should serve the gateway in production? Measure daphne, uvicorn
(uvloop + httptools) and granian on the real application (`aiproxy_site.asgi:application`).

    .venv/bin/python benchmarks/asgi_servers.py                     # 3 rounds x 4 servers, ~12 min
    .venv/bin/python benchmarks/asgi_servers.py --servers uvicorn granian --rounds 1 --seconds 5

Starts everything itself on its own embedded PostgreSQL and Redis (.aiproxy/bench-asgi):
migrations, the demo workspace (moved to an unmetered plan, response cache off, so every
request goes upstream), the fake provider (50 ms latency, 12-word answers) pinned to CPU 1
with Redis, then each server in turn with one worker pinned to CPU 0, and the load generator
(benchmarks/loadgen.py, closed loop) pinned to CPU 1. Each round measures the fake provider
directly (the baseline) and then every server through the gateway at concurrency 1, 16 and
64, plus one streaming run (stream=true, concurrency 16, time to first byte), recording the
server's CPU seconds (its whole process tree, from /proc/<pid>/stat) and peak RSS (VmHWM).
Rounds rotate the server order and the summary takes medians. A run is flagged noisy when
something else loaded CPU 0 or filled CPU 1 (another job on the host); the summary leaves
flagged runs out when clean ones exist, and each round first waits for the host to be idle.
Finally it probes each server: lifespan left at its default, Channels WebSocket (an echo
consumer behind AuthMiddlewareStack, benchmarks/ws_probe.py), and whether a client hanging
up on a stream stops the upstream stream. Prints a table and writes
benchmarks/results/asgi_servers.json. Every child runs in its own session and is stopped on
exit, Ctrl-C or SIGTERM; the embedded databases are stopped too unless --keep-db.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AIPROXY_DATA_DIR", str(ROOT / ".aiproxy" / "bench-asgi"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from benchmarks.harness import (  # noqa: E402
    BIN,
    CLIENT_CPU,
    PY,
    SERVER_CPU,
    cpu_busy,
    cpu_model,
    cpu_seconds,
    cpu_ticks,
    fake_stats,
    on_signal,
    peak_rss_mb,
    setup,
    spawn,
    stop,
    stop_all_children,
    trim_usage_stream,
    versions,
    wait_http,
    wait_quiet,
)

APP = "aiproxy_site.asgi:application"
PROBE_APP = "benchmarks.ws_probe:application"
MODEL = "fake-openai"
RESULTS = ROOT / "benchmarks" / "results" / "asgi_servers.json"
NOISE_CPU0_OTHER = 0.10  # a run is flagged noisy above these (see bench_server)
NOISE_CPU1_BUSY = 0.60


def server_commands(host: str, port: int, app: str) -> dict[str, list[str]]:
    """The command line of each candidate, one worker, as it would run in production
    (minus the bind address)."""
    return {
        # -v 0: daphne's default verbosity (1) writes an access-log line per request to stdout
        "daphne": [PY, "-m", "daphne", "-b", host, "-p", str(port), "-v", "0", app],
        # the Procfile's line as it stands (access log on), for reference
        "daphne-default": [PY, "-m", "daphne", "-b", host, "-p", str(port), app],
        "uvicorn": [PY, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--workers", "1",
                    "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log",
                    "--log-level", "warning", "--timeout-keep-alive", "75"],
        "granian": [str(BIN / "granian"), "--interface", "asginl", "--host", host, "--port", str(port),
                    "--workers", "1", "--loop", "uvloop", "--no-access-log", "--log-level", "warning", app],
        # granian picks its multi-threaded Rust runtime for ASGI; the single-threaded one may
        # suit a worker that owns one core
        "granian-st": [str(BIN / "granian"), "--interface", "asginl", "--host", host, "--port", str(port),
                       "--workers", "1", "--runtime-mode", "st", "--loop", "uvloop", "--no-access-log",
                       "--log-level", "warning", app],
    }


# ---------------------------------------------------------------- load

def load(url: str, key: str | None, concurrency: int, seconds: float, stream: bool = False,
         requests: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]}
    if stream:
        body["stream"] = True
    cmd = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "--url", url, "--body", json.dumps(body),
           "-c", str(concurrency), "--seconds", str(seconds), "--json", "--grace", "15"]
    if requests is not None:
        cmd += ["--requests", str(requests)]
    if stream:
        cmd.append("--stream")
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    proc = spawn(cmd, CLIENT_CPU, capture=True)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        stop(proc)
    return json.loads(out)


# ---------------------------------------------------------------- probes

async def _ws_probe(port: int) -> str:
    import websockets

    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/bench-echo/", open_timeout=5) as ws:
            await ws.send("ping")
            reply = await asyncio.wait_for(ws.recv(), 5)
            return "ok" if reply == "ping" else f"unexpected reply {reply!r}"
    except Exception as exc:  # noqa: BLE001 - a probe reports whatever went wrong
        return f"failed: {type(exc).__name__}: {exc}"


async def _disconnect_probe(port: int, fake_port: int, key: str) -> str:
    """Start a slow stream through the gateway, hang up after the first chunk, and see whether
    the upstream stream is abandoned (the server must deliver http.disconnect to the app)."""
    before = fake_stats(fake_port)
    body = json.dumps({"model": MODEL, "stream": True, "messages": [
        {"role": "user", "content": "[[fake:tps=5]] [[fake:words=60]] [[fake:ttft_ms=10]] tell me a story"}]}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        return f"stream refused: {head[:40]!r}"
    await asyncio.wait_for(reader.read(1), 10)
    writer.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 8:
        await asyncio.sleep(0.1)
        now = fake_stats(fake_port)
        if now["streams_abandoned"] > before["streams_abandoned"]:
            return f"ok (upstream abandoned after {time.monotonic() - t0:.1f} s)"
        if now["streams_completed"] > before["streams_completed"]:
            return "upstream stream ran to completion after the client left"
    return "upstream stream still running 8 s after the client left"


def probe(name: str, port: int, fake_port: int, key: str, logdir: Path) -> dict[str, Any]:
    """Start the server on the probe app (the real app plus an echo WebSocket consumer behind
    Channels' AuthMiddlewareStack) and check HTTP (Django and gateway), WebSocket and that a
    client hanging up on a stream stops the upstream stream."""
    cmd = server_commands("127.0.0.1", port, PROBE_APP)[name]
    log = logdir / f"{name}-probe.log"
    proc = spawn(cmd, SERVER_CPU, log)
    out: dict[str, Any] = {}
    try:
        wait_http(f"http://127.0.0.1:{port}/accounts/login/", proc=proc)
        out["django_login_page"] = wait_http(f"http://127.0.0.1:{port}/accounts/login/")
        out["gateway_models"] = wait_http(f"http://127.0.0.1:{port}/v1/models",
                                          headers={"Authorization": f"Bearer {key}"})
        out["websocket_echo"] = asyncio.run(_ws_probe(port))
        out["stream_client_disconnect"] = asyncio.run(_disconnect_probe(port, fake_port, key))
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stop(proc)
    out["log_tail"] = log.read_text(errors="replace").strip().splitlines()[-5:]
    return out


def lifespan_probe(name: str, port: int, logdir: Path) -> dict[str, Any]:
    """Start the real app with the server's lifespan handling left on (its default) and
    report whether it serves and what it logs."""
    if name.startswith("daphne"):
        return {"note": "daphne does not implement the lifespan protocol; nothing to switch off"}
    cmd = server_commands("127.0.0.1", port, APP)[name]
    if name == "uvicorn":
        cmd = [c for c in cmd if c not in ("--lifespan", "off")] + ["--lifespan", "auto", "--log-level", "info"]
    else:
        cmd = [("asgi" if c == "asginl" else c) for c in cmd]  # granian's asgi interface runs lifespan
    log = logdir / f"{name}-lifespan.log"
    proc = spawn(cmd, SERVER_CPU, log)
    out: dict[str, Any] = {"command": " ".join(cmd[1:] if cmd[0] == PY else cmd)}
    try:
        out["status"] = wait_http(f"http://127.0.0.1:{port}/accounts/login/", proc=proc, timeout=30)
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stop(proc)
    out["log_tail"] = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-6:]
    return out


# ---------------------------------------------------------------- main

Test = tuple[int, bool]  # (concurrency, stream)


def test_name(test: Test) -> str:
    return f"{'stream' if test[1] else 'c'}{test[0]}"


def measure_direct(fake_port: int, tests: list[Test], seconds: float) -> dict[str, dict[str, Any]]:
    """The baseline: the same load straight at the fake provider."""
    url = f"http://127.0.0.1:{fake_port}/v1/chat/completions"
    return {test_name(t): load(url, None, t[0], seconds, stream=t[1]) for t in tests}


def bench_server(name: str, port: int, fake_port: int, key: str, seconds: float, tests: list[Test],
                 direct: dict[str, dict[str, Any]], logdir: Path) -> dict[str, Any]:
    cmd = server_commands("127.0.0.1", port, APP)[name]
    log = logdir / f"{name}.log"
    proc = spawn(cmd, SERVER_CPU, log)
    gw_url = f"http://127.0.0.1:{port}/v1/chat/completions"
    result: dict[str, Any] = {"command": " ".join(cmd), "runs": []}
    try:
        started = time.monotonic()
        wait_http(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}, proc=proc)
        result["startup_s"] = round(time.monotonic() - started, 2)
        result["rss_after_start_mb"] = peak_rss_mb(proc.pid)
        load(gw_url, key, 16, 2.0)  # warm: directory, pools, code paths
        load(gw_url, key, 16, 1.0, stream=True)
        for test in tests:
            concurrency, stream = test
            trim_usage_stream()
            up0 = fake_stats(fake_port)["requests"]
            cpu0, ticks0 = cpu_seconds(proc.pid), cpu_ticks()
            gw = load(gw_url, key, concurrency, seconds, stream=stream)
            cpu, busy = cpu_seconds(proc.pid) - cpu0, cpu_busy(ticks0, cpu_ticks())
            upstream = fake_stats(fake_port)["requests"] - up0
            d = direct[test_name(test)]
            sec = "ttfb_ms" if stream else "latency_ms"
            util = cpu / gw["elapsed_s"]
            # another job on the host skews a run: load on CPU 0 that is not the server, or
            # CPU 1 (fake provider + load generator + Redis, normally < 60 % busy) nearly full
            other = round(busy.get(f"cpu{SERVER_CPU}_busy", 0) - util, 3)
            noisy = other > NOISE_CPU0_OTHER or busy.get(f"cpu{CLIENT_CPU}_busy", 0) > NOISE_CPU1_BUSY
            run = {
                "test": test_name(test), "concurrency": concurrency, "stream": stream, "direct": d, "gateway": gw,
                "gateway_cpu_s": round(cpu, 2),
                "gateway_cpu_ms_per_req": round(cpu * 1000 / gw["ok"], 3) if gw["ok"] else None,
                "gateway_cpu_util": round(util, 3),
                "cpu0_other_load": other,
                "noisy": noisy,
                # whole-machine view: CPU 0 = server, CPU 1 = fake provider + load + Redis
                "host_cpu": busy,
                "upstream_requests": upstream,
                "overhead_p50_ms": _diff(gw, d, sec, "p50"),
                "overhead_p99_ms": _diff(gw, d, sec, "p99"),
            }
            result["runs"].append(run)
            print(_row(name, run), flush=True)
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
        result["peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        stop(proc)
    result["log_tail"] = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-10:]
    return result


def _diff(gw: dict[str, Any], direct: dict[str, Any], section: str, q: str) -> float | None:
    a, b = gw.get(section, {}).get(q), direct.get(section, {}).get(q)
    return None if a is None or b is None else round(a - b, 2)


HEADER = (f"{'server':10} {'test':8} {'rps direct':>10} {'rps gw':>7} {'p50 d/gw ms':>13} {'p99 d/gw ms':>13} "
          f"{'+p50':>5} {'+p99':>6} {'err':>4} {'cpu ms/req':>10} {'cpu0 busy':>9} {'cpu1 busy':>9}")


def _row(name: str, run: dict[str, Any]) -> str:
    d, g = run["direct"], run["gateway"]
    sec = "ttfb_ms" if run["stream"] else "latency_ms"
    host = run["host_cpu"]
    return (f"{name:10} {run['test']:8} {d['rps']:>10.0f} {g['rps']:>7.0f} "
            f"{d[sec]['p50']:>6.1f}/{g[sec]['p50']:<6.1f} {d[sec]['p99']:>6.1f}/{g[sec]['p99']:<6.1f} "
            f"{run['overhead_p50_ms'] or 0:>5.1f} {run['overhead_p99_ms'] or 0:>6.1f} "
            f"{g['errors'] + d['errors']:>4} {run['gateway_cpu_ms_per_req'] or 0:>10.2f} "
            f"{host.get('cpu0_busy', 0):>9.0%} {host.get('cpu1_busy', 0):>9.0%}{'  noisy' if run['noisy'] else ''}")


def _median(values: list[float | None]) -> float | None:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return round(vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2, 2)


def summarize(rounds: list[dict[str, Any]], servers: list[str], tests: list[Test]) -> dict[str, Any]:
    """Median over rounds of each server's figures for each test."""
    out: dict[str, Any] = {}
    for name in servers:
        out[name] = {}
        for test in tests:
            every = [run for r in rounds if name in r["servers"] for run in r["servers"][name]["runs"]
                     if run["test"] == test_name(test)]
            clean = [run for run in every if not run.get("noisy")]
            runs = clean or every
            sec = "ttfb_ms" if test[1] else "latency_ms"
            out[name][test_name(test)] = {
                "rounds": len(runs),
                "noisy_rounds_left_out": len(every) - len(runs),
                "all_noisy": not clean,
                "direct_rps": _median([r["direct"]["rps"] for r in runs]),
                "gateway_rps": _median([r["gateway"]["rps"] for r in runs]),
                f"direct_{sec[:-3]}_p50_ms": _median([r["direct"][sec]["p50"] for r in runs]),
                f"gateway_{sec[:-3]}_p50_ms": _median([r["gateway"][sec]["p50"] for r in runs]),
                f"gateway_{sec[:-3]}_p99_ms": _median([r["gateway"][sec]["p99"] for r in runs]),
                "overhead_p50_ms": _median([r["overhead_p50_ms"] for r in runs]),
                "overhead_p99_ms": _median([r["overhead_p99_ms"] for r in runs]),
                "errors": sum(r["gateway"]["errors"] + r["direct"]["errors"] for r in runs),
                "gateway_cpu_s": _median([r["gateway_cpu_s"] for r in runs]),
                "gateway_cpu_ms_per_req": _median([r["gateway_cpu_ms_per_req"] for r in runs]),
                "cpu0_busy": _median([r["host_cpu"].get("cpu0_busy") for r in runs]),
            }
        peaks = [r["servers"][name].get("peak_rss_mb", {}).get("max_process") for r in rounds if name in r["servers"]]
        out[name]["peak_rss_mb"] = max((p for p in peaks if p is not None), default=None)
    return out


def _print_summary(report: dict[str, Any]) -> None:
    rounds = len(report["rounds"])
    print(f"\nMedians over {rounds} round(s), leaving out runs flagged noisy (n = rounds used); "
          "overhead = gateway minus direct (TTFB for stream16)")
    print(f"{'server':10} {'test':8} {'rps direct':>10} {'rps gw':>7} {'gw p50':>7} {'gw p99':>7} {'+p50':>6} "
          f"{'+p99':>6} {'err':>4} {'cpu s':>6} {'cpu ms/req':>10} {'cpu0 busy':>9} {'n':>2}")
    for name, tests in report["summary"].items():
        for test, m in tests.items():
            if not isinstance(m, dict):
                continue
            p50 = m.get("gateway_ttfb_p50_ms", m.get("gateway_latency_p50_ms"))
            p99 = m.get("gateway_ttfb_p99_ms", m.get("gateway_latency_p99_ms"))
            print(f"{name:10} {test:8} {m['direct_rps'] or 0:>10.0f} {m['gateway_rps'] or 0:>7.0f} {p50 or 0:>7.1f} "
                  f"{p99 or 0:>7.1f} {m['overhead_p50_ms'] or 0:>6.1f} {m['overhead_p99_ms'] or 0:>6.1f} "
                  f"{m['errors']:>4} {m['gateway_cpu_s'] or 0:>6.2f} {m['gateway_cpu_ms_per_req'] or 0:>10.2f} "
                  f"{m['cpu0_busy'] or 0:>9.0%} {m['rounds']:>2}{'  all noisy' if m['all_noisy'] else ''}")
    print(f"\n{'server':10} {'peak RSS MB':>11} {'startup s':>9}  {'lifespan (default on)':34} {'websocket':9}  "
          "client hang-up on a stream")
    for name, r in report["probes"].items():
        lp = r.get("lifespan", {})
        life = lp.get("note") or (f"serves ({lp.get('status')}), see log" if "status" in lp else lp.get("error", "-"))
        ch = r.get("channels", {})
        print(f"{name:10} {report['summary'][name]['peak_rss_mb'] or 0:>11.1f} {r.get('startup_s') or 0:>9.2f}  "
              f"{str(life)[:34]:34} {ch.get('websocket_echo', '-')[:9]:9}  {ch.get('stream_client_disconnect', '-')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn", "granian", "granian-st"],
                        choices=["daphne", "daphne-default", "uvicorn", "granian", "granian-st"])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--stream-concurrency", type=int, default=16, help="0 skips the streaming run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat everything this many times (server order rotated) and report medians")
    parser.add_argument("--wait-quiet", type=float, default=300,
                        help="before each round, wait up to this many seconds for the host to be idle")
    parser.add_argument("--port", type=int, default=18000, help="gateway port (127.0.0.1)")
    parser.add_argument("--fake-port", type=int, default=18100)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the fake provider's answer latency")
    parser.add_argument("--no-probes", action="store_true", help="skip the lifespan and WebSocket probes")
    parser.add_argument("--keep-db", action="store_true", help="leave the embedded PostgreSQL and Redis running")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs at least 2 CPUs (server on CPU 0, fake provider and load on CPU 1)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (background jobs)
    os.environ["FAKE_PROVIDER_URL"] = f"http://127.0.0.1:{args.fake_port}"
    logdir = Path(os.environ["AIPROXY_DATA_DIR"]) / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    tests: list[Test] = [(c, False) for c in args.concurrency]
    if args.stream_concurrency:
        tests.append((args.stream_concurrency, True))
    ci_busy = subprocess.run(["pgrep", "-f", "ci-clone"], capture_output=True).returncode == 0
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"cpu": cpu_model(), "cpus": os.cpu_count(), "other_heavy_jobs_seen": ci_busy},
        "versions": versions(("daphne", "twisted", "uvicorn", "uvloop", "httptools", "granian", "django", "channels", "aiohttp")),
        "setup": {"seconds_per_run": args.seconds, "rounds": args.rounds, "fake_latency_ms": args.latency_ms,
                  "model": MODEL, "server_cpu": SERVER_CPU, "fake_provider_load_and_redis_cpu": CLIENT_CPU,
                  "commands": {n: " ".join(c) for n, c in server_commands("127.0.0.1", args.port, APP).items()
                               if n in args.servers}},
        "rounds": [],
        "probes": {},
    }
    try:
        key, notes = setup(args.port)
        report["setup"].update(notes)
        fake_env = {**os.environ, "FAKE_LATENCY_MS": str(args.latency_ms), "FAKE_WORDS": "12"}
        fake_cmd = [PY, "-m", "uvicorn", "gateway.fake_provider:app", "--host", "127.0.0.1", "--port",
                    str(args.fake_port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--log-level", "warning"]
        fake = spawn(fake_cmd, CLIENT_CPU, logdir / "fake-provider.log", env=fake_env)
        wait_http(f"http://127.0.0.1:{args.fake_port}/health", proc=fake)
        report["setup"]["fake_provider_command"] = " ".join(fake_cmd)
        for i in range(args.rounds):
            order = args.servers[i % len(args.servers):] + args.servers[:i % len(args.servers)]
            print(f"\nround {i + 1}/{args.rounds}\n{HEADER}", flush=True)
            waited = wait_quiet(args.wait_quiet)
            direct = measure_direct(args.fake_port, tests, args.seconds)
            rnd: dict[str, Any] = {"waited_for_quiet_s": waited, "direct": direct, "servers": {}}
            for name in order:
                rnd["servers"][name] = bench_server(name, args.port, args.fake_port, key, args.seconds, tests,
                                                    direct, logdir)
            report["rounds"].append(rnd)
        for name in args.servers:
            report["probes"][name] = {"startup_s": _median([r["servers"][name]["startup_s"] for r in report["rounds"]])}
            if not args.no_probes:
                report["probes"][name]["lifespan"] = lifespan_probe(name, args.port, logdir)
                report["probes"][name]["channels"] = probe(name, args.port, args.fake_port, key, logdir)
        report["summary"] = summarize(report["rounds"], args.servers, tests)
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        _print_summary(report)
        print(f"\nwrote {args.out}")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping", file=sys.stderr)
        return 130
    finally:
        stop_all_children()
        if "REDIS_URL" in os.environ:
            trim_usage_stream()
        if not args.keep_db:
            from aiproxy_site.embedded import stop_all

            stop_all()


if __name__ == "__main__":
    sys.exit(main())
