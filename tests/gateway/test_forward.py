"""gateway.hotpath.forward without servers: the per-request override headers, the
timeouts a request may shorten, and the route through a group and its fallbacks (which
deployment is tried next, when the attempts, the chain or the deadline run out, and the
503 that names the group when nothing can be tried)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.hotpath.directory import Deployment, ModelGroup, Timeouts
from gateway.hotpath.errors import GatewayError
from gateway.hotpath.forward import (
    MAX_ATTEMPTS_CAP,
    Route,
    attempts_bound,
    failover_worthy,
    overrides_check,
    overrides_parse,
    timeouts_apply,
)
from tests.gateway.deployments import deployment_make


class Board:
    """A health board where every deployment is healthy unless listed as open."""

    def __init__(self, open_ids: set[int] | None = None, probe_ids: set[int] | None = None) -> None:
        self.open_ids = open_ids or set()
        self.probe_ids = probe_ids or set()
        self.granted_ids: set[int] = set()

    def usable(self, deployment: Deployment) -> bool:
        return deployment.deployment_id not in self.open_ids

    async def probe(self, deployment: Deployment) -> bool:
        return deployment.deployment_id in self.probe_ids

    async def watch(self, deployments: tuple[Deployment, ...]) -> None:
        pass

    def health(self, deployment: Deployment):  # type: ignore[no-untyped-def]
        from gateway.hotpath.health import DeploymentHealth

        return DeploymentHealth()


def _group(name: str, *ids: int, **fields) -> ModelGroup:  # type: ignore[no-untyped-def]
    deployments = tuple(deployment_make(public_name=name, deployment_id=i, name=f"d{i}", priority=n)
                        for n, i in enumerate(ids))
    return ModelGroup(name=name, deployments=deployments, strategy="priority", **fields)


def _route(catalog: dict[str, ModelGroup], name: str, board: Board | None = None, **fields) -> Route:  # type: ignore[no-untyped-def]
    group = catalog[name]
    defaults = {"max_attempts": group.max_attempts, "deadline": time.monotonic() + 60, "fallbacks": list(group.fallbacks)}
    defaults.update(fields)
    return Route(board or Board(), catalog, group, 1, **defaults)  # type: ignore[arg-type]


def _error(status: int, code: str = "upstream_error", retry_after: str | None = None) -> GatewayError:
    return GatewayError(status, "x", type="api_error", code=code, headers={"retry-after": retry_after} if retry_after else None)


# --- override headers ------------------------------------------------------------------------------

def test_no_override_headers_is_none() -> None:
    assert overrides_parse({b"content-type": b"application/json"}) is None


def test_override_headers_parse() -> None:
    parsed = overrides_parse({b"x-aiproxy-fallbacks": b" a , b,", b"x-aiproxy-max-attempts": b"4",
                              b"x-aiproxy-timeout": b"connect=1.5,first_byte=3,total=20"})
    assert parsed is not None
    assert parsed.fallbacks == ("a", "b")
    assert parsed.max_attempts == 4
    assert parsed.timeouts == Timeouts(connect=1.5, first_byte=3.0, total=20.0)
    bare = overrides_parse({b"x-aiproxy-timeout": b"30"})
    assert bare is not None and bare.timeouts == Timeouts(total=30.0)


def test_the_workspace_cap_bounds_the_groups_and_the_headers_attempts() -> None:
    assert attempts_bound(3, None, None) == 3, "no cap: the group's setting"
    assert attempts_bound(3, 7, None) == 7, "no cap: the header's"
    assert attempts_bound(5, None, 2) == 2 and attempts_bound(3, 8, 4) == 4, "never above the workspace's cap"
    assert attempts_bound(3, 1, 4) == 1 and attempts_bound(2, None, 4) == 2, "a cap above what is asked changes nothing"


def test_override_headers_are_refused_when_the_workspace_turned_them_off() -> None:
    for name, value in ((b"x-aiproxy-fallbacks", b"a"), (b"x-aiproxy-max-attempts", b"2")):
        sent = overrides_parse({name: value})
        overrides_check(sent, allowed=True)
        with pytest.raises(GatewayError) as refused:
            overrides_check(sent, allowed=False)
        assert refused.value.status == 400 and refused.value.code == "overrides_not_allowed"
        assert name.decode() in refused.value.message and "workspace" in refused.value.message
    overrides_check(overrides_parse({b"x-aiproxy-timeout": b"5"}), allowed=False)  # it can only shorten timeouts
    overrides_check(None, allowed=False)


@pytest.mark.parametrize("name,value", [
    (b"x-aiproxy-max-attempts", b"0"),
    (b"x-aiproxy-max-attempts", str(MAX_ATTEMPTS_CAP + 1).encode()),
    (b"x-aiproxy-max-attempts", b"two"),
    (b"x-aiproxy-max-attempts", "٣".encode()),
    (b"x-aiproxy-max-attempts", b"-1"),
    (b"x-aiproxy-max-attempts", b""),
    (b"x-aiproxy-fallbacks", b"a,b,c,d,e,f"),
    (b"x-aiproxy-fallbacks", b"x" * 200),
    (b"x-aiproxy-timeout", b"0"),
    (b"x-aiproxy-timeout", b"-5"),
    (b"x-aiproxy-timeout", b"nan"),
    (b"x-aiproxy-timeout", b"inf"),
    (b"x-aiproxy-timeout", b"1e3"),
    (b"x-aiproxy-timeout", b"601"),
    (b"x-aiproxy-timeout", b"soon"),
    (b"x-aiproxy-timeout", b"connect=1,connect=2"),
    (b"x-aiproxy-timeout", b"read=5"),
    (b"x-aiproxy-timeout", b"total="),
])
def test_bad_override_headers_are_a_400_naming_the_header(name: bytes, value: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        overrides_parse({name: value})
    assert caught.value.status == 400
    assert caught.value.code == "invalid_header"
    assert name.decode() in caught.value.message


def test_a_request_may_shorten_timeouts_never_lengthen_them() -> None:
    deployment = deployment_make(timeouts=Timeouts(connect=5, first_byte=None, total=30))
    applied = timeouts_apply(deployment, Timeouts(connect=10, first_byte=2, total=20))
    assert applied.timeouts == Timeouts(connect=5, first_byte=2, total=20)
    assert timeouts_apply(deployment, None) is deployment


@pytest.mark.parametrize("status,code,worthy", [
    (429, "rate_limit_exceeded", True), (500, "x", True), (502, "upstream_unreachable", True), (503, "x", True),
    (504, "upstream_timeout", True), (529, "overloaded_error", True), (401, "upstream_auth_failed", True),
    (400, "invalid_request_error", False), (404, "model_not_found", False), (400, "context_length_exceeded", False),
])
def test_what_fails_over(status: int, code: str, worthy: bool) -> None:
    assert failover_worthy(_error(status, code)) is worthy


# --- the route -----------------------------------------------------------------------------------

def test_tries_each_deployment_then_the_fallback_group() -> None:
    catalog = {"a": _group("a", 1, 2, fallbacks=("b",)), "b": _group("b", 3)}
    route = _route(catalog, "a", max_attempts=5)

    async def walk() -> list[int]:
        tried = []
        for _ in range(3):
            deployment = await route.next()
            assert deployment is not None
            tried.append(deployment.deployment_id)
            route.failed(deployment, _error(503), 1)
        return tried

    assert asyncio.run(walk()) == [1, 2, 3]
    assert route.group.name == "b"
    assert "1 a/d1 503 upstream_error; 2 a/d2 503 upstream_error; 3 b/d3 503 upstream_error" == route.log()


def test_stops_at_the_attempt_limit() -> None:
    catalog = {"a": _group("a", 1, 2, 3)}
    route = _route(catalog, "a", max_attempts=2)

    async def walk() -> Deployment | None:
        for _ in range(2):
            deployment = await route.next()
            assert deployment is not None
            route.failed(deployment, _error(500), 1)
        return await route.next()

    assert asyncio.run(walk()) is None
    assert route.unavailable().status == 500  # the last upstream error goes to the client


def test_no_new_attempt_after_the_deadline() -> None:
    catalog = {"a": _group("a", 1, 2)}
    route = _route(catalog, "a", deadline=time.monotonic() - 1)
    assert asyncio.run(route.next()) is None


def test_open_circuits_get_no_traffic_and_all_open_fails_fast_naming_the_group() -> None:
    catalog = {"a": _group("a", 1, 2)}
    route = _route(catalog, "a", Board(open_ids={1}))
    first = asyncio.run(route.next())
    assert first is not None and first.deployment_id == 2

    route = _route(catalog, "a", Board(open_ids={1, 2}))
    assert asyncio.run(route.next()) is None
    error = route.unavailable()
    assert error.status == 503 and error.code == "deployments_unavailable" and "'a'" in error.message


def test_an_open_circuit_past_its_cooldown_takes_the_probe() -> None:
    catalog = {"a": _group("a", 1, 2)}
    route = _route(catalog, "a", Board(open_ids={1, 2}, probe_ids={2}))
    chosen = asyncio.run(route.next())
    assert chosen is not None and chosen.deployment_id == 2


def test_an_unknown_fallback_is_skipped() -> None:
    catalog = {"a": _group("a", 1, fallbacks=("missing", "b")), "b": _group("b", 2)}
    route = _route(catalog, "a")

    async def walk() -> Deployment | None:
        deployment = await route.next()
        assert deployment is not None
        route.failed(deployment, _error(503), 1)
        return await route.next()

    chosen = asyncio.run(walk())
    assert chosen is not None and chosen.deployment_id == 2


def test_a_lone_deployment_is_retried_after_a_backoff_honouring_retry_after() -> None:
    catalog = {"a": _group("a", 1)}
    route = _route(catalog, "a", max_attempts=2)

    async def walk() -> tuple[Deployment | None, float]:
        deployment = await route.next()
        assert deployment is not None
        route.failed(deployment, _error(429, "rate_limit_exceeded", retry_after="1"), 1)
        started = time.monotonic()
        again = await route.next()
        return again, time.monotonic() - started

    again, waited = asyncio.run(walk())
    assert again is not None and again.deployment_id == 1
    assert waited >= 0.9  # Retry-After: 1 was honoured before the same deployment was tried again


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    catalog = {"a": _group("a", 1)}
    route = _route(catalog, "a", deadline=time.monotonic() + 0.5)

    async def walk() -> Deployment | None:
        deployment = await route.next()
        assert deployment is not None
        route.failed(deployment, _error(429, "rate_limit_exceeded", retry_after="20"), 1)
        return await route.next()

    assert asyncio.run(walk()) is None


# --- attempts_run: what each upstream answer leads to ------------------------------------------------

class Recorded:
    """The parts of a request context attempts_run touches."""

    def __init__(self) -> None:
        from gateway.hotpath.record import UsageRecord

        self.ended: list[tuple[int, str]] = []
        board = Board()
        board.begin = lambda d: None  # type: ignore[attr-defined]
        board.end = lambda d, outcome, **_: self.ended.append((d.deployment_id, outcome))  # type: ignore[attr-defined]
        self.state = type("State", (), {"board": board})()
        self.event = UsageRecord(schema="s", key_id=1, key_name="k", endpoint="chat.completions")


def _run(route: Route, answers: dict[int, GatewayError | str], prepare_fails: set[int] | None = None):  # type: ignore[no-untyped-def]
    from gateway.hotpath.forward import attempts_run

    ctx = Recorded()

    def prepare(deployment: Deployment) -> int:
        if prepare_fails and deployment.deployment_id in prepare_fails:
            raise GatewayError(400, "no", code="unsupported_parameter")
        return deployment.deployment_id

    async def call(deployment: Deployment, prepared: int) -> str:
        answer = answers[prepared]
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    result = asyncio.run(attempts_run(ctx, route, prepare, call, None))  # type: ignore[arg-type]
    return ctx, result


def test_a_content_policy_refusal_goes_to_the_groups_content_policy_fallback() -> None:
    catalog = {"a": _group("a", 1, content_policy_fallback="safe"), "safe": _group("safe", 2)}
    ctx, (deployment, _, answer, served, _) = _run(
        _route(catalog, "a"), {1: _error(400, "content_policy_violation"), 2: "answered"})
    assert (deployment.deployment_id, answer) == (2, "answered")
    assert dict(served)[b"x-aiproxy-deployment"] == b"safe/d2" and dict(served)[b"x-aiproxy-attempts"] == b"2"
    assert ctx.ended == [(1, "ok")]  # a refusal is an answer: no mark against the deployment's health
    assert ctx.event.attempt_log == "1 a/d1 400 content_policy_violation; 2 safe/d2 ok"


def test_without_a_content_policy_fallback_the_refusal_goes_to_the_client() -> None:
    catalog = {"a": _group("a", 1, 2)}
    with pytest.raises(GatewayError) as caught:
        _run(_route(catalog, "a"), {1: _error(400, "content_policy_violation"), 2: "never"})
    assert caught.value.code == "content_policy_violation"


def test_an_upstream_context_overflow_goes_to_the_context_fallback() -> None:
    catalog = {"a": _group("a", 1, context_fallback="wide"), "wide": _group("wide", 2)}
    _, (deployment, _, _, _, _) = _run(_route(catalog, "a"), {1: _error(400, "context_length_exceeded"), 2: "ok"})
    assert deployment.deployment_id == 2


def test_the_requests_own_fault_is_not_retried() -> None:
    catalog = {"a": _group("a", 1, 2)}
    with pytest.raises(GatewayError) as caught:
        _run(_route(catalog, "a"), {1: _error(400, "invalid_value"), 2: "never"})
    assert caught.value.status == 400


def test_a_fallback_that_cannot_take_the_request_is_skipped_and_not_the_error_returned() -> None:
    catalog = {"a": _group("a", 1, fallbacks=("other", "last")), "other": _group("other", 2), "last": _group("last", 3)}
    ctx, (deployment, _, _, _, _) = _run(_route(catalog, "a", max_attempts=2),
                                         {1: _error(503), 2: "never", 3: "answered"}, prepare_fails={2})
    assert deployment.deployment_id == 3
    assert ctx.event.attempts == 2  # the skipped one was never called: not an attempt
    assert "2 other/d2 skipped unsupported_parameter" in ctx.event.attempt_log
    catalog = {"a": _group("a", 1, fallbacks=("other",)), "other": _group("other", 2)}
    with pytest.raises(GatewayError) as caught:
        _run(_route(catalog, "a", max_attempts=1), {1: _error(503), 2: "never"}, prepare_fails={2})
    assert caught.value.status == 503  # the client gets the upstream's error, not the skipped fallback's 400
