"""Provider adapters: one module per upstream wire format behind the small interface in
interface.py. Provider kinds (gateway.catalog.models.Provider.kind) map to wire modules here."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

WIRE_OF_KIND: dict[str, str] = {
    "openai": "openai",
    "azure-openai": "openai",
    "openai-compatible": "openai",
    "fake": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "cohere": "cohere",
}


@functools.cache
def adapter_for(kind: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{WIRE_OF_KIND[kind]}")
