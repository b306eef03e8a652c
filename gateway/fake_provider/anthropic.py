"""The fake's anthropic wire format (being written)."""

from __future__ import annotations

from typing import Any

from .core import Receive, Send, send_json


async def handle(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send_json(send, 404, {"error": {"message": "not implemented yet"}})
