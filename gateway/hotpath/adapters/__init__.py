"""Provider adapters: one module per upstream wire format, each an UpstreamAdapter (the
interface below; what they share is in interface.py). Provider kinds
(gateway.catalog.models.Provider.kind) map to wire modules here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .. import upstream
    from ..directory import Deployment
    from .interface import Usage


class UpstreamAdapter(Protocol):
    """What the gateway needs of an upstream wire format (interface.py says what each
    call promises). Native pass-through needs more of the OpenAI and Anthropic modules;
    gateway/hotpath/exchange.py uses those directly."""

    @property
    def WIRE(self) -> str: ...  # noqa: N802 (a module constant)
    @property
    def IGNORED_PARAMS(self) -> tuple[str, ...]: ...  # noqa: N802

    async def chat_send(self, session: upstream.Pool, deployment: Deployment, payload: dict[str, Any], *,
                        stream: bool) -> upstream.Response: ...
    async def chat_read(self, response: upstream.Response, deployment: Deployment,
                        payload: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]: ...
    def chat_chunks(self, response: upstream.Response, deployment: Deployment,
                    payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...
    async def embeddings_create(self, session: upstream.Pool, deployment: Deployment,
                                payload: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]: ...


from . import anthropic, cohere, gemini, openai  # noqa: E402  (checked against UpstreamAdapter here)

WIRE_OF_KIND: dict[str, str] = {
    "openai": "openai",
    "azure-openai": "openai",
    "openai-compatible": "openai",
    "fake": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "cohere": "cohere",
}
ADAPTERS: dict[str, UpstreamAdapter] = {"openai": openai, "anthropic": anthropic, "gemini": gemini, "cohere": cohere}


def adapter_for(kind: str) -> UpstreamAdapter:
    return ADAPTERS[WIRE_OF_KIND[kind]]
