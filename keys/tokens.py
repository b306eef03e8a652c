"""Secrets are stored only as SHA-256 hashes (they are long random strings, so a
fast hash is enough); the gateway hashes the presented key the same way."""

from __future__ import annotations

import hashlib

KEY_PREFIX = "sk-aip-"  # every API key starts so; the gateway rejects anything else unhashed


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
