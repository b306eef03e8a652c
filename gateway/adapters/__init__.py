"""Provider adapters: one module per upstream wire format behind one small interface.

An adapter turns an OpenAI-format chat request into the provider's request, and the
provider's answer (a JSON body or SSE events) back into OpenAI's format, reporting
usage as it goes.
"""

from __future__ import annotations

from types import ModuleType

from . import openai

ADAPTERS: dict[str, ModuleType] = {
    "openai": openai,
    "azure-openai": openai,
    "openai-compatible": openai,
    "fake": openai,
}


def adapter_for(kind: str) -> ModuleType:
    return ADAPTERS[kind]
