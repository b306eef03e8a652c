"""gateway.hotpath.adapters.interface.sse_events / sse_parse: the same events and data however the
upstream's bytes are cut into reads (the one-whole-event read takes a shortcut)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from gateway.hotpath.adapters.interface import sse_events, sse_parse

STREAM = (b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
          b'event: message_delta\ndata: {"a":1}\n\n'
          b'data: {"x":\ndata: 2}\n\n'
          b': keep-alive comment\n\n'
          b'data:no-space\n\n'
          b'data:   three spaces\n\n'
          b'data: [DONE]\n\n')
EVENTS = [b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n', b'event: message_delta\ndata: {"a":1}\n\n',
          b'data: {"x":\ndata: 2}\n\n', b': keep-alive comment\n\n', b'data:no-space\n\n',
          b'data:   three spaces\n\n', b'data: [DONE]\n\n']


class _Reads:
    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    async def iter_any(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


class _Response:
    def __init__(self, reads: list[bytes]) -> None:
        self.content = _Reads(reads)


def _events(reads: list[bytes]) -> list[bytes]:
    async def run() -> list[bytes]:
        return [event async for event in sse_events(_Response(reads))]  # type: ignore[arg-type]
    return asyncio.run(run())


def test_events_are_the_same_for_any_cut_of_the_bytes() -> None:
    rng = random.Random(7)
    assert _events([STREAM]) == EVENTS
    assert _events(list(EVENTS)) == EVENTS  # one whole event per read: passed on as it is
    assert _events([bytes([b]) for b in STREAM]) == EVENTS  # byte by byte
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
        reads = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert _events(reads) == EVENTS, reads


def test_crlf_and_an_unterminated_last_event() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert _events([crlf]) == EVENTS
    assert _events([crlf[:10], crlf[10:]]) == EVENTS
    assert _events([b"data: 1\n\ndata: 2"]) == [b"data: 1\n\n", b"data: 2\n\n"]
    assert _events([b"x"]) == [b"x\n\n"]  # one byte is not a whole event


def _parse_reference(event: bytes) -> tuple[Any, bytes]:
    name, data = None, []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    return name, b"\n".join(data)


def test_parse_gives_the_name_and_the_joined_data() -> None:
    for event in [*EVENTS, b"data:\n\n", b"data: x\ny", b"event: ping\n\n", b"data: a\r\n\n"]:
        assert sse_parse(event) == _parse_reference(event), event
    assert sse_parse(b'data: {"x":\ndata: 2}\n\n') == (None, b'{"x":\n2}')
    assert sse_parse(b'event: message_delta\ndata: {"a":1}\n\n') == ("message_delta", b'{"a":1}')
