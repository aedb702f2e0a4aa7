"""Secrets of ad accounts encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from AD_SECRETS_KEY (required in production); several comma-separated
keys rotate: the first encrypts, every one decrypts. Plain values never leave the
services that use them: the admin shows `mask()` and logs never see them."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()])
    except (ValueError, TypeError):
        raise ImproperlyConfigured("AD_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)") from None


def encrypt(value: str) -> str:
    if not value:
        return ""
    return _fernet(settings.AD_SECRETS_KEY).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet(settings.AD_SECRETS_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored ad-account secret does not decrypt with AD_SECRETS_KEY") from None


def mask(token: str) -> str:
    """What the admin shows of an encrypted secret: set or not, and its last 4 characters."""
    if not token:
        return "—"
    try:
        plain = decrypt(token)
    except SecretUnreadable:
        return "(unreadable with the current key)"
    return "••••" + plain[-4:] if len(plain) > 8 else "••••"
