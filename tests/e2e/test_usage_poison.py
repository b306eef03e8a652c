"""One bad request never blocks anyone's usage: whatever model name or fields a workspace
sends, and whatever lands in the usage stream, every answered request of every other
workspace is recorded within seconds, and nothing stays pending."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import anthropic
import httpx
import openai
import pytest
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from analytics.models import UsageEvent
from analytics.tasks import GROUP, usage_stream_drain
from gateway.catalog.publish import redis_sync
from gateway.hotpath.record import UsageRecord as Event
from gateway.hotpath.redis_keys import USAGE_STREAM
from tests.e2e.sdk import HI, anthropic_client, openai_client

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def poisoner(django_db_blocker, fake_models):  # type: ignore[no-untyped-def]
    """A second workspace and key, whose requests are the hostile ones."""
    from django.contrib.auth import get_user_model

    from keys.services import api_key_create
    from tenants.services import workspace_create

    with django_db_blocker.unblock():
        email = f"poison-{uuid.uuid4().hex[:8]}@example.com"
        user = get_user_model().objects.create_user(username=email, email=email, password="a-long-test-password")
        workspace = workspace_create(name=f"Poison {uuid.uuid4().hex[:6]}", owner=user)
        _, secret = api_key_create(workspace=workspace, name="poison")
    return workspace, secret


def _answered(workspace) -> int:  # type: ignore[no-untyped-def]
    with schema_context(workspace.schema_name):
        return UsageEvent.objects.filter(status_code=200).count()


def _drain_until(done: Callable[[], bool], timeout: float = 10) -> bool:
    """The worker's drain as Celery beat runs it (every second here a little faster); a failing
    run is retried at the next tick, as beat would."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            usage_stream_drain()
        except Exception:
            logger.exception("usage drain failed")
        if done() or time.monotonic() > deadline:
            return done()
        time.sleep(0.2)


def _nothing_pending() -> None:
    assert _drain_until(lambda: redis_sync().xpending(USAGE_STREAM, GROUP)["pending"] == 0)  # type: ignore[index]
    assert redis_sync().xpending(USAGE_STREAM, GROUP)["pending"] == 0  # type: ignore[index]
    assert redis_sync().xlen(USAGE_STREAM) == 0, "the stream is drained"


HOSTILE_MODELS = [
    "m" * 129,
    "m" * 5000,
    "fake-openai\x00",
    "\x00",
    "é" * 200,
    "😀" * 129,
    "fake-openai" + " " * 200,
    "a\x00b" * 100,
]


def _poison_requests(gateway_url: str, secret: str) -> None:
    """Hostile requests through every inbound API: each is refused (404), and its usage event queued."""
    client = openai_client(gateway_url, secret)
    claude = anthropic_client(gateway_url, secret)
    for model in HOSTILE_MODELS:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model=model, input="hi")
        with pytest.raises(anthropic.NotFoundError):
            claude.messages.create(model=model, max_tokens=5, messages=HI)  # type: ignore[arg-type]
    for model in ("g" * 300, "gemini%00fake", "%F0%9F%98%80" * 130, "%ED%A0%80x"):
        response = httpx.post(
            f"{gateway_url}/v1beta/models/{model}:generateContent",
            headers={"x-goog-api-key": secret},
            json={"contents": [{"parts": [{"text": "hi"}]}]},
            timeout=20,
        )
        assert response.status_code in (400, 404)


def _poison_stream(schema_name: str) -> None:
    """Events no gateway writes, straight into the stream: bad field values of every kind."""
    base = asdict(Event(schema=schema_name, key_id=0, key_name="k", endpoint="chat.completions", model="x"))
    bad: list[dict[str, Any]] = [
        {"model": "m" * 1000},
        {"key_name": "\x00"},
        {"error_type": "e" * 300},
        {"input_tokens": 2**64},
        {"latency_ms": -(2**40)},
        {"cost": "1e30"},
        {"cost": "NaN"},
        {"ts": "now"},
        {"event_id": None},
        {"stream": "maybe"},
        {"schema": "no\x00such"},
        {"schema": "ws_missing_" + uuid.uuid4().hex[:6]},
    ]
    client = redis_sync()
    for fields in bad:
        client.xadd(USAGE_STREAM, {"e": json.dumps({**base, "event_id": uuid.uuid4().hex, **fields}).encode()})
    client.xadd(USAGE_STREAM, {"e": b"\xff not json"})
    client.xadd(USAGE_STREAM, {"other": b"no event at all"})


def test_poison_from_one_workspace_never_delays_anothers_usage(gateway_url, sdk_key, poisoner):  # type: ignore[no-untyped-def]
    victim, victim_secret = sdk_key
    bad_workspace, bad_secret = poisoner
    client = openai_client(gateway_url, victim_secret)
    answered = _answered(victim)
    for _ in range(4):
        for stream in (False, True):
            if stream:
                chunks = list(client.chat.completions.create(model="fake-openai", messages=HI, stream=True))  # type: ignore[arg-type]
                assert chunks
            else:
                assert client.chat.completions.create(model="fake-openai", messages=HI).choices  # type: ignore[arg-type]
            answered += 1
        _poison_requests(gateway_url, bad_secret)
        _poison_stream(bad_workspace.schema_name)
    assert _drain_until(lambda: _answered(victim) == answered), "every answered request is recorded within seconds"
    with schema_context(bad_workspace.schema_name):
        models = list(UsageEvent.objects.values_list("model", flat=True))
    assert any(m.startswith("mmm") for m in models) and all(len(m) <= 128 and "\x00" not in m for m in models), (
        "the refused requests are recorded too, their model bounded to the column"
    )
    _nothing_pending()


MODELS = st.one_of(
    st.sampled_from(["fake-openai", "fake-anthropic", "fake-gemini", "fake-local", "nope"]),
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from("\x00aé😀 -/:%"), min_size=100, max_size=600),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=300)
)
FIELDS = st.dictionaries(
    st.sampled_from(
        [
            "user",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "metadata",
            "service_tier",
            "store",
            "logprobs",
            "parallel_tool_calls",
        ]
    ),
    FIELD_VALUES,
    max_size=4,
)


def test_a_fuzz_run_leaves_no_usage_event_pending(gateway_url, poisoner):  # type: ignore[no-untyped-def]
    """A few hundred hostile requests (bounded: no shrinking, a request timeout) through the
    real gateway; afterwards every answered one is recorded and the stream is empty."""
    workspace, secret = poisoner
    client = openai_client(gateway_url, secret)
    before = _answered(workspace)
    answered = 0
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=250, deadline=None, phases=[Phase.generate], database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        route=st.sampled_from(["openai", "embeddings", "anthropic", "gemini"]),
        model=MODELS,
        stream=st.booleans(),
        fields=st.one_of(st.just({}), FIELDS),
    )
    def request(route: str, model: Any, stream: bool, fields: dict[str, Any]) -> None:
        nonlocal answered
        headers = {
            "Authorization": f"Bearer {secret}",
            "x-api-key": secret,
            "x-goog-api-key": secret,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        }
        body: dict[str, Any] = {"model": model, **fields}
        if route == "openai":
            try:
                answer = client.chat.completions.create(model=model, messages=HI, stream=stream, extra_body=fields)  # type: ignore[arg-type,call-overload]
                if stream:
                    list(answer)
                answered += 1
            except openai.APIStatusError as error:  # refused: its event is recorded all the same
                statuses[error.status_code] += 1
            except openai.APIError:  # the stream failed after its 200: recorded as answered
                answered += 1
            return
        if route == "embeddings":
            url, body = "/v1/embeddings", {**body, "input": "hi"}
        elif route == "anthropic":
            url, body = "/v1/messages", {"model": model, "max_tokens": 5, "messages": HI, "stream": stream}
        else:
            url, body = f"/v1beta/models/{model}:generateContent", {"contents": [{"parts": [{"text": "hi"}]}], **fields}
        try:
            response = httpx.post(gateway_url + url, content=json.dumps(body).encode(), headers=headers, timeout=10)
        except httpx.InvalidURL:
            return  # a path httpx will not send
        answered += response.status_code == 200
        statuses[response.status_code] += 1

    request()
    print(f"fuzz: {answered} answered, refusals by status {dict(statuses)}")  # noqa: T201
    assert answered > 10, "the run answered some requests (the fuzzing did not only produce refusals)"
    assert _drain_until(lambda: _answered(workspace) - before == answered), "every answered request is recorded"
    _nothing_pending()
