"""Reading OpenAI-shaped stream chunks the way OpenAI clients do (shared by the adapter tests)."""

from __future__ import annotations

from typing import Any


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def calls_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls assembled by index: first id and name, then argument fragments."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk["choices"] else []:
            call = calls.setdefault(part["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or part.get("id")
            call["name"] = call["name"] or part.get("function", {}).get("name")
            call["arguments"] += part.get("function", {}).get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


def finish_of(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
