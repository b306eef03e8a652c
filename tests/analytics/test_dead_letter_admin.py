"""Staff see in Django admin how many usage events were set aside and why."""

from __future__ import annotations

import re
import uuid

import orjson
from django.test import Client

from analytics.tasks import usage_stream_drain
from gateway.catalog.publish import redis_sync
from gateway.hotpath.redis_keys import USAGE_DEAD_STREAM, USAGE_STREAM

PAGE = "/admin/analytics/usagedeadletter/"


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_the_dead_letter_count_and_the_latest_errors(make_user):  # type: ignore[no-untyped-def]
    marker = uuid.uuid4().hex
    redis_sync().xadd(USAGE_STREAM, {"e": orjson.dumps({"schema": "ws_x", "event_id": marker, "ts": "yesterday"})})
    usage_stream_drain()
    staff = make_user()
    staff.is_staff = True
    staff.save()
    client = _client(staff)
    index = client.get("/admin/").content.decode()
    assert PAGE in index, "the admin index links to the dead letters"
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    count = re.search(r'id="dead-letter-count">(\d+)<', html)
    assert count is not None and int(count.group(1)) == redis_sync().xlen(USAGE_DEAD_STREAM) > 0
    row = next(r for r in html.split("<tr>") if marker in r)
    assert "ts: not a timestamp" in row


def test_the_dead_letters_are_for_staff_only(make_user):  # type: ignore[no-untyped-def]
    response = _client(make_user()).get(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Client().get(PAGE).status_code == 302
