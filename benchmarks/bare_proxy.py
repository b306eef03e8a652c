"""The ceiling: a bare pass-through proxy in raw ASGI, with nothing but forwarding.

    uvicorn benchmarks.bare_proxy:app --loop uvloop --http httptools --lifespan off --no-access-log

Forwards every POST body to BARE_PROXY_UPSTREAM (default http://127.0.0.1:18100) on the
same path, over one pooled keep-alive aiohttp session per process, and sends back the
upstream's status, content type and bytes (streamed chunk by chunk). No auth, no limits,
no parsing, no usage: what the same server, loop and HTTP client cost on this machine,
so `make bench` can say how close the gateway comes to it.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "http://127.0.0.1:18100").rstrip("/")
_session: aiohttp.ClientSession | None = None


def _pool() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        # the gateway's client settings (gateway/asgi.py): no total timeout, bounded connect and reads
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                                         timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=600),
                                         cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)
    return _session


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
    async with _pool().request(scope["method"], UPSTREAM + scope["path"], data=body, headers=forwarded) as upstream:
        await send({"type": "http.response.start", "status": upstream.status,
                    "headers": [(b"content-type", upstream.headers.get("content-type", "application/json").encode())]})
        async for chunk in upstream.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
