"""End-user authentication (contracts §5): HS256 JWTs from the user center."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions


@dataclass(frozen=True)
class EndUser:
    """A user of the H5 frontend. They live in the user center, not in our tables:
    we only ever know their id."""

    id: str
    is_authenticated: bool = True
    is_anonymous: bool = False

    def __str__(self) -> str:
        return self.id


# `sub` is a user-center id: a plain identifier, never free text.
SUB_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# The longest lifetime a token may claim; an `exp` further out is refused.
MAX_TOKEN_LIFETIME_SECONDS = 366 * 24 * 3600


def user_token_mint(*, user_id: str, ttl_seconds: int = 7 * 24 * 3600) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": str(user_id), "iat": now, "exp": now + ttl_seconds}, settings.USER_TOKEN_SECRET, algorithm="HS256"
    )


def user_token_decode(token: str) -> EndUser:
    try:
        claims = jwt.decode(
            token,
            settings.USER_TOKEN_SECRET,
            algorithms=["HS256"],
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("The token has expired.", code="token_expired") from None
    except jwt.InvalidSignatureError:
        raise exceptions.AuthenticationFailed("The token signature is invalid.", code="token_invalid") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        # PyJWT lets OverflowError out of an `exp` of 1e400; no token input is a 500.
        raise exceptions.AuthenticationFailed(f"The token is malformed: {exc}", code="token_invalid") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not SUB_PATTERN.fullmatch(sub):
        raise exceptions.AuthenticationFailed(
            "The token's sub claim must be a user id (letters, digits, _ . : -; at most 64).", code="token_invalid"
        )
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp > time.time() + MAX_TOKEN_LIFETIME_SECONDS:
        raise exceptions.AuthenticationFailed(
            "The token's exp claim must be a whole Unix time within a year from now.", code="token_invalid"
        )
    return EndUser(id=sub)


class UserTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if parts[0].decode("latin-1").lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.", code="token_invalid")
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>'.", code="token_invalid"
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is malformed.", code="token_invalid") from None
        return (user_token_decode(token), token)

    def authenticate_header(self, request) -> str:
        return self.keyword


class UserTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.UserTokenAuthentication"
    name = "userToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
