"""One bad usage event never blocks anyone's usage: the worker bounds what it can store,
sets aside (with the error) what it cannot, and splits a batch the database refuses so
every good event of it is stored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
from django.db import connection
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from analytics.tasks import GROUP, usage_stream_drain
from gateway.catalog.publish import redis_sync
from gateway.hotpath.record import UsageRecord as Event
from gateway.hotpath.redis_keys import USAGE_DEAD_STREAM, USAGE_STREAM


def _event(schema_name: str, **fields: Any) -> dict[str, Any]:
    event = asdict(
        Event(
            schema=schema_name,
            key_id=0,
            key_name="k",
            endpoint="chat.completions",
            model="fake-openai",
            event_id=uuid.uuid4().hex,
            cost="0.00001000",
        )
    )
    return {**event, **fields}


def _queue(event: dict[str, Any] | bytes) -> None:
    redis_sync().xadd(USAGE_STREAM, {"e": event if isinstance(event, bytes) else orjson.dumps(event)})


def _dead() -> dict[str, str]:
    """The dead-letter stream: each event's key_name (the tests' marker), or the raw entry
    when it is no event, -> its error."""
    out: dict[str, str] = {}
    entries: Any = redis_sync().xrevrange(USAGE_DEAD_STREAM, count=5000)
    for _, fields in entries:
        try:
            key = str(json.loads(fields[b"e"]).get("key_name"))
        except (ValueError, AttributeError):
            key = fields[b"e"].decode(errors="replace")
        out.setdefault(key, fields.get(b"error", b"").decode())
    return out


def _stored(schema: str, event_ids: list[str]) -> dict[str, UsageEvent]:
    with schema_context(schema):
        return {row.event_id: row for row in UsageEvent.objects.filter(event_id__in=event_ids)}


def _drain_until(done: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        usage_stream_drain()
        if done() or time.monotonic() > deadline:
            return done()
        time.sleep(0.1)


def _nothing_pending() -> None:
    usage_stream_drain()
    client = redis_sync()
    assert client.xpending(USAGE_STREAM, GROUP)["pending"] == 0  # type: ignore[index]
    assert client.xlen(USAGE_STREAM) == 0


# fields a careless or hostile client, or older code, can put in an event; the row is still
# stored, with the field bounded to its column
REPAIRABLE = [
    {"model": "m" * 500},
    {"model": "a\x00b"},
    {"model": "\ud800x"},
    {"model": "é" * 300},
    {"model": None},
    {"model": 42},
    {"key_name": "\x00" * 7},
    {"error_type": "x" * 1000},
    {"endpoint": "e" * 100},
    {"provider": "p\x00" * 100},
    {"cache_status": "s" * 40},
    {"input_tokens": 2**40},
    {"output_tokens": -5},
    {"latency_ms": 1e300},
    {"status_code": 2**70},
    {"input_tokens": "12"},
    {"cost": "1e20"},
    {"cost": "-99999999"},
    {"cost": 0.5},
    {"cost_saved": "123456789.123456789"},
    {"key_id": 2**80},
    {"cache_similarity": 2},
]
# events nothing can be stored of: set aside with the reason
UNSTORABLE: list[dict[str, Any]] = [
    {"event_id": None},
    {"event_id": "x" * 100},
    {"event_id": "a\x00b"},
    {"ts": "tomorrow"},
    {"ts": 1e20},
    {"input_tokens": "many"},
    {"input_tokens": [1]},
    {"stream": "yes"},
    {"cost": "NaN"},
    {"cost": "lots"},
    {"cache_similarity": "high"},
    {"schema": "bad\x00schema"},
    {"schema": 5},
    {"schema": "s" * 200},
    {"schema": "ws_gone_" + uuid.uuid4().hex[:8]},
]


def test_poison_events_never_block_another_workspaces_usage(make_workspace):  # type: ignore[no-untyped-def]
    victim, poisoner = make_workspace(), make_workspace()
    good, repaired, unstorable = [], [], []
    for i, fields in enumerate(REPAIRABLE + UNSTORABLE):
        event = _event(victim.schema_name)
        _queue(event)
        good.append(event["event_id"])
        if i < len(REPAIRABLE):
            bad = _event(poisoner.schema_name, **fields)
            repaired.append(bad["event_id"])
        else:
            bad = _event(poisoner.schema_name, **{"key_name": uuid.uuid4().hex, **fields})
            unstorable.append(bad["key_name"])
        _queue(json.dumps(bad).encode())  # the standard library writes lone surrogates too
    for raw in (b"not json", b"[1, 2]", b'"text"', b"{}", b'{"schema": null}'):
        _queue(raw)
    redis_sync().xadd(USAGE_STREAM, {"x": "an entry without an event"})
    tail = _event(victim.schema_name)
    _queue(tail)
    good.append(tail["event_id"])

    assert _drain_until(lambda: len(_stored(victim.schema_name, good)) == len(good)), "every good event is stored"
    stored = _stored(poisoner.schema_name, repaired)
    assert set(stored) == set(repaired), "an event with an over-long or invalid field is stored, bounded"
    for row in stored.values():
        for field in ("model", "key_name", "error_type", "endpoint", "provider", "cache_status"):
            value = getattr(row, field)
            assert "\x00" not in value and len(value) <= UsageEvent._meta.get_field(field).max_length  # type: ignore[union-attr]
    with schema_context(poisoner.schema_name):
        assert not UsageEvent.objects.filter(key_name__in=unstorable).exists()
    dead = _dead()
    for marker, fields in zip(unstorable, UNSTORABLE, strict=True):
        assert dead.get(marker), f"{fields} is set aside with its error"
    assert "does not exist" in dead[unstorable[-1]]
    assert "not json" in dead and any("the entry has no event" in error for error in dead.values())
    _nothing_pending()


def test_a_batch_the_database_refuses_is_split_so_every_good_event_is_stored(make_workspace):  # type: ignore[no-untyped-def]
    """A refusal the worker cannot foresee (here a CHECK constraint) costs only its own event."""
    workspace, other = make_workspace(), make_workspace()
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{workspace.schema_name}".analytics_usageevent '
            "ADD CONSTRAINT no_poison CHECK (model <> 'refused-by-check')"
        )
    good, refused, others, refused_events = [], [], [], []
    for i in range(60):
        refuse = i in (7, 31, 32, 59)
        event = _event(
            workspace.schema_name, model="refused-by-check" if refuse else "fake-openai", key_name=uuid.uuid4().hex
        )
        (refused if refuse else good).append(event["event_id"])
        if refuse:
            refused_events.append(event)
        _queue(event)
        neighbour = _event(other.schema_name)
        others.append(neighbour["event_id"])
        _queue(neighbour)
    usage_stream_drain()  # one batch
    assert set(_stored(workspace.schema_name, good + refused)) == set(good)
    assert set(_stored(other.schema_name, others)) == set(others)
    dead = _dead()
    for row in refused_events:
        assert "no_poison" in dead[row["key_name"]], "a refused event is set aside with the database's error"
    _nothing_pending()


def test_set_aside_events_can_be_queued_again_once_their_cause_is_fixed(make_workspace):  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    workspace = make_workspace()
    redis_sync().delete(USAGE_DEAD_STREAM)
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{workspace.schema_name}".analytics_usageevent '
            "ADD CONSTRAINT not_yet CHECK (model <> 'later')"
        )
    event = _event(workspace.schema_name, model="later", key_name=uuid.uuid4().hex)
    _queue(event)
    usage_stream_drain()
    assert event["key_name"] in _dead() and not _stored(workspace.schema_name, [event["event_id"]])
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{workspace.schema_name}".analytics_usageevent DROP CONSTRAINT not_yet')
    call_command("usage_dead_letters_replay")
    assert _drain_until(lambda: bool(_stored(workspace.schema_name, [event["event_id"]])))
    assert redis_sync().xlen(USAGE_DEAD_STREAM) == 0
    _nothing_pending()
