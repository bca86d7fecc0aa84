"""Secrets at rest: Page access tokens are stored encrypted with TOKEN_ENCRYPTION_KEY.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): authenticated, so a
tampered or foreign value fails to decrypt instead of yielding garbage. The key
setting may list several keys, comma-separated: the first encrypts, every one
decrypts: a new key goes first, and tokens stored under an older one still decrypt.

Stored values carry a prefix, so that a plaintext written by mistake is recognised
(and encrypted on save, see `webhooks.models.EncryptedTokenField`).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


class TokenDecryptionError(Exception):
    """A stored token could not be decrypted: the key changed or the value was altered."""


def _fernet() -> MultiFernet:
    # Read at each call: settings may change under tests, and the cost is a few µs.
    keys = [key.strip() for key in settings.TOKEN_ENCRYPTION_KEY.split(",") if key.strip()]
    return MultiFernet([Fernet(key) for key in keys])


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def token_seal(plaintext: str) -> str:
    """The stored form of a secret: `fernet:<token>`."""
    return PREFIX + _fernet().encrypt(plaintext.encode()).decode("ascii")


def token_unseal(sealed: str) -> str:
    """The secret itself. Call only where it is sent (the Graph client)."""
    if not is_sealed(sealed):
        raise TokenDecryptionError("the value is not an encrypted token")
    try:
        return _fernet().decrypt(sealed[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise TokenDecryptionError(
            "the token does not decrypt with TOKEN_ENCRYPTION_KEY (was the key changed?)"
        ) from None
