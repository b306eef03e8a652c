"""Token counting for when an upstream reports no usage (estimated counts)."""

from __future__ import annotations

import functools
import math
from typing import Any


@functools.cache
def _encoding() -> Any:
    try:
        import tiktoken

        return tiktoken.get_encoding("o200k_base")
    except Exception:  # offline and no cached BPE file: fall back to the heuristic below
        return None


def count_text_tokens(text: str) -> int:
    if not text:
        return 0
    enc = _encoding()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    return max(1, math.ceil(len(text) / 4))


def count_message_tokens(messages: list[dict[str, Any]]) -> int:
    total = 3
    for message in messages:
        total += 3
        content = message.get("content")
        if isinstance(content, str):
            total += count_text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += count_text_tokens(part["text"])
    return total
