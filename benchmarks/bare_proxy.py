"""The ceiling: a bare pass-through proxy in raw ASGI, with nothing but forwarding.

    uvicorn benchmarks.bare_proxy:app --loop uvloop --http httptools --lifespan off --no-access-log

Forwards every POST body to BARE_PROXY_UPSTREAM (default http://127.0.0.1:18100) on the
same path, over the gateway's own pooled keep-alive upstream client (gateway/hotpath/upstream.py,
one pool per process), and sends back the upstream's status, content type and bytes
(streamed chunk by chunk). No auth, no limits, no parsing, no usage: what the same
server, loop and HTTP client cost on this machine, so `make bench` can say how close
the gateway comes to it. (With aiohttp's client, which the gateway used before, this
proxy spent 0.43-0.66 ms of CPU per request at 500 requests/s against 0.25-0.31.)
"""

from __future__ import annotations

import os
from typing import Any

from gateway.hotpath.upstream import Pool

UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "http://127.0.0.1:18100").rstrip("/")
_pool: Pool | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    forwarded = {"content-type": "application/json"}
    for name, value in scope["headers"]:
        if name == b"authorization":
            forwarded["authorization"] = value.decode("latin-1")
    global _pool
    if _pool is None:
        _pool = Pool(connect_timeout=10, read_timeout=600)  # the gateway's settings (gateway/hotpath/asgi.py)
    upstream = await _pool.request(scope["method"], UPSTREAM + scope["path"], data=body, headers=forwarded)
    try:
        await send({"type": "http.response.start", "status": upstream.status,
                    "headers": [(b"content-type", upstream.headers.get("content-type", "application/json").encode())]})
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        upstream.release()
