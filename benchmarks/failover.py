"""Failover under load: a model group of two deployments on the fake provider, the first
made flaky and then dead mid-run, at a steady open-loop rate through a running gateway.

    source .aiproxy/demo.env
    .venv/bin/python benchmarks/failover.py                  # 200 requests/s for 20 s
    .venv/bin/python benchmarks/failover.py --url http://127.0.0.1:8000/v1 --key sk-... \\
        --fake-url http://127.0.0.1:8100 --model demo-failover-bench --rate 200 --seconds 20

The group (`--model`, default demo-failover-bench) must have two deployments on the fake
provider, the first with `[[fake:fault=bench-a]]` in its upstream name, so it obeys the
named fault bench-a (gateway/fake_provider/faults.py). The run sets that fault through the
fake provider's control endpoint:

  first half   {"status": 503, "rate": 0.3}   deployment A fails 30 % of what it gets
  second half  {"status": 503}                deployment A is dead
  end          cleared                        (also on Ctrl-C or an error)

With `--no-fault` no fault is set: the same run on a healthy group, the baseline the
failover's latency is compared with (benchmarks/bench.py runs both).

Requests leave on a fixed schedule whatever the answers do (open loop), and a request's
latency counts from its scheduled time, so a gateway that falls behind is charged for
the wait. Each request has a unique prompt and `x-aiproxy-cache: no-cache`, so none is
answered from a cache, and is abandoned after `--timeout` seconds. The run is bounded:
rate x seconds requests, at most MAX_RATE a second for at most MAX_SECONDS.

Prints a JSON report, for the whole run and for each half: requests, client-visible
errors (an HTTP error status or no answer) and their rate, latency p50/p99/max of the
answered requests, and how the answers split over the `x-aiproxy-deployment` and
`x-aiproxy-attempts` response headers ("(none)" when the gateway sent no such header,
"(no response)" when no answer came).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import percentile  # noqa: E402

MAX_RATE = 2_000.0
MAX_SECONDS = 600.0
MAX_CONNECTIONS = 1_000  # past this many open at once, requests queue (and their wait counts)
FAULT = "bench-a"
FLAKY = {"status": 503, "rate": 0.3}
DEAD = {"status": 503}
PHASES = ("flaky", "dead")
NO_HEADER = "(none)"
NO_RESPONSE = "(no response)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client saw of one request."""

    offset: float  # scheduled send time, seconds from the start of the run
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    latency: float | None  # seconds from the scheduled time to the whole answer, when one came
    error: str | None  # why the client saw a failure ("HTTP 503", "ReadError", "timeout"); None if answered
    deployment: str  # the x-aiproxy-deployment header
    attempts: str  # the x-aiproxy-attempts header


def schedule(rate: float, seconds: float) -> list[float]:
    """Send times (seconds from the start) of `rate` evenly spaced requests a second over
    `seconds`: rate x seconds of them, all before `seconds`."""
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"the rate must be above 0 and at most {MAX_RATE:g} requests/s")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"the run must last above 0 and at most {MAX_SECONDS:g} s")
    count = int(rate * seconds + 1e-9)  # 200 x 0.1 is 20, not 19.999...
    return [n / rate for n in range(count)]


def phase_of(offset: float, seconds: float) -> str:
    """The half of the run a request was scheduled in: A flaky, then A dead."""
    return PHASES[0] if offset < seconds / 2 else PHASES[1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _split(values: list[str]) -> dict[str, int]:
    """Counts per value, numbers in numeric order then the rest ((none), (no response))."""
    counts = Counter(values)
    return {
        key: counts[key] for key in sorted(counts, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    }


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Requests, errors, latency of the answered ones and the header splits."""
    answered = sorted(o.latency for o in outcomes if o.error is None and o.latency is not None)
    errors = Counter(o.error for o in outcomes if o.error is not None)
    failed = sum(errors.values())
    return {
        "requests": len(outcomes),
        "answered": len(answered),
        "errors": failed,
        "error_rate": round(failed / len(outcomes), 4) if outcomes else None,
        "errors_by_kind": dict(errors.most_common()),
        "latency_ms": {
            "p50": _ms(percentile(answered, 50)),
            "p99": _ms(percentile(answered, 99)),
            "max": _ms(answered[-1] if answered else None),
        },
        "deployments": _split([o.deployment for o in outcomes]),
        "attempts": _split([o.attempts for o in outcomes]),
    }


def report_build(
    outcomes: Sequence[Outcome],
    *,
    url: str,
    model: str,
    rate: float,
    seconds: float,
    elapsed: float,
    faulted: bool = True,
) -> dict[str, Any]:
    """The run's JSON report: the whole run, then each half with the fault it ran under
    (None in a run without the fault)."""
    faults = dict(zip(PHASES, (FLAKY, DEAD) if faulted else (None, None), strict=True))
    halves = {
        phase: {"fault": faults[phase], **summary([o for o in outcomes if phase_of(o.offset, seconds) == phase])}
        for phase in PHASES
    }
    return {
        "url": url,
        "model": model,
        "rate": rate,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 2),
        **summary(outcomes),
        "phases": halves,
    }


def outcome_of(offset: float, response: httpx.Response, latency: float) -> Outcome:
    error = None if response.status_code < 400 else f"HTTP {response.status_code}"
    return Outcome(
        offset,
        response.status_code,
        latency,
        error,
        response.headers.get("x-aiproxy-deployment", NO_HEADER),
        response.headers.get("x-aiproxy-attempts", NO_HEADER),
    )


async def request_send(
    client: httpx.AsyncClient, *, model: str, offset: float, start: float, timeout: float
) -> Outcome:
    """One chat request, sent now (its scheduled time), given up on after `timeout` seconds."""
    body = {
        "model": model,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": f"failover run {uuid.uuid4().hex}: say something"}],
    }
    try:
        async with asyncio.timeout(timeout):
            response = await client.post("/chat/completions", json=body)
    except TimeoutError:
        return Outcome(offset, None, None, "timeout", NO_RESPONSE, NO_RESPONSE)
    except httpx.HTTPError as exc:
        return Outcome(offset, None, None, type(exc).__name__, NO_RESPONSE, NO_RESPONSE)
    return outcome_of(offset, response, time.perf_counter() - (start + offset))


async def fault_set(control: httpx.AsyncClient, name: str, fault: dict[str, Any] | None) -> None:
    """Set the named fault on the fake provider (None clears it)."""
    path = f"/control/faults/{name}"
    response = await (control.delete(path) if fault is None else control.put(path, json=fault))
    response.raise_for_status()


async def load_run(
    *, url: str, key: str, model: str, fake_url: str, fault: str | None, rate: float, seconds: float, timeout: float
) -> list[Outcome]:
    """The run: fault flaky, the first half of the schedule, fault dead, the second half,
    every answer awaited, fault cleared. With `fault` None, the same schedule and nothing
    set: the baseline."""
    offsets = schedule(rate, seconds)
    headers = {"authorization": f"Bearer {key}", "x-aiproxy-cache": "no-cache"}
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=256)
    async with (
        httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, limits=limits, timeout=timeout) as client,
        httpx.AsyncClient(base_url=fake_url.rstrip("/"), timeout=10) as control,
    ):
        if fault is not None:
            await fault_set(control, fault, FLAKY)
        try:
            tasks: list[asyncio.Task[Outcome]] = []
            dead = False
            start = time.perf_counter()
            for offset in offsets:
                if fault is not None and not dead and phase_of(offset, seconds) == PHASES[1]:
                    await fault_set(control, fault, DEAD)
                    dead = True
                await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
                tasks.append(
                    asyncio.create_task(request_send(client, model=model, offset=offset, start=start, timeout=timeout))
                )
            return list(await asyncio.gather(*tasks))
        finally:
            if fault is not None:
                await fault_set(control, fault, None)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url",
        default=os.environ.get("AIPROXY_BASE_URL", "http://127.0.0.1:8000/v1"),
        help="the gateway's OpenAI base URL (default: $AIPROXY_BASE_URL)",
    )
    parser.add_argument(
        "--key", default=os.environ.get("AIPROXY_API_KEY"), help="an API key of the gateway (default: $AIPROXY_API_KEY)"
    )
    parser.add_argument("--model", default="demo-failover-bench", help="the model group's public name")
    parser.add_argument(
        "--fake-url",
        default=os.environ.get("FAKE_PROVIDER_URL", "http://127.0.0.1:8100"),
        help="the fake provider, for its fault control (default: $FAKE_PROVIDER_URL)",
    )
    parser.add_argument("--fault", default=FAULT, help="the named fault deployment A obeys")
    parser.add_argument("--no-fault", action="store_true", help="set no fault: the healthy baseline run")
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long requests are sent")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request is given up")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("an API key is needed: --key, or AIPROXY_API_KEY (source .aiproxy/demo.env)")
    try:
        schedule(args.rate, args.seconds)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.timeout <= 120:
        parser.error("the timeout must be above 0 and at most 120 s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    began = time.perf_counter()
    outcomes = asyncio.run(
        load_run(
            url=args.url,
            key=args.key,
            model=args.model,
            fake_url=args.fake_url,
            fault=None if args.no_fault else args.fault,
            rate=args.rate,
            seconds=args.seconds,
            timeout=args.timeout,
        )
    )
    report = report_build(
        outcomes,
        url=args.url,
        model=args.model,
        rate=args.rate,
        seconds=args.seconds,
        elapsed=time.perf_counter() - began,
        faulted=not args.no_fault,
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
