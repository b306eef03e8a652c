"""Provider credentials are encrypted at rest with Fernet (AES-128-CBC + HMAC).

settings.ENCRYPTION_KEYS (AIPROXY_ENCRYPTION_KEY, comma-separated) lists the keys: the first
encrypts, every one decrypts, so a key is rotated by putting the new one first, running
`manage.py credentials_reencrypt`, then dropping the old one. Each key is a string a Fernet
key is derived from, so a database dump alone does not reveal any credential.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@functools.cache
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(("aiproxy-credentials:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@functools.cache
def _multi_fernet(secrets: tuple[str, ...]) -> MultiFernet:
    if not secrets:
        raise ValueError("no encryption key: set AIPROXY_ENCRYPTION_KEY")
    return MultiFernet([_fernet(secret) for secret in secrets])


def _keys() -> MultiFernet:
    return _multi_fernet(tuple(settings.ENCRYPTION_KEYS))


def credential_encrypt(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode()


def credential_decrypt(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("provider credential cannot be decrypted with any AIPROXY_ENCRYPTION_KEY key") from exc


def credential_is_current(token: str) -> bool:
    """Whether the current (first) key encrypted `token`."""
    try:
        _fernet(settings.ENCRYPTION_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def credential_reencrypt(token: str) -> str:
    """`token` encrypted again with the current key (ValueError when no key decrypts it)."""
    try:
        return _keys().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("provider credential cannot be decrypted with any AIPROXY_ENCRYPTION_KEY key") from exc
