"""Faults per deployment in the fake provider: directives in the model name (where a
deployment's upstream name goes), named faults switched through /control/faults, the
`rate` share and the per-model request counts of /stats, on every wire format."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest


@dataclass(frozen=True)
class Wire:
    """How to ask one wire format for a chat answer and read what comes back."""

    name: str
    path: Callable[[str], str]
    body: Callable[[str, str], dict[str, Any]]
    headers: dict[str, str]
    words: Callable[[dict[str, Any]], int]  # the answer's word count
    echo: Callable[[dict[str, Any]], str | None]  # the model name the answer echoes, if the wire echoes one
    error_kind: Callable[[dict[str, Any]], str]  # the error's kind, as the wire names it


def _openai_body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


OPENAI = Wire(
    "openai",
    lambda model: "/v1/chat/completions",
    _openai_body,
    {},
    lambda a: len(a["choices"][0]["message"]["content"].split()),
    lambda a: a["model"],
    lambda e: e["error"]["type"],
)
AZURE = Wire(
    "azure",
    lambda model: f"/openai/deployments/{model}/chat/completions?api-version=2024-10-21",
    lambda model, text: {"messages": [{"role": "user", "content": text}]},
    {},
    lambda a: len(a["choices"][0]["message"]["content"].split()),
    lambda a: a["model"],
    lambda e: e["error"]["type"],
)
ANTHROPIC = Wire(
    "anthropic",
    lambda model: "/v1/messages",
    lambda model, text: {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]},
    {"anthropic-version": "2023-06-01"},
    lambda a: len(a["content"][0]["text"].split()),
    lambda a: a["model"],
    lambda e: f"{e['type']}:{e['error']['type']}",
)
GEMINI = Wire(
    "gemini",
    lambda model: f"/v1beta/models/{model}:generateContent",
    lambda model, text: {"contents": [{"role": "user", "parts": [{"text": text}]}]},
    {},
    lambda a: len(a["candidates"][0]["content"]["parts"][0]["text"].split()),
    lambda a: a["modelVersion"],
    lambda e: e["error"]["status"],
)
COHERE = Wire(
    "cohere",
    lambda model: "/v2/chat",
    _openai_body,
    {"authorization": "Bearer test"},
    lambda a: len(a["message"]["content"][0]["text"].split()),
    lambda a: None,
    lambda e: "cohere" if set(e) == {"id", "message"} else "other",
)
WIRES = [OPENAI, AZURE, ANTHROPIC, GEMINI, COHERE]
# what a 503 looks like in each wire's own error format
OVERLOADED = {
    "openai": "server_error",
    "azure": "server_error",
    "anthropic": "error:api_error",
    "gemini": "UNAVAILABLE",
    "cohere": "cohere",
}


def _ask(url: str, wire: Wire, model: str, text: str = "hello there", **kwargs: Any) -> httpx.Response:
    return httpx.post(url + wire.path(model), json=wire.body(model, text), headers=wire.headers, **kwargs)


def _unique(base: str = "gpt-4o-mini-fake") -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fault(fake_provider_url: str) -> Iterator[str]:
    """A fresh fault name, cleared after the test (the fake is shared by the session)."""
    name = "test-" + uuid.uuid4().hex[:10]
    yield name
    httpx.delete(f"{fake_provider_url}/control/faults/{name}")


def _fault_set(url: str, name: str, body: Any) -> httpx.Response:
    return httpx.put(f"{url}/control/faults/{name}", json=body)


# --- directives in the model name -------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
def test_status_directive_in_the_model_name_fails_in_the_wires_error_format(fake_provider_url, wire):  # type: ignore[no-untyped-def]
    response = _ask(fake_provider_url, wire, _unique() + "[[fake:status=503]]")
    assert response.status_code == 503
    assert wire.error_kind(response.json()) == OVERLOADED[wire.name]
    assert response.headers.get("retry-after") == ("1" if wire.name != "anthropic" else None)


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
def test_model_name_directives_shape_the_answer_and_are_not_echoed(fake_provider_url, wire):  # type: ignore[no-untyped-def]
    model = _unique()
    response = _ask(fake_provider_url, wire, model + "[[fake:words=3]]")
    assert response.status_code == 200, response.text
    assert wire.words(response.json()) == 3
    assert wire.echo(response.json()) in (model, None)


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
def test_prompt_directive_wins_over_the_model_names(fake_provider_url, wire):  # type: ignore[no-untyped-def]
    model = _unique() + "[[fake:words=3]][[fake:status=500]]"
    assert _ask(fake_provider_url, wire, model, "hello [[fake:status=429]]").status_code == 429
    model = _unique() + "[[fake:words=3]]"
    assert wire.words(_ask(fake_provider_url, wire, model, "hello [[fake:words=5]]").json()) == 5


def test_gemini_model_in_a_percent_encoded_path_is_decoded(fake_provider_url):  # type: ignore[no-untyped-def]
    model = _unique("gemini-2.5-flash-fake")
    encoded = quote(model + "[[fake:status=429]]", safe="")
    assert "%5B%5Bfake%3A" in encoded
    response = httpx.post(f"{fake_provider_url}/v1beta/models/{encoded}:generateContent", json=GEMINI.body(model, "hi"))
    assert response.status_code == 429 and response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    healthy = httpx.post(
        f"{fake_provider_url}/v1beta/models/{quote(model + '[[fake:words=4]]', safe='')}:generateContent",
        json=GEMINI.body(model, "hi"),
    )
    assert healthy.json()["modelVersion"] == model and GEMINI.words(healthy.json()) == 4


def test_embeddings_obey_model_name_directives(fake_provider_url):  # type: ignore[no-untyped-def]
    model = _unique("text-embedding-3-small")
    failed = httpx.post(
        fake_provider_url + "/v1/embeddings", json={"model": model + "[[fake:status=503]]", "input": "x"}
    )
    assert failed.status_code == 503
    ok = httpx.post(fake_provider_url + "/v1/embeddings", json={"model": model + "[[fake:words=1]]", "input": "x"})
    assert ok.status_code == 200 and ok.json()["model"] == model


# --- named faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.name)
def test_named_fault_switches_a_deployment_off_and_on(fake_provider_url, fault, wire):  # type: ignore[no-untyped-def]
    model = f"{_unique()}[[fake:fault={fault}]]"
    assert _ask(fake_provider_url, wire, model).status_code == 200  # nothing set yet: healthy
    assert _fault_set(fake_provider_url, fault, {"status": 503}).status_code == 200
    failed = _ask(fake_provider_url, wire, model)
    assert failed.status_code == 503 and wire.error_kind(failed.json()) == OVERLOADED[wire.name]
    cleared = httpx.delete(f"{fake_provider_url}/control/faults/{fault}")
    assert cleared.json() == {"name": fault, "cleared": True}
    assert _ask(fake_provider_url, wire, model).status_code == 200


def test_named_fault_in_the_prompt_and_other_names_stay_healthy(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    _fault_set(fake_provider_url, fault, {"status": 429})
    assert _ask(fake_provider_url, OPENAI, _unique(), f"hi [[fake:fault={fault}]]").status_code == 429
    assert _ask(fake_provider_url, OPENAI, _unique(), f"hi [[fake:fault={fault}-other]]").status_code == 200


def test_faults_are_listed_and_read_back_as_set(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    body = {"status": 503, "rate": 0.25, "latency_ms": 20}
    assert _fault_set(fake_provider_url, fault, body).json() == {"name": fault, "fault": body}
    assert httpx.get(f"{fake_provider_url}/control/faults").json()["faults"][fault] == body
    assert httpx.get(f"{fake_provider_url}/control/faults/{fault}").json() == {"name": fault, "fault": body}
    _fault_set(fake_provider_url, fault, {"hang": True, "reset": False})
    assert httpx.get(f"{fake_provider_url}/control/faults/{fault}").json()["fault"] == {"hang": True}
    httpx.delete(f"{fake_provider_url}/control/faults/{fault}")
    assert httpx.get(f"{fake_provider_url}/control/faults/{fault}").status_code == 404
    assert fault not in httpx.get(f"{fake_provider_url}/control/faults").json()["faults"]
    assert httpx.delete(f"{fake_provider_url}/control/faults/{fault}").json()["cleared"] is False


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        [503],
        {"status": "503"},
        {"status": 200},
        {"status": True},
        {"rate": 1.5},
        {"rate": "0.3"},
        {"hang": "yes"},
        {"latency_ms": -1},
        {"colour": "red"},
    ],
)
def test_bad_fault_bodies_are_refused_with_a_json_400(fake_provider_url, fault, body):  # type: ignore[no-untyped-def]
    content = body.encode() if isinstance(body, str) else httpx.Request("PUT", "/", json=body).content
    response = httpx.put(f"{fake_provider_url}/control/faults/{fault}", content=content)
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert httpx.get(f"{fake_provider_url}/control/faults/{fault}").status_code == 404  # nothing was set


def test_bad_fault_names_and_methods_are_refused(fake_provider_url):  # type: ignore[no-untyped-def]
    assert httpx.put(f"{fake_provider_url}/control/faults/a%20b", json={"status": 503}).status_code == 400
    assert httpx.post(f"{fake_provider_url}/control/faults/ok-name", json={"status": 503}).status_code == 405
    assert httpx.get(f"{fake_provider_url}/control/faultsx").status_code == 404


def test_reset_fault_drops_the_connection_before_any_byte(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    _fault_set(fake_provider_url, fault, {"reset": True})
    with pytest.raises(httpx.TransportError):
        _ask(fake_provider_url, OPENAI, f"{_unique()}[[fake:fault={fault}]]")


def test_hang_fault_never_answers(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    _fault_set(fake_provider_url, fault, {"hang": True})
    with pytest.raises(httpx.ReadTimeout):
        _ask(fake_provider_url, ANTHROPIC, f"{_unique()}[[fake:fault={fault}]]", timeout=1)


def test_cut_fault_drops_streams_halfway(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    _fault_set(fake_provider_url, fault, {"cut": True})
    model = f"{_unique()}[[fake:fault={fault}]]"
    assert _ask(fake_provider_url, OPENAI, model, "a long answer [[fake:words=50]]").status_code == 200  # not a stream
    body = {**_openai_body(model, "a long answer [[fake:words=50]]"), "stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", fake_provider_url + "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                pass


# --- rate and counts --------------------------------------------------------------------------


def _failure_share(url: str, model: str, count: int = 200) -> float:
    with httpx.Client(base_url=url) as client:
        failed = sum(
            client.post("/v1/chat/completions", json=_openai_body(model, "hi")).status_code == 503 for _ in range(count)
        )
    return failed / count


def test_named_fault_rate_fails_about_that_share(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    _fault_set(fake_provider_url, fault, {"status": 503, "rate": 0.3})
    assert 0.1 <= _failure_share(fake_provider_url, f"{_unique()}[[fake:fault={fault}]]") <= 0.5


def test_rate_directive_fails_about_that_share(fake_provider_url):  # type: ignore[no-untyped-def]
    assert 0.1 <= _failure_share(fake_provider_url, f"{_unique()}[[fake:status=503]][[fake:rate=0.3]]") <= 0.5


def test_stats_count_requests_per_model_name(fake_provider_url, fault):  # type: ignore[no-untyped-def]
    healthy, broken = _unique(), f"{_unique()}[[fake:fault={fault}]]"
    _fault_set(fake_provider_url, fault, {"status": 503})
    for _ in range(3):
        _ask(fake_provider_url, OPENAI, healthy)
    for wire in (ANTHROPIC, GEMINI):
        _ask(fake_provider_url, wire, broken)
    by_model = httpx.get(fake_provider_url + "/stats").json()["by_model"]
    assert by_model[healthy] == 3 and by_model[broken] == 2
