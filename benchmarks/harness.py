"""What the benchmarks share: child processes pinned to CPUs and stopped on exit, CPU and
memory readings from /proc, host-noise checks, and the setup of the embedded databases
with the demo workspace (benchmarks/bench.py, benchmarks/asgi_servers.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
SERVER_CPU = 0
CLIENT_CPU = 1


_children: list[subprocess.Popen[bytes]] = []


def spawn(cmd: list[str], cpu: int | None, log: Path | None = None, env: dict[str, str] | None = None,
          capture: bool = False) -> subprocess.Popen[bytes]:
    """Start a child in its own session (so its whole group can be stopped), pinned to `cpu`;
    stdout+stderr go to `log`, or stdout is piped back with `capture`."""
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    sink: Any = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or os.environ.copy(),
                            stdout=subprocess.PIPE if capture else sink,
                            stderr=sink if capture else subprocess.STDOUT, start_new_session=True)
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # the group may outlive its leader (granian workers)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc in _children:
        _children.remove(proc)


def stop_all_children() -> None:
    for proc in list(reversed(_children)):
        stop(proc)


def on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 60,
              proc: subprocess.Popen[bytes] | None = None) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its descendants (threads included), from /proc/<pid>/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # fields 14, 15 of stat
    return total


def peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) of each process in the tree: the largest and the sum."""
    peaks = []
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return {"max_process": round(max(peaks, default=0), 1), "tree_total": round(sum(peaks), 1)}


def cpu_ticks() -> dict[int, tuple[int, int, int]]:
    """(busy, steal, total) jiffies of each CPU, from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in vals[:8])
            out[int(name[3:])] = (user + nice + system + irq + softirq, steal,
                                  user + nice + system + idle + iowait + irq + softirq + steal)
    return out


def cpu_busy(before: dict[int, tuple[int, int, int]], after: dict[int, tuple[int, int, int]]) -> dict[str, float]:
    """Busy and stolen (hypervisor) fraction of each CPU between two cpu_ticks() readings."""
    out = {}
    for c in sorted(after):
        if c in before:
            total = max(1, after[c][2] - before[c][2])
            out[f"cpu{c}_busy"] = round((after[c][0] - before[c][0]) / total, 3)
            out[f"cpu{c}_steal"] = round((after[c][1] - before[c][1]) / total, 3)
    return out


def wait_quiet(limit_s: float, threshold: float = 0.10) -> float:
    """Wait (at most limit_s) until no CPU is more than `threshold` busy over a 2 s sample,
    so a round does not start in the middle of another job; returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        before = cpu_ticks()
        time.sleep(2)
        busy = cpu_busy(before, cpu_ticks())
        if all(v <= threshold for k, v in busy.items() if k.endswith("_busy")):
            return round(time.monotonic() - t0, 1)
        if time.monotonic() - t0 > limit_s:
            print(f"host still busy after {limit_s:.0f} s ({busy}); measuring anyway", flush=True)
            return round(time.monotonic() - t0, 1)


def fake_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- setup

def setup(gateway_port: int, *, everything_on: bool = False) -> tuple[str, dict[str, Any]]:
    """Migrate, create the demo workspace and return its API key and notes on its policy.

    Default: an unmetered plan, response cache off, no limits (every request goes
    upstream). `everything_on`: what a production workspace runs, with limits and budget
    high enough never to refuse: requests and tokens per minute on the key and the
    workspace, a hard monthly budget on both, a monthly request quota, and the exact
    cache (each benchmark request is unique, so every request is a miss and is stored)."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    os.environ["DATABASE_URL"] = settings.DATABASE_URL
    os.environ["REDIS_URL"] = settings.REDIS_URL
    with contextlib.redirect_stdout(io.StringIO()):  # django-tenants prints each migration regardless
        call_command("migrate_schemas", "--shared", verbosity=0)
        call_command("migrate_schemas", "--tenant", verbosity=0)
        call_command("demo_setup", base_url=f"http://127.0.0.1:{gateway_port}", verbosity=0)

    from decimal import Decimal

    from django_tenants.utils import schema_context

    from gateway.catalog.demo import FAKE_MODELS
    from gateway.catalog.models import Provider

    # a data directory kept from an earlier run has the fake providers at that run's port
    fake_url = settings.FAKE_PROVIDER_URL.rstrip("/")
    for spec in FAKE_MODELS:
        provider = Provider.objects.filter(name=spec.provider_name).first()
        if provider is not None and provider.base_url != fake_url + spec.path:
            provider.base_url = fake_url + spec.path
            provider.save()  # republishes the catalog

    from billing.models import Plan
    from keys.models import ApiKey
    from keys.services import api_key_policy_update
    from tenants.models import Workspace
    from tenants.services import workspace_policy_update

    workspace = Workspace.objects.get(slug="demo")
    notes: dict[str, Any]
    if everything_on:
        plan, _ = Plan.objects.update_or_create(code="bench-metered", defaults={
            "name": "Benchmark (100M requests a month)", "monthly_request_quota": 100_000_000})
        workspace_policy_update(workspace=workspace, plan=plan, cache_enabled=True, cache_semantic=False,
                                rpm_limit=10_000_000, tpm_limit=1_000_000_000, budget_amount=Decimal("1000000"),
                                budget_period="monthly", budget_hard=True)
        with schema_context(workspace.schema_name):
            key = ApiKey.objects.order_by("id").first()
            assert key is not None
            api_key_policy_update(workspace=workspace, key=key, rpm_limit=10_000_000, tpm_limit=1_000_000_000,
                                  budget_amount=Decimal("1000000"), budget_period="monthly", budget_hard=True)
        notes = {"plan": plan.code, "monthly_request_quota": plan.monthly_request_quota, "cache": "exact, every request a miss",
                 "limits": "rpm and tpm on key and workspace, hard monthly budget on key and workspace"}
    else:
        plan, _ = Plan.objects.get_or_create(code="bench-unmetered",
                                             defaults={"name": "Benchmark (unmetered)", "monthly_request_quota": None})
        workspace_policy_update(workspace=workspace, plan=plan, cache_enabled=False, rpm_limit=None, tpm_limit=None,
                                budget_amount=None)
        notes = {"plan": plan.code, "cache_enabled": False}

    from aiproxy_site.embedded import data_dir

    env = dict(line.removeprefix("export ").split("=", 1) for line in (data_dir() / "demo.env").read_text().splitlines()
               if "=" in line)
    # Redis is on the hot path: keep it off the server's CPU
    pidfile = data_dir() / "redis" / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(pidfile.read_text().strip()), {CLIENT_CPU})
            notes["redis_cpu"] = CLIENT_CPU
    return env["AIPROXY_API_KEY"].strip(), notes


def trim_usage_stream() -> None:
    """No Celery worker drains the usage stream during the benchmark; keep Redis small."""
    import redis

    from gateway.hotpath.redis_keys import USAGE_STREAM

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(os.environ["REDIS_URL"]).xtrim(USAGE_STREAM, maxlen=0)


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()




def procfile_command(process: str, port: int, env: dict[str, str] | None = None) -> list[str]:
    """The Procfile's command for `process` (web, embedder, ...) as this venv runs it:
    ${VAR:-default} expanded from `env`, PORT set to `port`, bound to 127.0.0.1, and the
    program taken from this interpreter's venv."""
    import re
    import shlex

    values = dict(env if env is not None else os.environ)
    values["PORT"] = str(port)
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{process}:"))
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m.group(1)) or m.group(2), line.split(":", 1)[1])
    words = shlex.split(text.replace("0.0.0.0", "127.0.0.1"))
    if words[0] == "python":
        return [PY, *words[1:]]
    return [PY, "-m", *words]
