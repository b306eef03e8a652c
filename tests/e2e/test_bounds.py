"""Bounds on what reaches an upstream, with the official SDKs against the running gateway:
a size over a model's bound (n, max_tokens, dimensions, ...) is a 400 in the client's own
format naming the parameter and the limit; a bound changed in admin takes effect; and the
fake provider refuses sizes near 2**31 on its own, staying alive and small."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import cohere
import httpx
import openai
import pytest
from django.test import Client
from google import genai
from google.genai import errors, types

from gateway.catalog.models import Model, Provider
from gateway.catalog.services import model_group_create
from gateway.hotpath.bounds import DEFAULT_BOUNDS
from tests.e2e.sdk import UPSTREAMS
from tests.gateway.admin_forms import inline_rows
from tests.servers import ROOT, free_port, process_stop, wait_http

HUGE = 2**31 - 1
HI: Any = [{"role": "user", "content": "hi"}]  # typed loosely: each SDK has its own message type
MAX_OUTPUT = DEFAULT_BOUNDS.max_output_tokens
MAX_DIMENSIONS = DEFAULT_BOUNDS.max_embedding_dimensions


def _openai(gateway_url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, max_retries=0, timeout=20)


def _anthropic(gateway_url: str, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway_url, api_key=secret, max_retries=0, timeout=20)


def _gemini(gateway_url: str, secret: str) -> genai.Client:
    return genai.Client(
        api_key=secret,
        http_options=types.HttpOptions(
            base_url=gateway_url, api_version="v1beta", timeout=20_000, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def _cohere(gateway_url: str, secret: str) -> cohere.ClientV2:
    return cohere.ClientV2(api_key=secret, base_url=gateway_url, max_retries=0, timeout=20)


# --- the default bounds, in each API ------------------------------------------------------------


@pytest.mark.parametrize("model", UPSTREAMS)
def test_openai_sdk_n_near_2_31_is_a_400_naming_n_and_its_limit(gateway_url, sdk_key, model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gateway_url, sdk_key[1]).chat.completions.create(model=model, messages=HI, n=HUGE)
    error = caught.value
    assert error.status_code == 400 and error.param == "n" and error.code == "integer_above_max_value"
    assert f"maximum of {DEFAULT_BOUNDS.max_n}" in error.message


@pytest.mark.parametrize(
    ("size", "param"),
    [
        ({"max_tokens": HUGE}, "max_tokens"),
        ({"max_completion_tokens": HUGE}, "max_completion_tokens"),
        ({"logprobs": True, "top_logprobs": HUGE}, "top_logprobs"),
        ({"logit_bias": {str(i): 1 for i in range(DEFAULT_BOUNDS.max_logit_bias + 1)}}, "logit_bias"),
        ({"stop": [f"stop{i}" for i in range(DEFAULT_BOUNDS.max_stop_sequences + 1)]}, "stop"),
    ],
)
@pytest.mark.parametrize("model", ["fake-openai", "fake-anthropic"])
def test_openai_sdk_every_chat_size_over_its_bound_is_a_400_naming_it(gateway_url, sdk_key, model, size, param) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(gateway_url, sdk_key[1]).chat.completions.create(model=model, messages=HI, **size)
    assert caught.value.param == param and f"'{param}'" in caught.value.message


def test_openai_sdk_embedding_dimensions_and_inputs_over_their_bounds_are_400s(gateway_url, sdk_key) -> None:  # type: ignore[no-untyped-def]
    client = _openai(gateway_url, sdk_key[1])
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="fake-embed", input="hello", dimensions=HUGE)
    assert caught.value.param == "dimensions" and f"maximum of {MAX_DIMENSIONS}" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="fake-embed", input=["hi"] * (DEFAULT_BOUNDS.max_embedding_inputs + 1))
    assert caught.value.param == "input" and f"maximum of {DEFAULT_BOUNDS.max_embedding_inputs}" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="fake-embed", input=[[1, 2]] * (DEFAULT_BOUNDS.max_embedding_inputs + 1))
    assert caught.value.param == "input" and f"maximum of {DEFAULT_BOUNDS.max_embedding_inputs}" in caught.value.message
    answer = client.embeddings.create(model="fake-embed", input="hello", dimensions=64)
    assert len(answer.data[0].embedding) == 64, "a size within the bound is served"


@pytest.mark.parametrize("model", ["fake-anthropic", "fake-openai"])  # native pass-through, translated
def test_anthropic_sdk_max_tokens_and_stop_sequences_over_their_bounds_are_400s(gateway_url, sdk_key, model) -> None:  # type: ignore[no-untyped-def]
    client = _anthropic(gateway_url, sdk_key[1])
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=model, max_tokens=HUGE, messages=HI)
    assert caught.value.status_code == 400 and caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "'max_tokens'" in caught.value.message and f"maximum of {MAX_OUTPUT}" in caught.value.message
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=model,
            max_tokens=100,
            messages=HI,
            stop_sequences=[f"s{i}" for i in range(DEFAULT_BOUNDS.max_stop_sequences + 1)],
        )
    assert "'stop_sequences'" in caught.value.message


def test_anthropic_sdk_thinking_budget_over_the_output_bound_is_a_400(gateway_url, sdk_key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(anthropic.BadRequestError) as caught:
        _anthropic(gateway_url, sdk_key[1]).messages.create(
            model="fake-anthropic",
            max_tokens=1000,
            messages=HI,
            thinking={"type": "enabled", "budget_tokens": HUGE},
        )
    assert "'thinking.budget_tokens'" in caught.value.message


def test_gemini_sdk_output_tokens_and_dimensions_over_their_bounds_are_400s(gateway_url, sdk_key) -> None:  # type: ignore[no-untyped-def]
    client = _gemini(gateway_url, sdk_key[1])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="fake-openai", contents="hi", config=types.GenerateContentConfig(max_output_tokens=HUGE)
        )
    assert caught.value.code == 400 and "maxOutputTokens" in (caught.value.message or "")
    assert f"maximum of {MAX_OUTPUT}" in (caught.value.message or "")
    with pytest.raises(errors.ClientError) as caught:
        client.models.embed_content(
            model="fake-embed", contents="hi", config=types.EmbedContentConfig(output_dimensionality=HUGE)
        )
    assert caught.value.code == 400 and "outputDimensionality" in (caught.value.message or "")


def test_cohere_sdk_max_tokens_and_output_dimension_over_their_bounds_are_400s(gateway_url, sdk_key) -> None:  # type: ignore[no-untyped-def]
    client = _cohere(gateway_url, sdk_key[1])
    with pytest.raises(cohere.BadRequestError) as caught:
        client.chat(model="fake-cohere", messages=HI, max_tokens=HUGE)
    assert "'max_tokens'" in str(caught.value.body) and f"maximum of {MAX_OUTPUT}" in str(caught.value.body)
    with pytest.raises(cohere.BadRequestError) as caught:
        client.embed(
            model="fake-embed",
            texts=["hi"],
            input_type="search_document",
            embedding_types=["float"],
            output_dimension=HUGE,
        )
    assert "'output_dimension'" in str(caught.value.body)


# --- bounds set in admin -----------------------------------------------------------------------


def _admin_client(make_user) -> Client:  # type: ignore[no-untyped-def]
    user = make_user()
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _admin_set_bounds(client: Client, model: Model, **bounds: int) -> None:
    form: dict[str, Any] = {
        "public_name": model.public_name,
        "strategy": model.strategy,
        "max_attempts": str(model.max_attempts),
        "retry_deadline_seconds": str(model.retry_deadline_seconds),
        "context_window": "",
        "enabled": "on",
        "rpm_limit": "",
        "tpm_limit": "",
        **{name: str(value) for name, value in bounds.items()},
        **inline_rows("deployments", []),  # the deployments stay as they are
        **inline_rows("fallback_links", []),
    }
    response = client.post(f"/admin/gateway/model/{model.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]


def _eventually(check: Callable[[], bool]) -> bool:
    """Whether `check` holds within a few seconds (the gateway re-reads the catalog each second)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def bounded_models(fake_models) -> Iterator[tuple[Model, Model]]:  # type: ignore[no-untyped-def]
    suffix = str(time.monotonic_ns())[-8:]
    openai_model = model_group_create(
        public_name=f"bounded-openai-{suffix}",
        upstream_name="gpt-4o-mini-fake",
        provider=Provider.objects.get(name="fake"),
    )
    anthropic_model = model_group_create(
        public_name=f"bounded-anthropic-{suffix}",
        upstream_name="claude-fake",
        provider=Provider.objects.get(name="fake-anthropic"),
    )
    yield openai_model, anthropic_model
    Model.objects.filter(pk__in=[openai_model.pk, anthropic_model.pk]).delete()


def test_bounds_changed_in_admin_take_effect_in_every_api(gateway_url, sdk_key, make_user, bounded_models) -> None:  # type: ignore[no-untyped-def]
    openai_model, anthropic_model = bounded_models
    admin = _admin_client(make_user)
    _admin_set_bounds(admin, openai_model, max_n=2, max_output_tokens=50, max_embedding_dimensions=32)
    _admin_set_bounds(admin, anthropic_model, max_output_tokens=1000)
    secret = sdk_key[1]
    client = _openai(gateway_url, secret)

    def refuses_three_choices() -> bool:
        try:
            client.chat.completions.create(model=openai_model.public_name, messages=HI, n=3)
        except openai.BadRequestError as error:
            return error.param == "n" and "maximum of 2" in error.message
        except openai.NotFoundError:
            return False  # the gateway has not read the new catalog yet
        return False

    assert _eventually(refuses_three_choices)
    answer = client.chat.completions.create(model=openai_model.public_name, messages=HI, n=2)
    assert len(answer.choices) == 2, "at the bound is served"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=openai_model.public_name, input="hi", dimensions=33)
    assert caught.value.param == "dimensions" and "maximum of 32" in caught.value.message
    gemini = _gemini(gateway_url, secret)  # kept: the SDK closes its HTTP client when the Client is collected
    with pytest.raises(errors.ClientError) as gemini_error:
        gemini.models.generate_content(
            model=openai_model.public_name, contents="hi", config=types.GenerateContentConfig(candidate_count=3)
        )
    assert gemini_error.value.code == 400 and "candidateCount" in (gemini_error.value.message or "")
    assert "maximum of 2" in (gemini_error.value.message or "")
    with pytest.raises(cohere.BadRequestError) as cohere_error:
        _cohere(gateway_url, secret).chat(model=openai_model.public_name, messages=HI, max_tokens=51)
    assert "maximum of 50" in str(cohere_error.value.body)
    # the native Anthropic path: the client's body goes up untouched, but not over the bound
    messages = _anthropic(gateway_url, secret).messages
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        messages.create(model=anthropic_model.public_name, max_tokens=1001, messages=HI)
    assert "'max_tokens'" in anthropic_error.value.message and "maximum of 1000" in anthropic_error.value.message
    reply = messages.create(model=anthropic_model.public_name, max_tokens=1000, messages=HI)
    assert reply.content[0].type == "text"


def test_fake_provider_refuses_what_an_operator_let_through(
    gateway_url, sdk_key, make_user, bounded_models, fake_provider_url
) -> None:  # type: ignore[no-untyped-def]
    """With the gateway's bounds raised to the most admin accepts, sizes near 2**31 reach the
    fake provider, which refuses them in its own format and keeps serving."""
    openai_model, _ = bounded_models
    _admin_set_bounds(_admin_client(make_user), openai_model, max_n=HUGE, max_embedding_dimensions=HUGE)
    client = _openai(gateway_url, sdk_key[1])

    def upstream_refuses_n() -> bool:
        try:
            client.chat.completions.create(model=openai_model.public_name, messages=HI, n=HUGE)
        except openai.BadRequestError as error:
            return "from 1 to 128" in error.message
        except openai.NotFoundError:
            return False  # the gateway has not read the new catalog yet
        return False

    assert _eventually(upstream_refuses_n)
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=openai_model.public_name, input="hi", dimensions=HUGE)
    assert caught.value.param == "dimensions"
    assert httpx.get(fake_provider_url + "/health").json() == {"ok": True}
    assert client.chat.completions.create(model="fake-openai", messages=HI).choices[0].message.content


# --- the fake provider on its own --------------------------------------------------------------

MEMORY_CAP = 1 << 30  # address space for the fake: a runaway allocation fails fast instead of swapping the machine


def _memory_capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.fixture
def capped_fake() -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.fake_provider:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        preexec_fn=_memory_capped,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health", proc)
    yield url, proc.pid
    process_stop(proc)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_fake_provider_refuses_sizes_near_2_31_and_stays_alive_and_small(capped_fake) -> None:  # type: ignore[no-untyped-def]
    url, pid = capped_fake
    headers = {"authorization": "Bearer k", "x-api-key": "k", "x-goog-api-key": "k"}

    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(url + path, json=body, headers=headers, timeout=30)

    chat = post("/v1/chat/completions", {"model": "m", "messages": HI, "n": HUGE})
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "n"
    azure = post("/openai/deployments/d/chat/completions?api-version=2024-10-21", {"messages": HI, "n": 2**31})
    assert azure.status_code == 400 and azure.json()["error"]["param"] == "n"
    embed = post("/v1/embeddings", {"model": "m", "input": "hi", "dimensions": HUGE})
    assert embed.status_code == 400 and embed.json()["error"]["param"] == "dimensions"
    many = post("/v1/embeddings", {"model": "m", "input": ["hi"] * 2000, "dimensions": 4096})
    assert many.status_code == 400, "inputs x dimensions are bounded too"
    gemini = post(
        "/v1beta/models/g:embedContent", {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": HUGE}
    )
    assert gemini.status_code == 400 and gemini.json()["error"]["status"] == "INVALID_ARGUMENT"
    gemini_batch = post(
        "/v1beta/models/g:batchEmbedContents",
        {"requests": [{"model": "models/g", "content": {"parts": [{"text": "hi"}]}, "outputDimensionality": HUGE}]},
    )
    assert gemini_batch.status_code == 400
    words = post(
        "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": f"[[fake:words={HUGE}]]"}]}
    )
    assert words.status_code == 200, "the words directive is capped, not obeyed"
    assert httpx.get(url + "/health").json() == {"ok": True}
    assert _rss_mb(pid) < 300, f"the fake grew to {_rss_mb(pid):.0f} MB"
    served = post("/v1/embeddings", {"model": "m", "input": ["a", "b"], "dimensions": 256})
    assert served.status_code == 200 and len(served.json()["data"][1]["embedding"]) == 256
