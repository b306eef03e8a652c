"""A small closed-loop HTTP/1.1 load generator (raw asyncio streams on uvloop).

Each of `--concurrency` workers holds one keep-alive connection and sends the same
pre-built request again and again until `--seconds` have passed or `--requests` have been
sent in total, whichever comes first. Reports throughput, latency percentiles, errors and,
with `--stream`, the time to the first body byte of each (SSE) response.

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
              stream: bool, grace: float = 30.0, method: str = "POST") -> dict[str, Any]:
    host, port, request = build_request(url, body, headers, method)
    latencies: list[float] = []
    ttfb: list[float] | None = [] if stream else None
    errors: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    budget = [requests if requests is not None else 1 << 62]
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
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
                t0 = time.perf_counter()
                try:
                    writer.write(request)
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

    tasks = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=seconds + grace)
    for task in pending:
        task.cancel()
        errors["timeout"] += 1
    if pending:
        await asyncio.wait(pending)
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
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
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
    result = asyncio.run(run(args.url, raw, args.header, args.concurrency, args.seconds, args.requests, args.stream,
                             args.grace, args.method))
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
