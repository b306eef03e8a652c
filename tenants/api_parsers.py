"""The management API's body parser; its own module because DRF imports it from settings while
`rest_framework.views` is loading (tenants.api_schema imports that module)."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

JSON_MAX_DEPTH = 32  # the management API's bodies nest two levels; deeper is never a real request


def json_depth_exceeds(data: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit`, walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


class StrictJSONParser(JSONParser):
    """JSON that the API's validation and PostgreSQL can handle: a lone surrogate (`"\\ud800"`)
    or arrays nested past Python's recursion limit (or past JSON_MAX_DEPTH) are a 400, not a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels.") from exc
        if json_depth_exceeds(data, JSON_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels.")
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError("JSON parse error - a string holds a lone surrogate, which is not text.") from exc
        return data
