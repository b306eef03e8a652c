"""A small HTTP/1.1 load generator (raw asyncio streams on uvloop), closed or open loop.

Closed loop (default): each of `--concurrency` workers holds one keep-alive connection and
sends the request again and again until `--seconds` have passed or `--requests` have been
sent in total, whichever comes first; `--ramp S` staggers the workers' starts over S
seconds (many long streams). Open loop (`--rate R`): R requests a second on a fixed
schedule for `--seconds`, whatever the answers do, each on an idle keep-alive connection
or a new one; latency counts from the scheduled send time, so a server that falls behind
is charged for the wait (no coordinated omission). Reports throughput, latency
percentiles, errors and, with `--stream`, the time to the first body byte of each (SSE)
response. `{n}` in the body becomes the request's number (unique prompts: cache misses).

    .venv/bin/python benchmarks/loadgen.py --url http://127.0.0.1:8100/v1/chat/completions \\
        --body '{"model": "fake-openai", "messages": [{"role": "user", "content": "hi"}]}' \\
        -H 'Authorization: Bearer sk-...' -c 16 --seconds 10 --json

One process, one core: about 10,000 requests/s against a trivial server, so it is not
the bottleneck for the gateway. Latencies are measured from just before the request is
written to the last byte of the response (keep-alive; connection set-up is not counted
except after an error, when the worker reconnects).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit


class HTTPError(Exception):
    pass


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not values:
        return None
    rank = max(0, min(len(values) - 1, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[rank]


def summary_ms(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        v = percentile(values, q)
        out[name] = None if v is None else round(v * 1000, 2)
    out["max"] = round(values[-1] * 1000, 2) if values else None
    out["mean"] = round(sum(values) / len(values) * 1000, 2) if values else None
    return out


class Request:
    """The request's bytes; with `{n}` in the body, a new body (and length) per request."""

    def __init__(self, url: str, body: bytes, headers: list[str], method: str = "POST") -> None:
        self.host, self.port, self.fixed = build_request(url, body, headers, method)
        self.numbered = b"{n}" in body
        if self.numbered:
            _, _, head = build_request(url, b"", headers, method)
            self.head = head[:-2]  # without the blank line: the length comes per request
            self.body = body

    def bytes(self, n: int) -> bytes:
        if not self.numbered:
            return self.fixed
        body = self.body.replace(b"{n}", str(n).encode())
        return self.head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def build_request(url: str, body: bytes, headers: list[str], method: str = "POST") -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive",
             "Accept: */*"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += headers
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader, t0: float, ttfb: list[float] | None) -> tuple[int, bool]:
    """Read one response; returns (status, keep_alive). Appends time-to-first-body-byte."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, rest = head.partition(b"\r\n")
    try:
        status = int(status_line.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise HTTPError(f"bad status line {status_line[:60]!r}") from None
    length = None
    chunked = False
    keep_alive = not status_line.startswith(b"HTTP/1.0")
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection":
            v = value.strip().lower()
            keep_alive = v == b"keep-alive" or (keep_alive and v != b"close")
    first = True
    if chunked:
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise HTTPError("connection closed mid-body")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers, then the empty line
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            await reader.readexactly(size + 2)
            if first and ttfb is not None:
                ttfb.append(time.perf_counter() - t0)
                first = False
    elif length is not None:
        if length:
            await reader.readexactly(length)
            if ttfb is not None:
                ttfb.append(time.perf_counter() - t0)
    else:  # body until close
        data = await reader.read()
        if data and ttfb is not None:
            ttfb.append(time.perf_counter() - t0)
        keep_alive = False
    return status, keep_alive


async def run(url: str, body: bytes, headers: list[str], concurrency: int, seconds: float, requests: int | None,
              stream: bool, grace: float = 30.0, method: str = "POST", ramp: float = 0.0) -> dict[str, Any]:
    req = Request(url, body, headers, method)
    host, port = req.host, req.port
    latencies: list[float] = []
    ttfb: list[float] | None = [] if stream else None
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    budget = [requests if requests is not None else 1 << 62]
    counter = [0]
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(index: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        if ramp:
            await asyncio.sleep(ramp * index / concurrency)
        try:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                if writer is None or reader is None:
                    try:
                        reader, writer = await asyncio.open_connection(host, port)
                    except OSError as exc:
                        errors[f"connect: {type(exc).__name__}"] += 1
                        await asyncio.sleep(0.05)
                        continue
                counter[0] += 1
                data = req.bytes(counter[0])
                t0 = time.perf_counter()
                try:
                    writer.write(data)
                    status, keep_alive = await read_response(reader, t0, ttfb)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HTTPError, ValueError) as exc:
                    errors[type(exc).__name__] += 1
                    writer.close()
                    reader = writer = None
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
                if status >= 400:
                    errors[f"HTTP {status}"] += 1
                if not keep_alive:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    tasks = [asyncio.ensure_future(worker(i)) for i in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=seconds + grace)
    for task in pending:
        task.cancel()
        errors["timeout"] += 1
    if pending:
        await asyncio.wait(pending)
    return _result(url, start, latencies, ttfb, errors, statuses, concurrency=concurrency, stream=stream)


async def run_open(url: str, body: bytes, headers: list[str], rate: float, seconds: float, stream: bool,
                   grace: float = 30.0, method: str = "POST") -> dict[str, Any]:
    """Open loop: `rate` requests a second for `seconds`, sent on schedule (at most
    rate x seconds requests in all), each on an idle connection or a new one."""
    req = Request(url, body, headers, method)
    latencies: list[float] = []
    ttfb: list[float] | None = [] if stream else None
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = [0]
    total = int(rate * seconds)
    interval = 1.0 / rate

    async def one(n: int, scheduled: float) -> None:
        if idle:
            reader, writer = idle.pop()
        else:
            try:
                reader, writer = await asyncio.open_connection(req.host, req.port)
            except OSError as exc:
                errors[f"connect: {type(exc).__name__}"] += 1
                return
            opened[0] += 1
        try:
            writer.write(req.bytes(n))
            status, keep_alive = await read_response(reader, scheduled, ttfb)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HTTPError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            writer.close()
            return
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] += 1
        if status >= 400:
            errors[f"HTTP {status}"] += 1
        if keep_alive:
            idle.append((reader, writer))
        else:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval) + 1)
        while sent < due:  # everything whose time has come (the loop may wake late)
            task = asyncio.ensure_future(one(sent + 1, start + sent * interval))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))
    if tasks:
        done, pending = await asyncio.wait(set(tasks), timeout=grace)
        for task in pending:
            task.cancel()
            errors["timeout"] += 1
        if pending:
            await asyncio.wait(pending)
    for _, writer in idle:
        writer.close()
    result = _result(url, start, latencies, ttfb, errors, statuses, concurrency=None, stream=stream)
    result.update({"rate": rate, "offered": total, "connections_opened": opened[0]})
    return result


KEEP_SAMPLES = False  # --samples: every latency in the result too (make bench merges slices of a test)


def _result(url: str, start: float, latencies: list[float], ttfb: list[float] | None, errors: Counter[str],
            statuses: Counter[int], *, concurrency: int | None, stream: bool) -> dict[str, Any]:
    elapsed = time.perf_counter() - start
    ok = sum(n for s, n in statuses.items() if s < 400)
    result: dict[str, Any] = {
        "url": url,
        "concurrency": concurrency,
        "stream": stream,
        "elapsed_s": round(elapsed, 3),
        "requests": len(latencies),
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "statuses": {str(k): v for k, v in statuses.items()},
        "rps": round(ok / elapsed, 1) if elapsed else 0.0,
        "latency_ms": summary_ms(latencies),
    }
    if ttfb is not None:
        result["ttfb_ms"] = summary_ms(ttfb)
    if KEEP_SAMPLES:
        result["samples_ms"] = {"latency_ms": [round(v * 1000, 3) for v in latencies],
                                "ttfb_ms": [round(v * 1000, 3) for v in ttfb or []]}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--method", default="POST")
    p.add_argument("--body", default="", help="request body (JSON); @file reads it from a file")
    p.add_argument("-H", "--header", action="append", default=[], help="extra header, 'Name: value'")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0, help="stop sending after this long")
    p.add_argument("--requests", type=int, default=None, help="stop after this many requests in total")
    p.add_argument("--stream", action="store_true", help="also report time to first body byte")
    p.add_argument("--grace", type=float, default=30.0, help="cancel requests still running this long after the end")
    p.add_argument("--rate", type=float, default=None, help="open loop: requests per second (instead of -c)")
    p.add_argument("--ramp", type=float, default=0.0, help="closed loop: start the workers over this many seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--samples", action="store_true", help="with --json: every latency too, in ms")
    args = p.parse_args(argv)
    global KEEP_SAMPLES
    KEEP_SAMPLES = args.samples
    body = args.body
    if body.startswith("@"):
        with open(body[1:], "rb") as f:
            raw = f.read()
    else:
        raw = body.encode()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.rate:
        result = asyncio.run(run_open(args.url, raw, args.header, args.rate, args.seconds, args.stream, args.grace,
                                      args.method))
    else:
        result = asyncio.run(run(args.url, raw, args.header, args.concurrency, args.seconds, args.requests, args.stream,
                                 args.grace, args.method, args.ramp))
    if args.json:
        print(json.dumps(result))
    else:
        lat = result["latency_ms"]
        print(f"{result['requests']} requests in {result['elapsed_s']} s, {result['rps']} req/s, "
              f"errors {result['errors']} {result['error_kinds'] or ''}")
        print(f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
        if "ttfb_ms" in result:
            t = result["ttfb_ms"]
            print(f"ttfb ms:    p50 {t['p50']}  p90 {t['p90']}  p99 {t['p99']}  max {t['max']}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
