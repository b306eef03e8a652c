"""`make bench`: the gateway against the fake provider directly, a bare pass-through proxy
and LiteLLM's proxy, on the same core, the same loads and in the same run.

    .venv/bin/python benchmarks/bench.py                   # everything, about 15 minutes
    .venv/bin/python benchmarks/bench.py --skip-litellm --skip-slow-streams
    .venv/bin/python benchmarks/bench.py --smoke           # a few hundred requests, checks only

Starts everything itself, on its own embedded PostgreSQL and Redis (.aiproxy/bench):

- the fake provider (gateway/fake_provider) with a fixed latency: 50 ms for an answer; for
  a stream 50 ms to the first token, then 20 chunks 50 ms apart (--chunk-ms);
- the targets, each in turn with one worker pinned to CPU 0: the gateway as production
  runs it (the Procfile's `web:` command: uvicorn, its flags and WEB_CONCURRENCY workers),
  the bare proxy (benchmarks/bare_proxy.py, the same server flags, nothing but forwarding)
  and LiteLLM's proxy (`litellm[proxy]` installed from PyPI into its own venv,
  .aiproxy/bench/litellm-venv, configured with a master key against the same fake provider);
- the load generator (benchmarks/loadgen.py), the fake provider and Redis pinned to CPU 1.

The gateway runs with everything on: the demo workspace gets rate limits (requests and
tokens) and a hard budget on its key and on itself, a monthly request quota, usage
recording and the exact cache, and each request has a unique prompt at temperature 0, so
every one is a cache miss that is then stored (gateway/hotpath/response_cache.py). Nothing in it knows about
the benchmark. The embedding service (Procfile `embedder:`) runs as in production, once per
host, and its memory is reported apart from the workers'.

Tests, for every target, with the fake provider measured directly in the same run (the
difference is the overhead). single, open500 and stream run in 3 rounds of 5 s: in each
round each test runs on every target in turn (order rotated), and a target's slices are
merged (percentiles over all their requests), so every target meets the same periods of
the host. The provider is measured twice, as `direct` and `direct-again`: that A/A
pair's "overhead" is what the host's noise alone makes of a difference.
  single   closed loop, 1 client: the latency a lone request pays
  open500  open loop at 500 requests/s: added latency p50/p99 and errors
  ladder   open loop at rising rates (6 s each) until p99 passes twice the upstream latency,
           a request fails or throughput falls behind the offered rate: the highest rate
           that held is the maximal sustainable throughput. Direct, gateway and bare
           climb together (each rate on each in turn), so they meet the same states
           of the host
  stream   200 concurrent streams, closed loop: time-to-first-byte overhead
  slow     10,000 concurrent slow streams (first token after 1 s, then one chunk a second
           for 30 s) opened over 20 s, gateway with 2 workers (WEB_CONCURRENCY=2, one per
           core) against the provider directly: TTFB overhead, and none dropped; the bare
           proxy with 2 workers on the same load

Routing and failover (issue 16), in the same run:
  routing  the gateway is measured twice in the interleaved rounds: as `gateway` on
           fake-openai (one deployment) and as `gateway-three` on bench-three (three
           healthy deployments of the same upstream model, least_busy), the same process
           in back-to-back slices. Three minus one, the median over the rounds of
           open500's CPU per request, is what routing costs; the budget is 0.05 ms
  failover benchmarks/failover.py at 200 requests/s for 20 s (--failover-seconds) on
           demo-failover-bench (priority: "a" 30 % 503s, then dead at the midpoint; "b"
           healthy), after the same run with the fault unset: client-visible errors
           (target 0) and the latency added over that baseline. --skip-failover skips it;
           the smoke run does 2 s at 50 requests/s

Before and after, benchmarks/steadiness.py runs a plain busy loop on each CPU for 10 s and
records how often the VM ran it slow (a shared host: episodes of 100 ms to 1 s at 6-40 %
of the usual speed, every 0.5-1.5 s on this machine). Those episodes, not the targets,
make the clusters of slow requests that set the open-loop p99s here.

Each run records p50/p90/p99/max latency, throughput, errors, the target's CPU seconds
(whole process tree) and peak RSS (VmHWM). Prints a table and writes
benchmarks/results/latest.json. Every child runs in its own session and is stopped on
exit, Ctrl-C or SIGTERM; the embedded databases are stopped too unless --keep-db.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AIPROXY_DATA_DIR", str(ROOT / ".aiproxy" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from benchmarks import failover  # noqa: E402
from benchmarks.harness import (  # noqa: E402
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
    procfile_command,
    setup,
    spawn,
    stop,
    stop_all_children,
    trim_usage_stream,
    versions,
    wait_http,
    wait_quiet,
)
from benchmarks.loadgen import summary_ms  # noqa: E402
from benchmarks.steadiness import describe as steadiness_describe  # noqa: E402
from benchmarks.steadiness import probe as steadiness_probe  # noqa: E402

MODEL = "fake-openai"
THREE_MODEL = "bench-three"  # three healthy deployments, least_busy (routing_groups_ensure)
FAILOVER_MODEL = "demo-failover-bench"  # a flaky-then-dead deployment and a healthy one, priority
THREE = "gateway-three"  # the gateway process measured again, on THREE_MODEL
ROUTING_BUDGET_MS = 0.05  # issue 16: routing among 3 deployments adds at most this CPU per request
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
LITELLM_KEY = "sk-bench-litellm-master"
LADDER = [10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400,
          1500, 1600, 1700, 1800, 2000, 2200, 2400, 2700, 3000, 3500, 4000]
LADDER_START = {"litellm": 10}  # the others start at 200 requests/s
AGAIN = "direct-again"  # the A/A control: the same provider, measured as a second target
ROUNDS = 3  # single, open500 and stream run in this many interleaved slices
SERVER_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log", "--log-level",
                "warning", "--timeout-keep-alive", "75"]


# ---------------------------------------------------------------- targets

class Target:
    """One thing to send load at: its URL, how to start it, and its key."""

    def __init__(self, name: str, port: int, key: str | None, command: list[str] | None,
                 env: dict[str, str] | None = None, cpu: int | None = SERVER_CPU, model: str = MODEL,
                 host: Target | None = None) -> None:
        self.name, self.port, self.key, self.command, self.env, self.cpu = name, port, key, command, env, cpu
        self.model = model
        self.host = host  # another target's process, measured again with this target's model
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The process whose CPU and memory this target's runs are charged to."""
        return self.host.proc if self.host is not None else self.proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def start(self, logdir: Path, timeout: float = 90) -> float:
        if self.command is None:
            return 0.0
        started = time.monotonic()
        self.proc = spawn(self.command, self.cpu, logdir / f"{self.name}.log", env=self.env)
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else None
        probe = f"http://127.0.0.1:{self.port}/v1/models" if self.name != "bare" else f"http://127.0.0.1:{self.port}/health"
        wait_http(probe, headers=headers, proc=self.proc, timeout=timeout)
        return round(time.monotonic() - started, 2)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def cpu_s(self) -> float:
        return cpu_seconds(self.process.pid) if self.process else 0.0

    def rss(self) -> dict[str, Any]:
        return peak_rss_mb(self.process.pid) if self.process else {}


def body_for(stream: bool, slow: bool = False, chunk_ms: float = 50.0, model: str = MODEL) -> str:
    """A unique prompt per request ({n}, and a nonce per run) at temperature 0: cacheable,
    and always a miss."""
    text = f"Benchmark {os.urandom(4).hex()} request {{n}}: say hello."
    if slow:
        text = "[[fake:ttft_ms=1000]] [[fake:chunk_ms=1000]] [[fake:words=30]] " + text
    elif stream:
        text = f"[[fake:ttft_ms=50]] [[fake:chunk_ms={chunk_ms:g}]] [[fake:words=20]] " + text
    body: dict[str, Any] = {"model": model, "temperature": 0, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body)


def load(target: Target, *, concurrency: int | None = None, rate: float | None = None, seconds: float,
         stream: bool = False, requests: int | None = None, body: str | None = None, ramp: float = 0.0,
         grace: float = 20.0, cpu: int | None = CLIENT_CPU, samples: bool = False,
         chunk_ms: float = 50.0) -> dict[str, Any]:
    # a fresh prompt nonce for every run (body_for): a run must never hit an earlier run's cache entries
    cmd = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "--url", target.url,
           "--body", body or body_for(stream, chunk_ms=chunk_ms, model=target.model),
           "--seconds", str(seconds), "--json", "--grace", str(grace)]
    if samples:
        cmd.append("--samples")
    if rate:
        cmd += ["--rate", str(rate)]
    else:
        cmd += ["-c", str(concurrency or 1)]
    if requests is not None:
        cmd += ["--requests", str(requests)]
    if ramp:
        cmd += ["--ramp", str(ramp)]
    if stream:
        cmd.append("--stream")
    if target.key:
        cmd += ["-H", f"Authorization: Bearer {target.key}"]
    proc = spawn(cmd, cpu, capture=True)
    try:
        out, _ = proc.communicate(timeout=seconds + grace + 60)
    finally:
        stop(proc)
    return json.loads(out)  # type: ignore[no-any-return]


KEEP_USAGE = False  # the smoke run counts the usage events; the benchmark keeps Redis small


def measured(target: Target, **kwargs: Any) -> dict[str, Any]:
    """One load run with the target's CPU seconds and the host's CPU use around it."""
    if not KEEP_USAGE:
        trim_usage_stream()  # no Celery worker drains the usage stream during the benchmark
    cpu0, ticks0 = target.cpu_s(), cpu_ticks()
    result = load(target, **kwargs)
    cpu = target.cpu_s() - cpu0
    result["target_cpu_s"] = round(cpu, 2)
    result["target_cpu_ms_per_req"] = round(cpu * 1000 / result["ok"], 3) if result["ok"] else None
    result["host_cpu"] = cpu_busy(ticks0, cpu_ticks())
    result["peak_rss_mb"] = target.rss().get("max_process")
    if target.process is not None and target.process.poll() is not None:
        raise RuntimeError(f"{target.name} exited with {target.process.returncode}")
    return result


def settle(target: Target, limit_s: float = 60.0) -> None:
    """Wait until the target has worked off any backlog (its CPU idle for a second), so
    one run's overload does not spill into the next."""
    if target.process is None:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = target.cpu_s()
        time.sleep(1.0)
        if target.cpu_s() - before < 0.05:
            return


def merged(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the slices of one test on one target: counts and CPU added up,
    percentiles over every request of every slice (each slice's own kept in `slices`)."""
    first = slices[0]
    out: dict[str, Any] = {k: first.get(k) for k in ("url", "concurrency", "stream", "rate")}
    for k in ("elapsed_s", "requests", "ok", "errors", "target_cpu_s", "offered"):
        out[k] = round(sum(r.get(k) or 0 for r in slices), 3)
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for r in slices:
        kinds.update(r.get("error_kinds") or {})
        statuses.update(r.get("statuses") or {})
    out["error_kinds"], out["statuses"] = dict(kinds), dict(statuses)
    out["rps"] = round(out["ok"] / out["elapsed_s"], 1) if out["elapsed_s"] else 0.0
    out["target_cpu_ms_per_req"] = round(out["target_cpu_s"] * 1000 / out["ok"], 3) if out["ok"] else None
    for section in ("latency_ms", "ttfb_ms"):
        if section in first:
            values = [v / 1000 for r in slices for v in r["samples_ms"][section]]
            out[section] = summary_ms(values)
    out["peak_rss_mb"] = max((r.get("peak_rss_mb") or 0 for r in slices), default=None) or None
    section = "ttfb_ms" if first.get("stream") else "latency_ms"
    out["slices"] = [{"p50_ms": r[section]["p50"], "p99_ms": r[section]["p99"], "ok": r["ok"], "errors": r["errors"],
                      "cpu_ms_per_req": r.get("target_cpu_ms_per_req"), "host_cpu": r.get("host_cpu")} for r in slices]
    return out


def _slice(target: Target, **kwargs: Any) -> dict[str, Any]:
    settle(target)
    return measured(target, samples=True, **kwargs)


def interleaved(targets: list[Target], tests: dict[str, dict[str, Any]], rounds: int,
                run: Callable[..., dict[str, Any]] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Every test in `rounds` slices. In each round, each test runs on every target in turn
    (the order rotated from round to round), so the targets meet the same periods of this
    VM's uneven CPUs (benchmarks/steadiness.py) instead of one getting a calm minute and
    the next a rough one; each target's slices of a test are then merged (merged())."""
    run = run or _slice
    slices: dict[str, dict[str, list[dict[str, Any]]]] = {t.name: {test: [] for test in tests} for t in targets}
    for r in range(rounds):
        order = targets[r % len(targets):] + targets[:r % len(targets)]
        for test, kwargs in tests.items():
            for target in order:
                slices[target.name][test].append(run(target, **kwargs))
    return {name: {test: merged(runs) for test, runs in by_test.items()} for name, by_test in slices.items()}


def _print_tests(name: str, results: dict[str, Any]) -> None:
    for test in ("single", "open500", "stream"):
        run = results[test]
        print(f"  {name:12} {test:8} {run['rps']:>8.1f} req/s, {run['ok']} ok, {run['errors']} errors "
              f"{run['error_kinds'] or ''}", flush=True)


def sustainable(run: dict[str, Any], rate: float, p99_limit_ms: float) -> bool:
    """Held: no errors, p99 within the limit and (nearly) every offered request answered."""
    p99 = run["latency_ms"]["p99"]
    return (run["errors"] == 0 and p99 is not None and p99 <= p99_limit_ms
            and run["ok"] >= 0.98 * run.get("offered", rate * 6))


def ladder_step(target: Target, rate: int, p99_limit_ms: float, seconds: float, steps: list[dict[str, Any]]) -> bool:
    """One rate of the ladder on one target; a step that fails is run once more and holds
    if either run held: one stray pause on this shared VM should not end the climb (every
    target gets the same chance)."""
    settle(target)
    ok = False
    for attempt in (1, 2):
        run = measured(target, rate=rate, seconds=seconds, grace=10.0)
        ok = sustainable(run, rate, p99_limit_ms)
        steps.append({"rate": rate, "attempt": attempt, "held": ok, "rps": run["rps"], "errors": run["errors"],
                      "p50_ms": run["latency_ms"]["p50"], "p99_ms": run["latency_ms"]["p99"],
                      "cpu_ms_per_req": run["target_cpu_ms_per_req"], "host_cpu": run["host_cpu"]})
        print(f"  {target.name:8} ladder {rate:>5} req/s: {'held' if ok else 'failed':6} rps {run['rps']:>7.1f} "
              f"p50 {run['latency_ms']['p50'] or 0:>7.1f} p99 {run['latency_ms']['p99'] or 0:>8.1f} "
              f"err {run['errors']} cpu {run['host_cpu'].get(f'cpu{SERVER_CPU}_busy', 0):.0%}/"
              f"{run['host_cpu'].get(f'cpu{CLIENT_CPU}_busy', 0):.0%}", flush=True)
        if ok or run["errors"] > run["ok"]:  # a target that is drowning is not retried
            break
    return ok


def ladders(targets: list[Target], p99_limit_ms: float, seconds: float,
            step: Callable[..., bool] = ladder_step) -> dict[str, dict[str, Any]]:
    """Open-loop rates from LADDER until one does not hold; the last that held is each
    target's maximum. The targets climb together: each rate is run on every target still
    climbing, one after the other, so they all meet the same periods of the host (this
    VM's CPUs run slow in episodes, benchmarks/steadiness.py) rather than one target
    getting a calm few minutes and the next a rough one."""
    results: dict[str, dict[str, Any]] = {t.name: {"max_sustainable_rps": 0, "p99_limit_ms": p99_limit_ms, "steps": []}
                                          for t in targets}
    climbing = list(targets)
    for rate in LADDER:
        for target in list(climbing):
            if rate < LADDER_START.get(target.name, 200):
                continue
            if step(target, rate, p99_limit_ms, seconds, results[target.name]["steps"]):
                results[target.name]["max_sustainable_rps"] = rate
            else:
                climbing.remove(target)
        if not climbing:
            break
    return results


# ---------------------------------------------------------------- routing and failover (issue 16)

def routing_groups_ensure() -> None:
    """The two groups of issue 16's runs, on the fake provider of MODEL with MODEL's
    upstream model and prices, so the upstream work is the same as MODEL's:

    - THREE_MODEL: three healthy deployments, least_busy: every choice sorts all three by
      the requests in flight, the live state that changes with every request (the
      strategies cost within 0.4 µs of each other in benchmarks/routing_cpu.py), and the
      load spreads over the three, so the health sync carries three deployments;
    - FAILOVER_MODEL: "a" obeys the named fault bench-a, "b" is healthy; priority, so
      every request meets the failing deployment first (weighted would send half the
      traffic straight to the healthy one and hide half the fault).

    A group kept from an earlier run (the data directory is kept) is left as it is, but
    its deployments' health is forgotten: a circuit the last failover run left open would
    send the next baseline to "b"."""
    import redis
    from django.db import transaction

    from gateway.catalog.demo import CONTEXT_WINDOW, FAKE_MODELS
    from gateway.catalog.models import Deployment, Model, Provider
    from gateway.hotpath.redis_keys import deployment_health_key, deployment_probe_key

    spec = next(m for m in FAKE_MODELS if m.public_name == MODEL)
    provider = Provider.objects.get(name=spec.provider_name)
    groups = {
        THREE_MODEL: ("least_busy", [("one", spec.upstream_name, 0), ("two", spec.upstream_name, 0),
                                     ("three", spec.upstream_name, 0)]),
        FAILOVER_MODEL: ("priority", [("a", f"{spec.upstream_name}[[fake:fault={failover.FAULT}]]", 0),
                                      ("b", spec.upstream_name, 1)]),
    }
    for name, (strategy, deployments) in groups.items():
        if Model.objects.filter(public_name=name).exists():
            continue
        with transaction.atomic():
            group = Model.objects.create(public_name=name, strategy=strategy, context_window=CONTEXT_WINDOW)
            for label, upstream, priority in deployments:
                Deployment.objects.create(group=group, provider=provider, name=label, upstream_name=upstream,
                                          priority=priority, input_price_per_mtok=spec.input_price,
                                          output_price_per_mtok=spec.output_price)
    ids = Deployment.objects.filter(group__public_name__in=groups).values_list("pk", flat=True)
    keys = [key for pk in ids for key in (deployment_health_key(pk), deployment_probe_key(pk))]
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*keys)


def failover_load(gateway: Target, fake_port: int, *, rate: float, seconds: float, faulted: bool) -> dict[str, Any]:
    """benchmarks/failover.py against the gateway's FAILOVER_MODEL, pinned to the load's
    CPU like every load generator here; without `faulted` the group stays healthy (the
    baseline)."""
    cmd = [PY, str(ROOT / "benchmarks" / "failover.py"), "--url", f"http://127.0.0.1:{gateway.port}/v1",
           "--key", gateway.key or "", "--fake-url", f"http://127.0.0.1:{fake_port}", "--model", FAILOVER_MODEL,
           "--rate", f"{rate:g}", "--seconds", f"{seconds:g}"]
    if not faulted:
        cmd.append("--no-fault")
    cpu0 = gateway.cpu_s()
    proc = spawn(cmd, CLIENT_CPU, capture=True)
    try:
        out, _ = proc.communicate(timeout=seconds + 120)
    finally:
        stop(proc)
    result: dict[str, Any] = json.loads(out)
    cpu = gateway.cpu_s() - cpu0  # tells a gateway that worked harder from a host that stalled it
    result["gateway_cpu_s"] = round(cpu, 2)
    result["gateway_cpu_ms_per_req"] = round(cpu * 1000 / result["requests"], 3) if result["requests"] else None
    return result


def failover_run(gateway: Target, fake_port: int, *, rate: float, seconds: float) -> dict[str, Any]:
    """The baseline first (the group healthy), then the failover run: after it, deployment
    a's circuit is open for its cooldown and would skew a baseline."""
    settle(gateway)
    baseline = failover_load(gateway, fake_port, rate=rate, seconds=seconds, faulted=False)
    settle(gateway)
    run = failover_load(gateway, fake_port, rate=rate, seconds=seconds, faulted=True)
    return failover_summary(baseline, run)


def failover_summary(baseline: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """What issue 16 asks of the failover run: its client-visible errors (target 0) and
    the latency it added over the healthy baseline of the same length and rate, for the
    whole run and for each half (a flaky, a dead) against the whole baseline."""
    def added(latency: dict[str, Any]) -> dict[str, float | None]:
        return {q: _minus(latency.get(q), baseline["latency_ms"].get(q)) for q in ("p50", "p99")}

    return {
        "model": run.get("model"), "rate": run.get("rate"), "seconds": run.get("seconds"),
        "errors": run["errors"], "requests": run["requests"], "error_rate": run["error_rate"],
        "added_latency_ms": added(run["latency_ms"]),
        "added_latency_ms_by_phase": {phase: added(half["latency_ms"]) for phase, half in run["phases"].items()},
        "baseline": baseline, "failover": run,
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def _cpu_slices(run: dict[str, Any]) -> list[float | None]:
    """CPU ms per request of each slice of a run (the run itself when it was not sliced)."""
    if "slices" in run:
        return [s.get("cpu_ms_per_req") for s in run["slices"]]
    return [run.get("target_cpu_ms_per_req")]


def routing_cpu(tests: dict[str, dict[str, Any]], one: str = "gateway", three: str = THREE) -> dict[str, Any]:
    """Gateway CPU per request on MODEL (one deployment) and THREE_MODEL (three), same
    process, same run: per test, each side's median slice and the median of the per-round
    differences (three minus one; a round's two slices ran back to back, so the host's
    drift cancels). The figure judged is open500's: the most requests per slice, so the
    background work (health sync, directory) weighs least on it."""
    per_test: dict[str, Any] = {}
    for test in ("single", "open500", "stream"):
        a, b = tests.get(one, {}).get(test), tests.get(three, {}).get(test)
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        ones, threes = _cpu_slices(a), _cpu_slices(b)
        paired = [round(t - o, 4) for o, t in zip(ones, threes, strict=False) if o is not None and t is not None]
        per_test[test] = {"one_ms": _median([v for v in ones if v is not None]),
                          "three_ms": _median([v for v in threes if v is not None]),
                          "paired_differences_ms": paired, "difference_ms": _median(paired)}
    headline = per_test.get("open500", {}).get("difference_ms")
    return {"budget_ms": ROUTING_BUDGET_MS, "judged_test": "open500", "routing_cpu_ms_per_request": headline,
            "met": headline is not None and headline <= ROUTING_BUDGET_MS, "tests": per_test}


# ---------------------------------------------------------------- LiteLLM

def litellm_target(port: int, fake_port: int, workdir: Path, logdir: Path) -> Target:
    """LiteLLM's proxy in its own venv (installed from PyPI on first use), one worker,
    master key, the fake provider as an OpenAI-compatible model."""
    venv = workdir / "litellm-venv"
    litellm = venv / "bin" / "litellm"
    if not litellm.exists():
        print("installing litellm[proxy] into", venv, flush=True)
        base = os.environ.get("BENCH_PYTHON", "python3.11")
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        with open(logdir / "litellm-install.log", "wb") as log:
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True, stdout=log,
                           stderr=subprocess.STDOUT)
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{fake_port}/v1\n"
        "      api_key: sk-fake\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
    )
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "true",
           "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)  # no virtual keys: the master key only, no database
    command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    return Target("litellm", port, LITELLM_KEY, command, env=env)


def litellm_version(workdir: Path) -> str | None:
    pip = workdir / "litellm-venv" / "bin" / "pip"
    if not pip.exists():
        return None
    out = subprocess.run([str(pip), "show", "litellm"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")), None)


# ---------------------------------------------------------------- report

def _q(run: dict[str, Any] | None, q: str, section: str = "latency_ms") -> float | None:
    return None if run is None else run.get(section, {}).get(q)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def overheads(report: dict[str, Any]) -> None:
    """Target minus direct, for each test that has both."""
    direct = report["tests"].get("direct", {})
    for name, tests in report["tests"].items():
        if name == "direct":
            continue
        for test, run in tests.items():
            base = direct.get(test)
            if not isinstance(run, dict) or base is None or "latency_ms" not in run:
                continue
            section = "ttfb_ms" if run.get("stream") else "latency_ms"
            run["overhead_ms"] = {q: _minus(_q(run, q, section), _q(base, q, section)) for q in ("p50", "p90", "p99")}


def _fmt(v: Any, width: int, digits: int = 1) -> str:
    if v is None:
        return f"{'-':>{width}}"
    if isinstance(v, float):
        return f"{v:>{width}.{digits}f}"
    return f"{v!s:>{width}}"


def print_table(report: dict[str, Any]) -> None:
    tests = report["tests"]
    names = [n for n in ("direct", AGAIN, "gateway", THREE, "bare", "litellm") if n in tests]
    print("\nlatency in ms; overhead = target minus direct in the same run (TTFB for streams)")
    print(f"{'target':12} {'test':8} {'req/s':>8} {'ok':>7} {'err':>5} {'p50':>7} {'p90':>7} {'p99':>8} {'max':>8} "
          f"{'+p50':>6} {'+p99':>7} {'cpu s':>6} {'cpu ms/req':>10} {'peak RSS MB':>11}")
    for test in ("single", "open500", "stream", "slow"):
        for name in names:
            run = tests[name].get(test)
            if not isinstance(run, dict) or "latency_ms" not in run:
                continue
            section = "ttfb_ms" if run.get("stream") else "latency_ms"
            lat = run[section]
            over = run.get("overhead_ms", {})
            print(f"{name:12} {test:8} {_fmt(run['rps'], 8)} {run['ok']:>7} {run['errors']:>5} {_fmt(lat['p50'], 7)} "
                  f"{_fmt(lat['p90'], 7)} {_fmt(lat['p99'], 8)} {_fmt(lat['max'], 8)} {_fmt(over.get('p50'), 6, 2)} "
                  f"{_fmt(over.get('p99'), 7, 2)} {_fmt(run.get('target_cpu_s'), 6, 2)} "
                  f"{_fmt(run.get('target_cpu_ms_per_req'), 10, 3)} {_fmt(run.get('peak_rss_mb'), 11)}")
    print(f"\n{'target':8} {'max sustainable req/s':>22} (p99 <= {report['setup']['p99_limit_ms']:.0f} ms, no errors)")
    for name in names:
        lad = tests[name].get("ladder")
        if isinstance(lad, dict):
            print(f"{name:8} {lad['max_sustainable_rps']:>22.0f}")
    _print_routing(report)
    ratios = report.get("ratios", {})
    if ratios:
        print("\n" + "; ".join(f"{k} {v}" for k, v in ratios.items()))
    targets = report.get("targets", {})
    if targets:
        print("\ntargets (issues 6 and 16):")
        for name, t in targets.items():
            print(f"  {'MET ' if t['met'] else 'NOT MET'} {name}: {t['measured']} (target {t['target']})")
    steadiness = report.get("host", {}).get("steadiness", {})
    for when, result in steadiness.items():
        print(f"\nhost steadiness {when}: {steadiness_describe(result)}")
    mem = report.get("memory", {})
    if mem:
        print("\nmemory: " + "; ".join(f"{k} {v}" for k, v in mem.items()))


def _print_routing(report: dict[str, Any]) -> None:
    routing = report.get("routing")
    if routing and routing["tests"]:
        print(f"\nrouting: gateway CPU ms per request, {MODEL} (1 deployment) vs {THREE_MODEL} (3, least_busy), "
              "same process, interleaved")
        print(f"  {'test':8} {'1 dep':>7} {'3 dep':>7} {'3 - 1 (median of rounds)':>25}  per round")
        for test, row in routing["tests"].items():
            print(f"  {test:8} {_fmt(row['one_ms'], 7, 3)} {_fmt(row['three_ms'], 7, 3)} "
                  f"{_fmt(row['difference_ms'], 25, 3)}  {row['paired_differences_ms']}")
        print(f"  routing CPU per request ({routing['judged_test']}): {routing['routing_cpu_ms_per_request']} ms, "
              f"budget {routing['budget_ms']} ms")
    fo = report.get("failover")
    if fo:
        print(f"\nfailover: {fo['model']} at {fo['rate']:g} req/s for {fo['seconds']:g} s (a flaky, then dead), "
              "against the same run with the group healthy")
        print(f"  {'run':10} {'requests':>8} {'errors':>6} {'p50':>7} {'p99':>8}  deployments / attempts")
        rows = [("baseline", fo["baseline"]), ("failover", fo["failover"]),
                *((f"  {phase}", half) for phase, half in fo["failover"]["phases"].items())]
        for label, run in rows:
            print(f"  {label:10} {run['requests']:>8} {run['errors']:>6} {_fmt(run['latency_ms']['p50'], 7)} "
                  f"{_fmt(run['latency_ms']['p99'], 8)}  {run['deployments']} / {run['attempts']}")
        added = fo["added_latency_ms"]
        print(f"  client-visible errors {fo['errors']} of {fo['requests']} (target 0); added latency "
              f"p50 {added['p50']} ms, p99 {added['p99']} ms")


def judge(report: dict[str, Any]) -> None:
    """The issue's targets against the figures."""
    tests = report["tests"]
    gw = tests.get("gateway", {})
    out: dict[str, Any] = {}
    o500 = gw.get("open500", {})
    if "overhead_ms" in o500:
        p50, p99 = o500["overhead_ms"]["p50"], o500["overhead_ms"]["p99"]
        out["open500_added_latency"] = {
            "measured": f"+{p50} ms p50, +{p99} ms p99, {o500['errors']} errors", "target": "<= 1 ms p50, <= 5 ms p99, no errors",
            "met": p50 is not None and p99 is not None and p50 <= 1 and p99 <= 5 and o500["errors"] == 0}
    best = {n: (tests.get(n, {}).get("ladder") or {}).get("max_sustainable_rps") for n in ("gateway", "bare", "litellm")}
    ratios: dict[str, Any] = {}
    if best["gateway"] and best["litellm"]:
        ratios["gateway/litellm"] = round(best["gateway"] / best["litellm"], 1)
        out["throughput_vs_litellm"] = {"measured": f"{ratios['gateway/litellm']}x ({best['gateway']:.0f} vs "
                                        f"{best['litellm']:.0f} req/s)", "target": ">= 10x", "met": ratios["gateway/litellm"] >= 10}
    if best["gateway"] and best["bare"]:
        ratios["gateway/bare"] = round(best["gateway"] / best["bare"], 2)
        out["throughput_vs_bare"] = {"measured": f"{ratios['gateway/bare']:.0%} ({best['gateway']:.0f} vs "
                                     f"{best['bare']:.0f} req/s)", "target": ">= 60%", "met": ratios["gateway/bare"] >= 0.6}
    stream = gw.get("stream", {})
    if "overhead_ms" in stream:
        p99 = stream["overhead_ms"]["p99"]
        out["stream_ttfb_200"] = {"measured": f"+{p99} ms p99, {stream['errors']} errors", "target": "<= 5 ms p99",
                                  "met": p99 is not None and p99 <= 5 and stream["errors"] == 0}
    slow = gw.get("slow", {})
    if "overhead_ms" in slow:
        p99 = slow["overhead_ms"]["p99"]
        out["slow_streams_10000"] = {
            "measured": f"{slow['ok']} of {slow['sent']} completed, +{p99} ms TTFB p99, {slow['errors']} errors",
            "target": "<= 100 ms TTFB p99, none dropped",
            "met": p99 is not None and p99 <= 100 and slow["errors"] == 0 and slow["ok"] == slow["sent"]}
    routing = report.get("routing") or {}
    if routing.get("routing_cpu_ms_per_request") is not None:
        out["routing_cpu_3_deployments"] = {
            "measured": f"+{routing['routing_cpu_ms_per_request']} ms CPU per request ({routing['judged_test']}, "
                        f"{THREE_MODEL} minus {MODEL})",
            "target": f"<= {ROUTING_BUDGET_MS} ms", "met": routing["met"]}
    fo = report.get("failover")
    if fo:
        out["failover_errors"] = {
            "measured": f"{fo['errors']} of {fo['requests']} requests failed; added p50 "
                        f"{fo['added_latency_ms']['p50']} ms, p99 {fo['added_latency_ms']['p99']} ms",
            "target": "0 client-visible errors", "met": fo["errors"] == 0}
    report["ratios"] = ratios
    report["targets"] = out


# ---------------------------------------------------------------- smoke checks

def usage_recorded(before: int) -> int:
    """Usage events the gateway queued since `before` (the stream's length then)."""
    import redis

    from gateway.hotpath.redis_keys import USAGE_STREAM

    return int(redis.Redis.from_url(os.environ["REDIS_URL"]).xlen(USAGE_STREAM)) - before


def usage_rows() -> int:
    """Usage rows stored in the demo workspace."""
    from django_tenants.utils import schema_context

    from analytics.models import UsageEvent
    from tenants.models import Workspace

    with schema_context(Workspace.objects.get(slug="demo").schema_name):
        return int(UsageEvent.objects.count())


def usage_flush_count() -> int:
    """Persist the queued usage events as the Celery task would, and count the demo's rows."""
    from analytics.tasks import usage_flush

    usage_flush()
    return usage_rows()


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the single, open500 and stream runs")
    parser.add_argument("--ladder-seconds", type=float, default=6.0, help="length of each ladder step")
    parser.add_argument("--chunk-ms", type=float, default=50.0, help="gap between streamed chunks")
    parser.add_argument("--stream-concurrency", type=int, default=200)
    parser.add_argument("--slow-streams", type=int, default=10_000)
    parser.add_argument("--slow-ramp", type=float, default=20.0, help="open the slow streams over this many seconds")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--skip-slow-streams", action="store_true")
    parser.add_argument("--skip-ladder", action="store_true")
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--failover-seconds", type=float, default=20.0,
                        help="length of the failover run and of its healthy baseline (at most 120)")
    parser.add_argument("--failover-rate", type=float, default=200.0, help="requests/s of the failover run")
    parser.add_argument("--smoke", action="store_true",
                        help="a short correctness run (direct, gateway, bare; a few hundred requests): every request "
                             "answered and its usage recorded; exits 1 otherwise. No timing is judged.")
    parser.add_argument("--steadiness-seconds", type=float, default=10.0,
                        help="length of the host steadiness probe run before and after (benchmarks/steadiness.py)")
    parser.add_argument("--wait-quiet", type=float, default=120, help="wait up to this long for an idle host first")
    parser.add_argument("--port", type=int, default=18300, help="first of the ports used (127.0.0.1)")
    parser.add_argument("--keep-db", action="store_true", help="leave the embedded PostgreSQL and Redis running")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON report (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args()
    if not 0 < args.failover_seconds <= 120 or not 0 < args.failover_rate <= 1000:
        parser.error("--failover-seconds must be in (0, 120] and --failover-rate in (0, 1000]")
    if len(os.sched_getaffinity(0)) < 2:
        print("needs at least 2 CPUs (targets on CPU 0, fake provider and load on CPU 1)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    global KEEP_USAGE
    KEEP_USAGE = args.smoke
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it: 10,000 streams need the fds
    out_path = args.out or (Path(os.environ["AIPROXY_DATA_DIR"]) / "smoke.json" if args.smoke else RESULTS)
    gw_port, bare_port, litellm_port, fake_port = args.port, args.port + 1, args.port + 2, args.port + 3
    os.environ["FAKE_PROVIDER_URL"] = f"http://127.0.0.1:{fake_port}"
    workdir = Path(os.environ["AIPROXY_DATA_DIR"])
    logdir = workdir / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    upstream_ms = 50.0
    p99_limit = 2 * upstream_ms
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": args.smoke,
        "host": {"cpu": cpu_model(), "cpus": os.cpu_count(), "open_files_limit": hard},
        "versions": versions(("uvicorn", "uvloop", "httptools", "redis", "hiredis", "orjson", "django")),
        "setup": {"upstream_latency_ms": upstream_ms, "stream": f"50 ms to the first token, then 20 chunks "
                  f"{args.chunk_ms:g} ms apart", "p99_limit_ms": p99_limit, "targets_cpu": SERVER_CPU,
                  "fake_provider_load_and_redis_cpu": CLIENT_CPU, "seconds_per_run": args.seconds,
                  "ladder_seconds_per_step": args.ladder_seconds},
        "tests": {},
    }
    try:
        key, notes = setup(gw_port, everything_on=True)
        routing_groups_ensure()
        report["setup"]["gateway_workspace"] = notes
        report["host"]["waited_for_quiet_s"] = 0.0 if args.smoke else wait_quiet(args.wait_quiet)
        # how steadily the VM's CPUs run, before and after: slow episodes here set the p99s
        steady_s = 1.0 if args.smoke else args.steadiness_seconds
        report["host"]["steadiness"] = {"before": steadiness_probe((SERVER_CPU, CLIENT_CPU), steady_s)}
        print("host steadiness before: " + steadiness_describe(report["host"]["steadiness"]["before"]), flush=True)
        fake_env = {**os.environ, "FAKE_LATENCY_MS": str(upstream_ms), "FAKE_WORDS": "20"}
        fake_cmd = [PY, "-m", "uvicorn", "gateway.fake_provider:app", "--host", "127.0.0.1", "--port", str(fake_port),
                    *SERVER_FLAGS]
        fake = spawn(fake_cmd, CLIENT_CPU, logdir / "fake-provider.log", env=fake_env)
        wait_http(f"http://127.0.0.1:{fake_port}/health", proc=fake)
        embedder = spawn(procfile_command("embedder", 0), CLIENT_CPU, logdir / "embedder.log")
        gw_env = {**os.environ, "WEB_CONCURRENCY": "1"}
        gateway = Target("gateway", gw_port, key, procfile_command("web", gw_port, gw_env), env=gw_env)
        targets = [
            Target("direct", fake_port, None, None),
            gateway,
            Target(THREE, gw_port, key, None, model=THREE_MODEL, host=gateway),  # the routing figure
        ]
        report["setup"]["gateway_command"] = " ".join(targets[1].command or [])
        if not args.skip_bare:
            bare_env = {**os.environ, "BARE_PROXY_UPSTREAM": f"http://127.0.0.1:{fake_port}"}
            targets.append(Target("bare", bare_port, None, [PY, "-m", "uvicorn", "benchmarks.bare_proxy:app", "--host",
                                                            "127.0.0.1", "--port", str(bare_port), *SERVER_FLAGS],
                                  env=bare_env))
        if not args.skip_litellm and not args.smoke:
            targets.append(litellm_target(litellm_port, fake_port, workdir, logdir))
            report["versions"]["litellm"] = litellm_version(workdir) or "?"
        usage_before = usage_recorded(0)
        rows_before = usage_rows() if args.smoke else 0
        gateway_sent = 0
        if not args.smoke:  # an A/A control: the provider directly again, measured like any target
            targets.insert(1, Target(AGAIN, fake_port, None, None))
        stream_s = (50 + 20 * args.chunk_ms) / 1000
        # the streams start spread over one stream's length: 200 clients arriving together
        # would stay in lock-step waves for the whole run
        tests = {"single": {"concurrency": 1}, "open500": {"rate": 500, "grace": 20},
                 "stream": {"concurrency": args.stream_concurrency, "stream": True, "ramp": stream_s,
                            "chunk_ms": args.chunk_ms}}
        for target in targets:
            results: dict[str, Any] = report["tests"].setdefault(target.name, {})
            results["startup_s"] = target.start(logdir)
            results["rss_after_start_mb"] = target.rss()
            print(f"\n{target.name}: started in {results['startup_s']} s", flush=True)
            if args.smoke:
                results["single"] = measured(target, concurrency=4, seconds=30, requests=100)
                results["open500"] = measured(target, rate=100, seconds=1)
                results["stream"] = measured(target, concurrency=8, seconds=30, requests=40, stream=True,
                                             body=body_for(True, chunk_ms=5, model=target.model))
                _print_tests(target.name, results)
            else:
                # warm: directory, pools, code paths (LiteLLM gently: a backlog would spill into the runs)
                warm = 2 if target.name == "litellm" else 16
                load(target, concurrency=warm, seconds=2)
                load(target, concurrency=warm, seconds=2, stream=True,
                     body=body_for(True, chunk_ms=args.chunk_ms, model=target.model))
            if target.name == "litellm":  # 50-100x slower: measured alone, then stopped
                for test, kwargs in tests.items():
                    settle(target)
                    results[test] = measured(target, seconds=args.seconds, **kwargs)
                _print_tests(target.name, results)
                if not args.skip_ladder:
                    settle(target)
                    results["ladder"] = ladders([target], p99_limit, args.ladder_seconds)[target.name]
            if target.name == "litellm":
                results["peak_rss_mb"] = target.rss().get("max_process")
                results["rss_mb"] = target.rss()
                target.stop()
        climbing = [t for t in targets if t.name not in ("litellm", AGAIN, THREE)]
        if not args.smoke:
            together = [t for t in targets if t.name != "litellm"]
            rounds = ROUNDS
            print(f"\nsingle, open500, stream: {rounds} rounds of {args.seconds / rounds:g} s, each test on each "
                  "target in turn", flush=True)
            for name, by_test in interleaved(together, {t: {**kw, "seconds": args.seconds / rounds}
                                                        for t, kw in tests.items()}, rounds).items():
                report["tests"][name].update(by_test)
                _print_tests(name, by_test)
        gateway_sent = sum(report["tests"][name][t]["requests"] + report["tests"][name][t]["errors"]
                           for name in ("gateway", THREE) if name in report["tests"]
                           for t in ("single", "open500", "stream"))
        if not args.smoke and not args.skip_ladder:
            print("\nladder: every rate on each target in turn", flush=True)
            for name, result in ladders(climbing, p99_limit, args.ladder_seconds).items():
                report["tests"][name]["ladder"] = result
        report["routing"] = routing_cpu(report["tests"])
        if not args.skip_failover:
            rate, seconds = (50.0, 2.0) if args.smoke else (args.failover_rate, args.failover_seconds)
            print(f"\nfailover: {FAILOVER_MODEL} at {rate:g} req/s for {seconds:g} s, healthy then faulted", flush=True)
            report["failover"] = failover_run(gateway, fake_port, rate=rate, seconds=seconds)
            gateway_sent += report["failover"]["baseline"]["requests"] + report["failover"]["requests"]
        for target in targets:  # the smoke run's too: the failover needed its gateway
            if target.name != "litellm" and target.host is None:
                report["tests"][target.name]["peak_rss_mb"] = target.rss().get("max_process")
                report["tests"][target.name]["rss_mb"] = target.rss()
                target.stop()
        if not args.smoke and not args.skip_slow_streams:
            slow_streams(report, targets, key, gw_port, args, logdir)
        if not args.smoke:
            report["host"]["steadiness"]["after"] = steadiness_probe((SERVER_CPU, CLIENT_CPU), steady_s)
        report["memory"] = {
            "gateway worker peak RSS MB": report["tests"]["gateway"].get("peak_rss_mb"),
            "embedding service RSS MB (one per host)": peak_rss_mb(embedder.pid).get("max_process"),
        }
        overheads(report)
        judge(report)
        if args.smoke:
            report["smoke_checks"] = smoke_checks(report, usage_before, rows_before, gateway_sent)
        report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        print_table(report)
        print(f"\nwrote {out_path}")
        if args.smoke:
            failed = [name for name, check in report["smoke_checks"].items() if not check["ok"]]
            for name, check in report["smoke_checks"].items():
                print(f"  {'ok    ' if check['ok'] else 'FAILED'} {name}: {check['detail']}")
            return 1 if failed else 0
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


def slow_streams(report: dict[str, Any], targets: list[Target], key: str, gw_port: int, args: argparse.Namespace,
                 logdir: Path) -> None:
    """10,000 slow streams held open at once: straight at the provider, then through the
    gateway with two workers (one per core; each worker holds two sockets a stream), then
    through the bare proxy with two workers: what Python's ceiling makes of the same load."""
    direct = targets[0]
    env = {**os.environ, "WEB_CONCURRENCY": "2"}
    gateway = Target("gateway", gw_port, key, procfile_command("web", gw_port, env), env=env, cpu=None)
    runs = [direct, gateway]
    bare = next((t for t in targets if t.name == "bare"), None)
    if bare is not None and bare.command is not None:
        runs.append(Target("bare", bare.port, None, [*bare.command, "--workers", "2"], env=bare.env, cpu=None))
    body = body_for(True, slow=True)
    n = args.slow_streams
    seconds = args.slow_ramp + 5  # every worker starts within the ramp and sends one request
    for target in runs:
        if target.command is not None:
            target.start(logdir)
        before = fake_stats(int(direct.port))
        run = measured(target, concurrency=n, requests=n, seconds=seconds, stream=True, body=body, ramp=args.slow_ramp,
                       grace=60.0, cpu=None)
        after = fake_stats(int(direct.port))
        run["sent"] = n
        run["upstream_streams_completed"] = after["streams_completed"] - before["streams_completed"]
        run["upstream_streams_abandoned"] = after["streams_abandoned"] - before["streams_abandoned"]
        if target.proc is not None:
            run["workers"] = 2
            run["rss_mb"] = target.rss()
            run["peak_rss_mb"] = run["rss_mb"].get("max_process")
        report["tests"][target.name]["slow"] = run
        print(f"  {target.name:8} slow     {run['ok']} of {n} streams completed, {run['errors']} errors "
              f"{run['error_kinds'] or ''}, TTFB p99 {run['ttfb_ms']['p99']} ms", flush=True)
        target.stop()


def smoke_checks(report: dict[str, Any], usage_before: int, rows_before: int, gateway_sent: int) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for name, tests in report["tests"].items():
        runs = {t: r for t, r in tests.items() if isinstance(r, dict) and "latency_ms" in r}
        sent = {t: r["requests"] + r["errors"] for t, r in runs.items()}
        answered = {t: r["ok"] for t, r in runs.items()}
        checks[f"{name}: every request answered"] = {
            "ok": all(r["errors"] == 0 and r["ok"] == r["requests"] and r["ok"] > 0 for r in runs.values()),
            "detail": f"sent {sent}, answered 2xx {answered}"}
    fo = report.get("failover")
    if fo:
        checks["gateway: the failover run answered every request"] = {
            "ok": fo["errors"] == 0 and fo["requests"] > 0 and fo["baseline"]["errors"] == 0,
            "detail": f"{fo['errors']} of {fo['requests']} failed over {fo['failover']['deployments']}, "
                      f"baseline {fo['baseline']['errors']} of {fo['baseline']['requests']}"}
    recorded = usage_recorded(usage_before)
    checks["gateway: a usage event per request"] = {
        "ok": recorded == gateway_sent and gateway_sent > 0,
        "detail": f"{recorded} usage events queued for {gateway_sent} gateway requests"}
    rows = usage_flush_count() - rows_before
    checks["gateway: usage persisted to PostgreSQL"] = {
        "ok": rows == gateway_sent and gateway_sent > 0,
        "detail": f"{rows} new usage rows in the demo workspace after the flush task, {gateway_sent} requests sent"}
    return checks


if __name__ == "__main__":
    sys.exit(main())
