"""Unguessable codes for coupons and offline redeem codes.

16 symbols from a 31-letter alphabet without look-alikes (no 0/O, 1/I/L):
79 bits from `secrets`, so guessing a live code is hopeless and a collision
(caught by the unique constraint anyway) is vanishingly rare.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_normalize(raw: str) -> str:
    """What a person typed (spaces, dashes, lower case) to the stored form."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())
