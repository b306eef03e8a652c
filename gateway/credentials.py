"""Provider credentials are encrypted at rest with Fernet (AES-128-CBC + HMAC).

The key is derived from settings.ENCRYPTION_KEY (AIPROXY_ENCRYPTION_KEY, falling back
to SECRET_KEY), so a database dump alone does not reveal any credential.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@functools.cache
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(("aiproxy-credentials:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def credential_encrypt(plaintext: str) -> str:
    return _fernet(settings.ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


def credential_decrypt(token: str) -> str:
    try:
        return _fernet(settings.ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("provider credential cannot be decrypted: AIPROXY_ENCRYPTION_KEY changed?") from exc
