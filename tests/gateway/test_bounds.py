"""gateway.hotpath.bounds: every size a client can ask an upstream for, under every name its inbound
API gives it, is checked against the model's bounds; over a bound is a 400 naming the
parameter and the limit, in the client's own error format."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.hotpath.bounds import DEFAULT_BOUNDS, RequestBounds, chat_bounds_check, embeddings_bounds_check
from gateway.hotpath.directory import Deployment, _groups_from_snapshot
from gateway.hotpath.errors import GatewayError
from gateway.hotpath.inbound import inbound_for
from tests.gateway.deployments import deployment_make

HUGE = 2**31 - 1
HI = [{"role": "user", "content": "hi"}]
GEMINI_HI = [{"role": "user", "parts": [{"text": "hi"}]}]


def _deployment(**bounds: int) -> Deployment:
    return deployment_make(public_name="bounded", upstream_name="up", provider_kind="openai", bounds=RequestBounds(**bounds))


def _chat_refusal(wire: str, body: dict[str, Any], deployment: Deployment | None = None) -> GatewayError:
    """The error for a raw client body, parsed by its inbound API as the gateway parses it."""
    request = inbound_for(wire).chat_request_parse(orjson.dumps(body), model="bounded", stream=False)
    with pytest.raises(GatewayError) as caught:
        chat_bounds_check(wire, request.native, deployment or _deployment())
    return caught.value


def _embed_refusal(wire: str, body: dict[str, Any], deployment: Deployment | None = None) -> GatewayError:
    request = inbound_for(wire).embeddings_request_parse(orjson.dumps(body), model="bounded")
    with pytest.raises(GatewayError) as caught:
        embeddings_bounds_check(wire, request.native, deployment or _deployment())
    return caught.value


OPENAI = {"model": "bounded", "messages": HI}
ANTHROPIC = {"model": "bounded", "messages": HI, "max_tokens": 100}
COHERE = {"model": "bounded", "messages": HI}

# (inbound API, client body, the parameter the 400 names, the limit it names)
CHAT_OVER = [
    ("openai", {**OPENAI, "n": HUGE}, "n", DEFAULT_BOUNDS.max_n),
    ("openai", {**OPENAI, "best_of": HUGE}, "best_of", DEFAULT_BOUNDS.max_n),
    ("openai", {**OPENAI, "max_tokens": HUGE}, "max_tokens", DEFAULT_BOUNDS.max_output_tokens),
    ("openai", {**OPENAI, "max_completion_tokens": HUGE}, "max_completion_tokens", DEFAULT_BOUNDS.max_output_tokens),
    ("openai", {**OPENAI, "min_tokens": HUGE}, "min_tokens", DEFAULT_BOUNDS.max_output_tokens),
    ("openai", {**OPENAI, "logprobs": True, "top_logprobs": HUGE}, "top_logprobs", DEFAULT_BOUNDS.max_top_logprobs),
    ("openai", {**OPENAI, "logit_bias": {str(i): 1 for i in range(301)}}, "logit_bias", DEFAULT_BOUNDS.max_logit_bias),
    ("openai", {**OPENAI, "stop": [f"s{i}" for i in range(17)]}, "stop", DEFAULT_BOUNDS.max_stop_sequences),
    ("anthropic", {**ANTHROPIC, "max_tokens": HUGE}, "max_tokens", DEFAULT_BOUNDS.max_output_tokens),
    (
        "anthropic",
        {**ANTHROPIC, "thinking": {"type": "enabled", "budget_tokens": HUGE}},
        "thinking.budget_tokens",
        DEFAULT_BOUNDS.max_output_tokens,
    ),
    (
        "anthropic",
        {**ANTHROPIC, "stop_sequences": [f"s{i}" for i in range(17)]},
        "stop_sequences",
        DEFAULT_BOUNDS.max_stop_sequences,
    ),
    (
        "gemini",
        {"contents": GEMINI_HI, "generationConfig": {"maxOutputTokens": HUGE}},
        "generationConfig.maxOutputTokens",
        DEFAULT_BOUNDS.max_output_tokens,
    ),
    # protobuf JSON: snake_case names and 64-bit integers as strings say the same
    (
        "gemini",
        {"contents": GEMINI_HI, "generation_config": {"max_output_tokens": str(HUGE)}},
        "generationConfig.maxOutputTokens",
        DEFAULT_BOUNDS.max_output_tokens,
    ),
    ("cohere", {**COHERE, "max_tokens": HUGE}, "max_tokens", DEFAULT_BOUNDS.max_output_tokens),
]


@pytest.mark.parametrize(("wire", "body", "param", "limit"), CHAT_OVER, ids=[f"{c[0]}-{c[2]}" for c in CHAT_OVER])
def test_chat_size_over_the_default_bound_is_a_400_naming_parameter_and_limit(wire, body, param, limit) -> None:  # type: ignore[no-untyped-def]
    error = _chat_refusal(wire, body)
    assert error.status == 400 and error.param == param
    assert f"'{param}'" in error.message and f"{limit}" in error.message and "'bounded'" in error.message


def test_every_chat_size_at_its_bound_passes() -> None:
    at = {
        "n": 16,
        "best_of": 16,
        "max_tokens": 131_072,
        "max_completion_tokens": 131_072,
        "top_logprobs": 20,
        "logit_bias": {str(i): 1 for i in range(300)},
        "stop": [f"s{i}" for i in range(16)],
    }
    chat_bounds_check("openai", {**OPENAI, **at}, _deployment())
    chat_bounds_check("anthropic", {**ANTHROPIC, "max_tokens": 131_072, "stop_sequences": ["a"] * 16}, _deployment())
    chat_bounds_check("cohere", {**COHERE, "max_tokens": 131_072}, _deployment())
    chat_bounds_check("gemini", {"generationConfig": {"candidateCount": 8, "maxOutputTokens": 131_072}}, _deployment())


@pytest.mark.parametrize(
    ("wire", "body", "param"),
    [
        ("openai", {**OPENAI, "n": 3}, "n"),
        (
            "gemini",
            {"contents": GEMINI_HI, "generationConfig": {"candidateCount": 3}},
            "generationConfig.candidateCount",
        ),
        (
            "gemini",
            {"contents": GEMINI_HI, "generation_config": {"candidate_count": "3"}},
            "generationConfig.candidateCount",
        ),
    ],
)
def test_choices_over_a_models_own_bound_are_refused_under_every_name(wire, body, param) -> None:  # type: ignore[no-untyped-def]
    error = _chat_refusal(wire, body, _deployment(max_n=2))
    assert error.param == param and "maximum of 2" in error.message


@pytest.mark.parametrize(
    ("wire", "body", "param"),
    [
        ("openai", {**OPENAI, "stop": ["a", "b", "c"]}, "stop"),
        ("anthropic", {**ANTHROPIC, "stop_sequences": ["a", "b", "c"]}, "stop_sequences"),
        (
            "gemini",
            {"contents": GEMINI_HI, "generationConfig": {"stopSequences": ["a", "b", "c"]}},
            "generationConfig.stopSequences",
        ),
        ("cohere", {**COHERE, "stop_sequences": ["a", "b", "c"]}, "stop_sequences"),
    ],
)
def test_stop_sequences_over_a_models_own_bound_are_refused_in_every_api(wire, body, param) -> None:  # type: ignore[no-untyped-def]
    error = _chat_refusal(wire, body, _deployment(max_stop_sequences=2))
    assert error.param == param and "3 items" in error.message and "maximum of 2" in error.message


def test_a_single_stop_string_counts_as_one_sequence() -> None:
    chat_bounds_check("openai", {**OPENAI, "stop": "END"}, _deployment(max_stop_sequences=1))
    error = _chat_refusal("openai", {**OPENAI, "stop": "END"}, _deployment(max_stop_sequences=0))
    assert error.param == "stop"


def test_a_size_that_is_not_an_integer_is_refused_rather_than_forwarded() -> None:
    for value in ("99999999999", 1e12, True):
        with pytest.raises(GatewayError) as caught:
            chat_bounds_check("openai", {**OPENAI, "top_logprobs": value}, _deployment())
        assert caught.value.status == 400 and caught.value.param == "top_logprobs"


# --- embeddings -------------------------------------------------------------------------------

EMBED_OVER = [
    (
        "openai",
        {"model": "bounded", "input": "hi", "dimensions": HUGE},
        "dimensions",
        DEFAULT_BOUNDS.max_embedding_dimensions,
    ),
    ("openai", {"model": "bounded", "input": ["hi"] * 2049}, "input", DEFAULT_BOUNDS.max_embedding_inputs),
    ("openai", {"model": "bounded", "input": [[1, 2]] * 2049}, "input", DEFAULT_BOUNDS.max_embedding_inputs),
    (
        "gemini",
        {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": HUGE},
        "outputDimensionality",
        DEFAULT_BOUNDS.max_embedding_dimensions,
    ),
    (
        "gemini",
        {"requests": [{"content": {"parts": [{"text": "hi"}]}, "output_dimensionality": str(HUGE)}]},
        "outputDimensionality",
        DEFAULT_BOUNDS.max_embedding_dimensions,
    ),
    (
        "cohere",
        {"model": "bounded", "input_type": "search_document", "texts": ["hi"], "output_dimension": HUGE},
        "output_dimension",
        DEFAULT_BOUNDS.max_embedding_dimensions,
    ),
]


@pytest.mark.parametrize(("wire", "body", "param", "limit"), EMBED_OVER, ids=[f"{c[0]}-{c[2]}" for c in EMBED_OVER])
def test_embedding_size_over_the_default_bound_is_a_400_naming_parameter_and_limit(wire, body, param, limit) -> None:  # type: ignore[no-untyped-def]
    error = _embed_refusal(wire, body)
    assert error.status == 400 and error.param == param
    assert f"'{param}'" in error.message and f"{limit}" in error.message


@pytest.mark.parametrize(
    ("wire", "body", "param"),
    [
        ("openai", {"model": "bounded", "input": ["a", "b", "c"]}, "input"),
        ("gemini", {"requests": [{"content": {"parts": [{"text": t}]}} for t in "abc"]}, "requests"),
        ("cohere", {"model": "bounded", "input_type": "search_document", "texts": ["a", "b", "c"]}, "texts"),
        (
            "cohere",
            {
                "model": "bounded",
                "input_type": "search_document",
                "inputs": [{"content": [{"type": "text", "text": t}]} for t in "abc"],
            },
            "inputs",
        ),
    ],
)
def test_embedding_inputs_over_a_models_own_bound_are_refused_under_every_name(wire, body, param) -> None:  # type: ignore[no-untyped-def]
    error = _embed_refusal(wire, body, _deployment(max_embedding_inputs=2))
    assert error.param == param and "3 items" in error.message and "maximum of 2" in error.message


def test_one_token_array_is_one_embedding_input() -> None:
    embeddings_bounds_check(
        "openai", {"model": "bounded", "input": list(range(50))}, _deployment(max_embedding_inputs=1)
    )


@pytest.mark.parametrize("value", [[[1, 2]] * 3, [[1]] * 2 + [[2, 3, 4]], [1] + [[2]] * 2, ["a"] * 3])
def test_each_token_array_or_string_in_a_list_is_one_embedding_input(value) -> None:  # type: ignore[no-untyped-def]
    error = _embed_refusal("openai", {"model": "bounded", "input": value}, _deployment(max_embedding_inputs=2))
    assert error.param == "input" and f"{len(value)} items" in error.message


# --- the client's format, and the catalog -----------------------------------------------------


def test_the_refusal_names_parameter_and_limit_in_each_apis_error_format() -> None:
    error = _chat_refusal("openai", {**OPENAI, "n": HUGE})
    _, body = inbound_for("anthropic").error_response(error)
    assert "'n'" in orjson.loads(body)["error"]["message"] and "16" in orjson.loads(body)["error"]["message"]
    _, body = inbound_for("gemini").error_response(error)
    gemini = orjson.loads(body)["error"]
    assert gemini["status"] == "INVALID_ARGUMENT" and gemini["details"][0]["metadata"] == {"field": "n"}
    status, body = inbound_for("cohere").error_response(error)
    assert status == 400 and "16" in orjson.loads(body)["message"]
    status, body = inbound_for("openai").error_response(error)
    assert status == 400 and orjson.loads(body)["error"]["param"] == "n"


def _snapshot_entry(**extra: Any) -> dict[str, Any]:
    return {
        "public_name": "m",
        "upstream_name": "u",
        "provider_name": "p",
        "provider_kind": "openai",
        "base_url": "http://x/",
        "credential_encrypted": "",
        "api_version": "",
        "input_price_per_mtok": "0",
        "output_price_per_mtok": "0",
        "context_window": None,
        "workspace_ids": [],
        "created": 0,
        **extra,
    }


def test_a_catalog_published_before_bounds_existed_gets_the_default_bounds() -> None:
    (group,) = _groups_from_snapshot({"models": [_snapshot_entry()]}).values()
    (deployment,) = group.deployments
    assert deployment.bounds == DEFAULT_BOUNDS


def test_published_bounds_reach_the_deployment_and_missing_ones_keep_their_default() -> None:
    (group,) = _groups_from_snapshot(
        {"models": [_snapshot_entry(bounds={"max_n": 3, "max_top_logprobs": "x"})]}
    ).values()
    (deployment,) = group.deployments
    assert deployment.bounds.max_n == 3
    assert deployment.bounds.max_top_logprobs == DEFAULT_BOUNDS.max_top_logprobs
    assert deployment.bounds.max_output_tokens == DEFAULT_BOUNDS.max_output_tokens
