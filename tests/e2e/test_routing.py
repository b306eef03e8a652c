"""Routing and reliability (issue 16), through the official SDKs against two running
gateway processes that share Redis: model groups of deployments on the fake provider,
with faults switched on and off per deployment through the fake's control endpoint
(a deployment's upstream name carries `[[fake:fault=NAME]]`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from keys.services import api_key_create, api_key_policy_update
from tests.e2e.sdk import HI, anthropic_client, events_of, openai_client
from tests.servers import ROOT, free_port, process_stop, wait_http

FAILURES = 3  # the breaker opens after this many failures in a row (set for these gateways)
COOLDOWN = 4.0  # seconds an open circuit waits before a probe
UID = uuid.uuid4().hex[:6]


def _name(suffix: str) -> str:
    return f"rt-{UID}-{suffix}"


@pytest.fixture(scope="module")
def gateways(django_db_setup, fake_provider_url, embedder_socket) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Two gateway processes on one Redis and one database, as two pods behind a load balancer."""
    from django.conf import settings

    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        env = dict(os.environ, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL,
                   GATEWAY_UPSTREAM_TIMEOUT="10", FAKE_PROVIDER_URL=fake_provider_url,
                   GATEWAY_EMBEDDER_SOCKET=embedder_socket, GATEWAY_BREAKER_FAILURES=str(FAILURES),
                   GATEWAY_BREAKER_COOLDOWN_SECONDS=str(COOLDOWN))
        proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                 "aiproxy_site.asgi:application"], cwd=ROOT, env=env)
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
    for url, proc in zip(urls, procs, strict=True):
        wait_http(url + "/accounts/login/", proc)
    yield urls
    for proc in procs:
        process_stop(proc)


def _upstream(fault: str, extra: str = "") -> str:
    return f"gpt-4o-mini-fake[[fake:fault={_name(fault)}]]{extra}"


@pytest.fixture(scope="module")
def groups(django_db_blocker, fake_models) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The module's model groups; each deployment "a" or "b" has its own named fault."""
    from gateway.catalog.models import Deployment, Model, ModelFallback, Provider

    specs: dict[str, tuple[str, dict[str, Any], list[tuple[str, str, dict[str, Any]]]]] = {
        "two": ("weighted", {}, [("a", _upstream("two-a"), {}), ("b", _upstream("two-b"), {})]),
        "prio": ("priority", {}, [("a", _upstream("prio-a"), {"priority": 0}), ("b", _upstream("prio-b"), {"priority": 1})]),
        "small": ("priority", {"context_window": 200}, [("only", _upstream("small"), {})]),
        "large": ("priority", {"context_window": 100_000}, [("only", _upstream("large"), {})]),
        "cb": ("priority", {}, [("a", _upstream("cb-a"), {"priority": 0}), ("b", _upstream("cb-b"), {"priority": 1})]),
        "stream": ("priority", {}, [("a", _upstream("stream-a"), {"priority": 0}), ("b", _upstream("stream-b"), {"priority": 1})]),
        "cut": ("priority", {}, [("only", "gpt-4o-mini-fake[[fake:cut]][[fake:words=60]]", {})]),
        "busy": ("least_busy", {}, [("a", _upstream("busy-a"), {}), ("b", _upstream("busy-b"), {})]),
        "fast": ("lowest_latency", {}, [("a", "gpt-4o-mini-fake[[fake:latency_ms=300]]", {}),
                                        ("b", "gpt-4o-mini-fake", {})]),
        "pricey": ("priority", {}, [("a", _upstream("pricey-a"), {"priority": 0, "price": "1000"}),
                                    ("b", _upstream("pricey-b"), {"priority": 1, "price": "1000"})]),
        "down": ("priority", {}, [("a", _upstream("down-a"), {}), ("b", _upstream("down-b"), {})]),
        "slow": ("priority", {}, [("a", _upstream("slow-a"), {"priority": 0, "first_byte_timeout": 0.5}),
                                  ("b", _upstream("slow-b"), {"priority": 1})]),
        "chain": ("priority", {}, [("only", _upstream("chain"), {})]),
        "narrow": ("priority", {}, [("only", _upstream("narrow"), {})]),
    }
    with django_db_blocker.unblock():
        provider = Provider.objects.get(name="fake")
        for suffix, (strategy, fields, deployments) in specs.items():
            group = Model.objects.create(public_name=_name(suffix), strategy=strategy, **fields)
            for name, upstream_name, options in deployments:
                price = options.pop("price", "0")
                Deployment.objects.create(group=group, provider=provider, name=name, upstream_name=upstream_name,
                                          input_price_per_mtok=price, output_price_per_mtok=price, **options)
        small = Model.objects.get(public_name=_name("small"))
        small.context_window_fallback = Model.objects.get(public_name=_name("large"))
        small.save()
        # the chain group falls back to the demo's Anthropic-format group: a fallback across formats
        ModelFallback.objects.create(model=Model.objects.get(public_name=_name("chain")),
                                     fallback=Model.objects.get(public_name="fake-anthropic"), position=0)
    time.sleep(1.2)  # each gateway re-reads the catalog at most once a second
    return {suffix: _name(suffix) for suffix in specs}


def _uncached(workspace: Any) -> None:
    """Every request here must reach an upstream: no answer from the response cache."""
    workspace.cache_enabled = False
    workspace.save(update_fields=["cache_enabled"])


@pytest.fixture(scope="module")
def secret(django_db_blocker) -> str:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from tenants.services import workspace_create

    with django_db_blocker.unblock():
        email = f"routing-{UID}@example.com"
        user = get_user_model().objects.create_user(username=email, email=email, password="a-long-test-password")
        workspace = workspace_create(name=f"Routing {UID}", owner=user)
        _uncached(workspace)
        _, key_secret = api_key_create(workspace=workspace, name="routing")
    return key_secret


def _fault(fake_url: str, suffix: str, body: dict[str, Any] | None) -> None:
    url = f"{fake_url}/control/faults/{_name(suffix)}"
    response = httpx.put(url, json=body) if body is not None else httpx.delete(url)
    assert response.status_code == 200, response.text


def _served(fake_url: str, suffix: str) -> int:
    """How many requests the fake provider got for a deployment (by its upstream name)."""
    counts = httpx.get(f"{fake_url}/stats").json()["by_model"]
    return int(counts.get(_upstream(suffix), 0))


def _chat(url: str, key: str, model: str, content: str = "hi", **extra: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}",
                                                            "x-aiproxy-cache": "no-store"},
                      json={"model": model, "messages": [{"role": "user", "content": content}], **extra}, timeout=30)


def test_one_of_two_deployments_dead_no_client_sees_an_error(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "two-a", {"status": 503})
    try:
        client = openai_client(gateways[0], secret)  # max_retries=0: only the gateway retries
        served = Counter()
        for n in range(30):
            raw = client.chat.completions.with_raw_response.create(model=groups["two"], messages=HI,
                                                                   stream=n % 3 == 0)
            served[raw.headers["x-aiproxy-deployment"]] += 1
            raw.parse()
        # and through Anthropic's SDK (translated to the OpenAI-format upstream), on the other process
        answer = anthropic_client(gateways[1], secret).messages.create(model=groups["two"], max_tokens=20, messages=HI)
        assert answer.content[0].type == "text"
    finally:
        _fault(fake_provider_url, "two-a", None)
    assert served == {f"{groups['two']}/b": 30}
    assert _served(fake_provider_url, "two-a") >= 1  # it was tried (until its circuit opened), never seen by a client


def test_a_429_with_retry_after_is_served_by_the_other_deployment(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "prio-a", {"status": 429})
    try:
        response = _chat(gateways[0], secret, groups["prio"])
    finally:
        _fault(fake_provider_url, "prio-a", None)
    assert response.status_code == 200, response.text
    assert response.headers["x-aiproxy-deployment"] == f"{groups['prio']}/b"
    assert response.headers["x-aiproxy-attempts"] == "2"
    # healthy again: the first by priority serves, in one attempt
    again = _chat(gateways[0], secret, groups["prio"])
    assert again.headers["x-aiproxy-deployment"] == f"{groups['prio']}/a" and again.headers["x-aiproxy-attempts"] == "1"


def test_a_prompt_too_long_for_the_window_is_served_by_the_larger_window_group(gateways, groups, secret):  # type: ignore[no-untyped-def]
    long_prompt = "word " * 400  # more than the small group's 200-token window
    client = openai_client(gateways[0], secret)
    raw = client.chat.completions.with_raw_response.create(
        model=groups["small"], messages=[{"role": "user", "content": long_prompt}])
    assert raw.headers["x-aiproxy-deployment"] == f"{groups['large']}/only"
    assert raw.parse().choices[0].message.content
    short = client.chat.completions.with_raw_response.create(model=groups["small"], messages=HI)
    assert short.headers["x-aiproxy-deployment"] == f"{groups['small']}/only"


def test_the_circuit_opens_after_n_failures_for_every_process_and_closes_after_recovery(  # type: ignore[no-untyped-def]
        gateways, groups, secret, fake_provider_url):
    _fault(fake_provider_url, "cb-a", {"status": 503})
    try:
        for _ in range(FAILURES + 4):
            response = _chat(gateways[0], secret, groups["cb"])
            assert response.status_code == 200 and response.headers["x-aiproxy-deployment"] == f"{groups['cb']}/b"
        tried = _served(fake_provider_url, "cb-a")
        assert tried == FAILURES  # then open: no more traffic from this process
        time.sleep(0.8)  # a sync (every 0.25 s) shares the open circuit with the other process
        for _ in range(5):
            response = _chat(gateways[1], secret, groups["cb"])
            assert response.status_code == 200 and response.headers["x-aiproxy-attempts"] == "1"
        assert _served(fake_provider_url, "cb-a") == tried  # the other process sends it nothing either
    finally:
        _fault(fake_provider_url, "cb-a", None)
    # recovered: after the cooldown one probe goes through, succeeds and closes the circuit
    time.sleep(COOLDOWN + 0.5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        response = _chat(gateways[0], secret, groups["cb"])
        if response.headers["x-aiproxy-deployment"] == f"{groups['cb']}/a":
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the circuit never closed after the deployment recovered")
    time.sleep(0.8)
    assert _chat(gateways[1], secret, groups["cb"]).headers["x-aiproxy-deployment"] == f"{groups['cb']}/a"


def test_every_deployment_open_fails_fast_with_a_503_naming_the_group(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "down-a", {"status": 503})
    _fault(fake_provider_url, "down-b", {"status": 503})
    try:
        for _ in range(FAILURES + 1):
            _chat(gateways[0], secret, groups["down"])
        before = _served(fake_provider_url, "down-a") + _served(fake_provider_url, "down-b")
        with pytest.raises(openai.APIStatusError) as caught:
            openai_client(gateways[0], secret).chat.completions.create(model=groups["down"], messages=HI)
        assert caught.value.status_code == 503
        assert caught.value.code == "deployments_unavailable" and groups["down"] in caught.value.message
        assert _served(fake_provider_url, "down-a") + _served(fake_provider_url, "down-b") == before  # not sent
        with pytest.raises(anthropic.APIStatusError) as caught2:  # in Anthropic's format for its SDK
            anthropic_client(gateways[0], secret).messages.create(model=groups["down"], max_tokens=10, messages=HI)
        assert caught2.value.status_code == 503 and groups["down"] in caught2.value.body["error"]["message"]
    finally:
        _fault(fake_provider_url, "down-a", None)
        _fault(fake_provider_url, "down-b", None)


def test_a_stream_fails_over_before_its_first_byte(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "stream-a", {"status": 503})
    try:
        client = openai_client(gateways[0], secret)
        with client.chat.completions.with_streaming_response.create(model=groups["stream"], messages=HI,
                                                                   stream=True) as raw:
            assert raw.headers["x-aiproxy-deployment"] == f"{groups['stream']}/b"
            assert raw.headers["x-aiproxy-attempts"] == "2"
            text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
        assert text
        # the same through Anthropic's SDK: its stream events, from the deployment that answered
        with anthropic_client(gateways[1], secret).messages.stream(model=groups["stream"], max_tokens=30,
                                                                   messages=HI) as stream:
            assert stream.get_final_text()
    finally:
        _fault(fake_provider_url, "stream-a", None)


def test_a_failure_after_the_first_byte_is_reported_inside_the_stream(gateways, groups, secret):  # type: ignore[no-untyped-def]
    client = openai_client(gateways[0], secret)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model=groups["cut"], messages=HI, stream=True):
            received.append(chunk)
    assert received  # the stream had begun: no retry, the error came in OpenAI's stream format
    assert "interrupted" in str(caught.value.message)
    with pytest.raises(anthropic.APIError):  # and in Anthropic's, for its SDK
        with anthropic_client(gateways[0], secret).messages.stream(model=groups["cut"], max_tokens=60,
                                                                   messages=HI) as stream:
            for _ in stream.text_stream:
                pass


def test_budgets_hold_across_retries_and_only_the_answer_is_billed(  # type: ignore[no-untyped-def]
        gateways, groups, secret, fake_provider_url, django_db_blocker, make_workspace):
    with django_db_blocker.unblock():
        workspace = make_workspace()
        _uncached(workspace)
        api_key, key_secret = api_key_create(workspace=workspace, name="limited")
        api_key_policy_update(workspace=workspace, key=api_key, budget_amount=Decimal("0.05"), budget_period="daily")
    time.sleep(0.6)
    _fault(fake_provider_url, "pricey-a", {"status": 503})
    try:
        client = openai_client(gateways[0], key_secret)
        # reserves (7 prompt + 30 output tokens) x $0.001 = $0.037 once, whatever the attempts; the answer costs $0.016
        raw = client.chat.completions.with_raw_response.create(model=groups["pricey"], messages=HI, max_tokens=30)
        assert raw.headers["x-aiproxy-attempts"] == "2"
        with pytest.raises(openai.RateLimitError) as caught:  # $0.016 spent + $0.037 could pass $0.05
            client.chat.completions.create(model=groups["pricey"], messages=HI, max_tokens=30)
        assert caught.value.code == "budget_exceeded"
    finally:
        _fault(fake_provider_url, "pricey-a", None)
    with django_db_blocker.unblock():
        events = events_of(workspace)
    assert [e.status_code for e in events] == [200, 429]
    first = events[0]
    assert first.attempts == 2 and first.deployment == f"{groups['pricey']}/b"
    assert "1 " + groups["pricey"] + "/a 503" in first.attempt_log and first.attempt_log.endswith("/b ok")
    assert first.cost == Decimal(first.input_tokens + first.output_tokens) / 1000  # one answer's tokens, once


def test_least_busy_counts_requests_in_flight_across_processes(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "busy-a", {"latency_ms": 5000})
    try:
        with ThreadPoolExecutor(2) as pool:
            # process 1: requests one by one until one lands on a (slow: still running after 0.3 s;
            # b answers at once). Once a has one in flight, process 1 itself sends b the rest.
            slow = None
            for _ in range(20):
                future = pool.submit(_chat, gateways[0], secret, groups["busy"])
                time.sleep(0.3)
                if not future.done():
                    slow = future
                    break
            assert slow is not None, "least busy never chose a"
            time.sleep(0.8)  # a sync shares process 1's request in flight on a
            picked = Counter(_chat(gateways[1], secret, groups["busy"]).headers["x-aiproxy-deployment"]
                             for _ in range(8))
            assert slow.result().headers["x-aiproxy-deployment"] == f"{groups['busy']}/a"
    finally:
        _fault(fake_provider_url, "busy-a", None)
    assert picked == {f"{groups['busy']}/b": 8}  # process 2 saw process 1's request in flight on a


def test_lowest_latency_measured_by_one_process_steers_the_other(gateways, groups, secret):  # type: ignore[no-untyped-def]
    # process 1 measures both (an unmeasured deployment is tried first, so each gets measured)
    for _ in range(6):
        _chat(gateways[0], secret, groups["fast"])
    time.sleep(0.8)  # a sync shares the moving averages through Redis
    picked = Counter(_chat(gateways[1], secret, groups["fast"]).headers["x-aiproxy-deployment"] for _ in range(8))
    assert picked == {f"{groups['fast']}/b": 8}


def test_override_headers_bound_the_attempts_and_name_fallbacks(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "prio-a", {"status": 500})
    try:
        one = httpx.post(f"{gateways[0]}/v1/chat/completions", timeout=30,
                         headers={"authorization": f"Bearer {secret}", "x-aiproxy-max-attempts": "1"},
                         json={"model": groups["prio"], "messages": HI})
        assert one.status_code == 500  # one attempt allowed: a's error reaches the client
        bad = httpx.post(f"{gateways[0]}/v1/chat/completions", timeout=30,
                         headers={"authorization": f"Bearer {secret}", "x-aiproxy-max-attempts": "99"},
                         json={"model": groups["prio"], "messages": HI})
        assert bad.status_code == 400 and "x-aiproxy-max-attempts" in bad.json()["error"]["message"]
        unknown = httpx.post(f"{gateways[0]}/v1/chat/completions", timeout=30,
                             headers={"authorization": f"Bearer {secret}", "x-aiproxy-fallbacks": "no-such-model"},
                             json={"model": groups["prio"], "messages": HI})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    finally:
        _fault(fake_provider_url, "prio-a", None)


def test_a_first_byte_timeout_fails_over_to_the_next_deployment(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "slow-a", {"latency_ms": 3000})  # a's first_byte_timeout is 0.5 s
    try:
        response = _chat(gateways[0], secret, groups["slow"])
        streamed = _chat(gateways[0], secret, groups["slow"], stream=True)
    finally:
        _fault(fake_provider_url, "slow-a", None)
    for answer in (response, streamed):
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-aiproxy-deployment"] == f"{groups['slow']}/b"
        assert answer.headers["x-aiproxy-attempts"] == "2"


def test_a_request_timeout_header_shortens_the_wait(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "prio-a", {"latency_ms": 3000})
    try:
        response = httpx.post(f"{gateways[0]}/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {secret}", "x-aiproxy-timeout": "first_byte=0.5"},
                              json={"model": groups["prio"], "messages": HI})
    finally:
        _fault(fake_provider_url, "prio-a", None)
    assert response.status_code == 200
    assert response.headers["x-aiproxy-deployment"] == f"{groups['prio']}/b"  # a did not answer within 0.5 s
    bad = httpx.post(f"{gateways[0]}/v1/messages", timeout=30,
                     headers={"x-api-key": secret, "anthropic-version": "2023-06-01", "x-aiproxy-timeout": "soon"},
                     json={"model": groups["prio"], "max_tokens": 10, "messages": HI})
    assert bad.status_code == 400 and bad.json()["type"] == "error"  # Anthropic's error format
    assert "x-aiproxy-timeout" in bad.json()["error"]["message"]


def test_the_fallback_chain_crosses_api_formats(gateways, groups, secret, fake_provider_url):  # type: ignore[no-untyped-def]
    _fault(fake_provider_url, "chain", {"status": 503})
    try:
        client = openai_client(gateways[0], secret)
        raw = client.chat.completions.with_raw_response.create(model=groups["chain"], messages=HI)
        streamed = client.chat.completions.with_raw_response.create(model=groups["chain"], messages=HI, stream=True)
        chunks = list(streamed.parse())
    finally:
        _fault(fake_provider_url, "chain", None)
    assert raw.headers["x-aiproxy-deployment"].startswith("fake-anthropic/")  # an Anthropic upstream, translated
    answer = raw.parse()
    assert answer.choices[0].message.content and answer.model == groups["chain"]  # the name the client asked for
    assert streamed.headers["x-aiproxy-deployment"].startswith("fake-anthropic/")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_key_limited_to_some_groups_cannot_route_to_others(gateways, groups, django_db_blocker, make_workspace):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        workspace = make_workspace()
        _uncached(workspace)
        _, key_secret = api_key_create(workspace=workspace, name="narrow", allowed_models=[groups["narrow"]])
    client = openai_client(gateways[0], key_secret)
    assert client.chat.completions.create(model=groups["narrow"], messages=HI).choices[0].message.content
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=groups["prio"], messages=HI)
    assert caught.value.code == "model_not_found"
    assert [m.id for m in client.models.list()] == [groups["narrow"]]
    # a fallback named in the header is held to the same list
    response = httpx.post(f"{gateways[0]}/v1/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {key_secret}", "x-aiproxy-fallbacks": groups["prio"]},
                          json={"model": groups["narrow"], "messages": HI})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
