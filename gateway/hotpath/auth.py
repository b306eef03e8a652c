"""Step 1 of the pipeline: API key -> key record (workspace, key id)."""

from __future__ import annotations

from django.conf import settings

from keys.tokens import KEY_PREFIX, token_hash

from .directory import Directory, KeyRecord
from .errors import unauthorized


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    if value is None:
        # Anthropic's SDK sends x-api-key, Google's x-goog-api-key
        api_key = headers.get(b"x-api-key") or headers.get(b"x-goog-api-key")
        return api_key.decode("latin-1").strip() if api_key else None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Malformed Authorization header: expected 'Bearer <API key>'.")
    return token.strip()


def _host_slug(headers: dict[bytes, bytes], *, trusted_proxy: bool = False) -> str | None:
    """The workspace slug when the request came to a host under BASE_DOMAIN. A look-alike host
    (`x.<slug>.<BASE_DOMAIN>`, a trailing dot) yields a label no workspace has, so no key passes.
    Behind a trusted proxy the host is X-Forwarded-Host (its first value); otherwise that header is
    client-controlled and never read."""
    raw = headers.get(b"x-forwarded-host") if trusted_proxy else None
    if raw:
        raw = raw.split(b",", 1)[0].strip()
    host = (raw or headers.get(b"host", b"")).decode("latin-1").strip().lower()
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    suffix = "." + settings.BASE_DOMAIN.lower()
    if host.endswith(suffix + "."):
        return host
    if host.endswith(suffix):
        return host[: -len(suffix)] or None
    return None


async def key_authenticate(
    directory: Directory, headers: dict[bytes, bytes], *, trusted_proxy: bool = False
) -> KeyRecord:
    secret = _bearer(headers)
    if not secret:
        raise unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <API key>'.", code="missing_api_key"
        )
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        raise unauthorized("Incorrect API key provided.")
    record = await directory.key_lookup(token_hash(secret))
    if record is None:
        raise unauthorized("Incorrect API key provided.")
    if record.revoked:
        raise unauthorized("This API key has been revoked.", code="revoked_api_key")
    slug = _host_slug(headers, trusted_proxy=trusted_proxy)
    if slug is not None and slug != record.slug:
        raise unauthorized("This API key does not belong to this workspace.", code="wrong_workspace")
    return record
