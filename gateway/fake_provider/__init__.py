"""The built-in fake upstream: one ASGI app that speaks each provider's wire format
(OpenAI and Azure OpenAI, Anthropic, Gemini, Cohere), for the demo, the tests and the
benchmarks. What it answers is decided in core.py; each wire module only translates.
Named faults, switched on and off at /control/faults/NAME, are in faults.py.

Run: ``uvicorn gateway.fake_provider:app --port 8100``.
"""

from __future__ import annotations

from typing import Any

from . import anthropic, cohere, gemini, openai
from .core import STATS, ConnectionCut, Receive, Send, current_receive, read_body, send_json, stats_snapshot
from .faults import CONTROL, fault_control


def _wire_for(path: str) -> Any:
    if path.startswith("/v1/messages"):
        return anthropic
    if path.startswith("/v1beta/") or path.startswith("/v1/models/") and ":" in path:
        return gemini
    if path.startswith("/v2/"):
        return cohere
    return openai


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await send_json(send, 200, {"ok": True})
        return
    if scope["path"] == "/stats":
        await send_json(send, 200, stats_snapshot())
        return
    if scope["path"].startswith(CONTROL):
        status, payload = fault_control(scope["method"], scope["path"], await read_body(receive))
        await send_json(send, status, payload)
        return
    current_receive.set(receive)
    STATS["requests"] += 1
    try:
        await _wire_for(scope["path"]).handle(scope, receive, send)
    except ConnectionCut:
        raise  # the server drops the connection; that is the point
