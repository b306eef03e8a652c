"""A catalog Deployment for tests that call gateway functions directly: every field a
neutral default, the test names only what it is about."""

from __future__ import annotations

from typing import Any

from gateway.hotpath.directory import Deployment


def deployment_make(**fields: Any) -> Deployment:
    defaults: dict[str, Any] = {
        "public_name": "m", "upstream_name": "m", "provider_name": "p", "provider_kind": "fake",
        "base_url": "http://127.0.0.1:1", "credential": "", "api_version": "", "input_price_per_mtok": 0.0,
        "output_price_per_mtok": 0.0, "context_window": None, "workspace_ids": frozenset(), "created": 0,
    }
    return Deployment(**{**defaults, **fields})
