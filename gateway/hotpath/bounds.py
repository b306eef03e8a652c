"""Upper bounds on the sizes a request asks of an upstream: choices, output tokens, stop
sequences, log probabilities, logit biases, embedding dimensions and inputs.

An upstream (and the built-in fake) builds what it is asked for, so one request with
`n` or `dimensions` near 2**31 can make it allocate gigabytes. Each model carries its own
bounds (set in admin, published with the catalog); a request over one is a 400 that names
the parameter, in the client's own vocabulary and error format, before any upstream call.

The checks read the client's body as its inbound API parsed it, so the native
pass-through paths (OpenAI to an OpenAI-format upstream, Anthropic to Anthropic) are
bounded exactly like the translated ones. They are pure and cheap: a few dict lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .errors import GatewayError, invalid_request

if TYPE_CHECKING:
    from .directory import Deployment


@dataclass(frozen=True, slots=True)
class RequestBounds:
    """The largest sizes one request to a model may ask for. The defaults sit at or above
    what the major providers accept, so they only stop what no real model serves."""

    max_n: int = 16
    max_output_tokens: int = 131_072
    max_stop_sequences: int = 16
    max_top_logprobs: int = 20
    max_logit_bias: int = 300
    max_embedding_dimensions: int = 4_096
    max_embedding_inputs: int = 2_048

    @classmethod
    def from_snapshot(cls, data: Any) -> RequestBounds:
        """The bounds as the catalog snapshot carries them; a missing or malformed entry
        (a snapshot published before bounds existed) keeps its default."""
        if not isinstance(data, dict):
            return DEFAULT_BOUNDS
        values = {
            name: data[name]
            for name in BOUND_NAMES
            if isinstance(data.get(name), int) and not isinstance(data[name], bool) and data[name] >= 0
        }
        return cls(**values) if values else DEFAULT_BOUNDS


DEFAULT_BOUNDS = RequestBounds()
BOUND_NAMES = tuple(f.name for f in fields(RequestBounds))

VALUE, COUNT = "value", "count"
# per inbound API: (path in the client's body, the bound, whether the value or the number of items is bounded)
Size = tuple[tuple[str, ...], str, str]
CHAT_SIZES: dict[str, tuple[Size, ...]] = {
    "openai": (
        (("n",), "max_n", VALUE),
        (("best_of",), "max_n", VALUE),  # vLLM and other OpenAI-compatible servers
        (("max_tokens",), "max_output_tokens", VALUE),
        (("max_completion_tokens",), "max_output_tokens", VALUE),
        (("min_tokens",), "max_output_tokens", VALUE),  # vLLM
        (("top_logprobs",), "max_top_logprobs", VALUE),
        (("logit_bias",), "max_logit_bias", COUNT),
        (("stop",), "max_stop_sequences", COUNT),
    ),
    "anthropic": (
        (("max_tokens",), "max_output_tokens", VALUE),
        (("thinking", "budget_tokens"), "max_output_tokens", VALUE),
        (("stop_sequences",), "max_stop_sequences", COUNT),
    ),
    "gemini": (
        (("generationConfig", "candidateCount"), "max_n", VALUE),
        (("generationConfig", "maxOutputTokens"), "max_output_tokens", VALUE),
        (("generationConfig", "stopSequences"), "max_stop_sequences", COUNT),
    ),
    "cohere": (
        (("max_tokens",), "max_output_tokens", VALUE),
        (("stop_sequences",), "max_stop_sequences", COUNT),
    ),
}


def _lookup(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = body
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _too_large(param: str, value: int, limit: int, model: str) -> GatewayError:
    return invalid_request(
        f"Invalid '{param}': {value} is above the maximum of {limit} for model '{model}'.",
        param=param,
        code="integer_above_max_value",
    )


def _too_many(param: str, count: int, limit: int, model: str) -> GatewayError:
    return invalid_request(
        f"Invalid '{param}': {count} items is more than the maximum of {limit} for model '{model}'.",
        param=param,
        code="array_above_max_length",
    )


def _value_check(param: str, value: Any, limit: int, model: str) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_request(f"Invalid type for '{param}': expected an integer.", param=param)
    if value > limit:
        raise _too_large(param, value, limit, model)


def _count(value: Any) -> int:
    """Items in a list or object; a lone string is one (OpenAI's `stop: "END"`)."""
    if isinstance(value, (list, dict)):
        return len(value)
    return 1 if isinstance(value, str) else 0


def chat_bounds_check(wire: str, body: dict[str, Any], deployment: Deployment) -> None:
    """A 400 naming the first size in a chat request (as its inbound API `wire` parsed it)
    that is over the model's bounds."""
    bounds = deployment.bounds
    for path, bound, kind in CHAT_SIZES[wire]:
        value = _lookup(body, path)
        if value is None:
            continue
        limit = getattr(bounds, bound)
        if kind == VALUE:
            _value_check(".".join(path), value, limit, deployment.public_name)
        elif _count(value) > limit:
            raise _too_many(".".join(path), _count(value), limit, deployment.public_name)


def _embedding_sizes(wire: str, body: dict[str, Any]) -> tuple[str, int, str, Any]:
    """(inputs parameter, number of inputs, dimensions parameter, dimensions) of an
    embeddings request as its inbound API parsed it."""
    if wire == "gemini":
        requests = body.get("requests") or []
        dimensions = requests[0].get("dimensions") if requests and isinstance(requests[0], dict) else None
        return "requests", len(requests), "outputDimensionality", dimensions
    if wire == "cohere":
        texts = body.get("texts")
        name = "inputs" if body.get("inputs") is not None else "texts"
        return name, len(texts) if isinstance(texts, list) else 0, "output_dimension", body.get("output_dimension")
    value = body.get("input")
    # a string, or one token array (all integers), is one input; a list of strings or of token arrays
    # counts each item (a mix is refused by the request validation)
    single = isinstance(value, str) or (isinstance(value, list) and bool(value) and all(type(v) is int for v in value))
    count = 1 if single else (len(value) if isinstance(value, list) else 0)
    return "input", count, "dimensions", body.get("dimensions")


def embeddings_bounds_check(wire: str, body: dict[str, Any], deployment: Deployment) -> None:
    """A 400 naming the number of inputs or the dimensions of an embeddings request (as its
    inbound API `wire` parsed it) when over the model's bounds."""
    bounds = deployment.bounds
    inputs_param, inputs, dimensions_param, dimensions = _embedding_sizes(wire, body)
    if inputs > bounds.max_embedding_inputs:
        raise _too_many(inputs_param, inputs, bounds.max_embedding_inputs, deployment.public_name)
    _value_check(dimensions_param, dimensions, bounds.max_embedding_dimensions, deployment.public_name)
