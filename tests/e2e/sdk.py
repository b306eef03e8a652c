"""Shared pieces for tests that drive the running gateway with the official SDKs."""

from __future__ import annotations

import base64
import struct
import zlib

import anthropic
import openai
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from analytics.tasks import usage_stream_drain

PRICEY = "pricey"  # $1,000 per million tokens each way: one token costs $0.001
HI = [{"role": "user", "content": "hi"}]
UPSTREAMS = ["fake-openai", "fake-azure", "fake-anthropic", "fake-gemini", "fake-cohere", "fake-local"]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}
TIME_SCHEMA = {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


PNG_BASE64 = base64.b64encode(_png()).decode()


def fake_stats(fake_provider_url: str) -> dict[str, int]:
    """What the fake upstream saw: streams started, completed, abandoned by the gateway."""
    import httpx

    return httpx.get(fake_provider_url + "/stats").json()  # type: ignore[no-any-return]


def upstream_abandoned_since(fake_provider_url: str, before: dict[str, int], timeout: float = 10) -> bool:
    """Whether the upstream saw the gateway hang up on a stream after `before` was taken."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake_stats(fake_provider_url)["streams_abandoned"] > before["streams_abandoned"]:
            return True
        time.sleep(0.1)
    return False


def openai_client(gateway_url: str, secret: str, **kwargs) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, max_retries=0, timeout=20, **kwargs)


def anthropic_client(gateway_url: str, secret: str, **kwargs) -> anthropic.Anthropic:  # type: ignore[no-untyped-def]
    return anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0, timeout=20, **kwargs)


def events_of(workspace) -> list[UsageEvent]:  # type: ignore[no-untyped-def]
    """The workspace's usage events, oldest first. The gateway queues an event just after
    the response is sent, so drain until two reads in a row agree."""
    import time

    previous = -1
    deadline = time.monotonic() + 5
    while True:
        usage_stream_drain()
        with schema_context(workspace.schema_name):
            events = list(UsageEvent.objects.order_by("created_at"))
        if len(events) == previous or time.monotonic() > deadline:
            return events
        previous = len(events)
        time.sleep(0.15)
