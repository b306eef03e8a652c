"""Persisting the usage stream: events of a workspace that no longer exists must not block
everyone else's; they are set aside in a dead-letter stream."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from django_tenants.utils import schema_context

from analytics.models import UsageEvent
from analytics.tasks import usage_stream_drain
from gateway.catalog.publish import redis_sync
from gateway.hotpath.record import UsageRecord as Event
from gateway.hotpath.redis_keys import USAGE_DEAD_STREAM, USAGE_STREAM


def _dead_ids() -> set[str]:
    entries: Any = redis_sync().xrevrange(USAGE_DEAD_STREAM, count=1000)
    return {orjson.loads(fields[b"e"])["event_id"] for _, fields in entries}


def test_events_of_a_deleted_workspace_go_to_the_dead_letter_stream(make_workspace):  # type: ignore[no-untyped-def]
    workspace = make_workspace()
    gone = Event(schema=f"ws_gone_{uuid.uuid4().hex[:8]}", key_id=1, key_name="k", endpoint="chat.completions",
                 event_id=uuid.uuid4().hex)
    kept = Event(schema=workspace.schema_name, key_id=0, key_name="k", endpoint="chat.completions",
                 event_id=uuid.uuid4().hex, cost="0.01")
    client = redis_sync()
    client.xadd(USAGE_STREAM, {"e": orjson.dumps(gone)})  # first: before this fix it failed the whole batch
    client.xadd(USAGE_STREAM, {"e": orjson.dumps(kept)})
    deadline = time.monotonic() + 10
    while True:
        usage_stream_drain()
        with schema_context(workspace.schema_name):
            stored = UsageEvent.objects.filter(event_id=kept.event_id).exists()
        if (stored and gone.event_id in _dead_ids()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored, "the live workspace's event was persisted"
    assert gone.event_id in _dead_ids(), "the deleted workspace's event was set aside"
    usage_stream_drain()  # and it does not come back: nothing is left pending
    pending: Any = client.xpending(USAGE_STREAM, "usage-writers")
    assert pending["pending"] == 0
