"""The signed page token: what page, for whom, in which session, rendered when.

The push server rebuilds the page's request from the token alone; the client
never chooses the path, the view, the user or the params. How the payload is
signed is pluggable (``SERVERPUSH_TOKENIZER``); what it says is not.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.http import HttpRequest
from django.utils import translation
from django.utils.module_loading import import_string

from serverpush import conf
from serverpush.log import get_log


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PageToken:
    path: str
    user_pk: str | None
    session: str | None
    language: str | None
    urlconf: str | None
    log: str | None = None


def session_fingerprint(session_key: str | None) -> str | None:
    """A one-way tag of the session key, so the page (and its JS) never sees the key itself.

    Unkeyed on purpose: it must survive SECRET_KEY rotation, and the session key
    it hashes is long and random.
    """
    if not session_key:
        return None
    return hashlib.sha256(f"serverpush.session:{session_key}".encode()).hexdigest()[:32]


def user_key(request: HttpRequest) -> str | None:
    """The signed-in user's pk as text (how tokens and rooms name users), or None."""
    user = getattr(request, "user", None)
    return str(user.pk) if user is not None and user.is_authenticated else None


def identity(request: HttpRequest) -> tuple[str | None, str | None]:
    """``(user_key, session fingerprint)``: who a page is, for binding tokens and revoking."""
    session = getattr(request, "session", None)
    return user_key(request), session_fingerprint(getattr(session, "session_key", None))


def make_token(request: HttpRequest) -> str:
    user, session = identity(request)
    payload: dict[str, Any] = {
        "p": request.path,
        "u": user,
        "s": session,
        "l": getattr(request, "LANGUAGE_CODE", None) or translation.get_language(),
        "c": getattr(request, "urlconf", None),
        "g": get_log().identity(),
    }
    return tokenizer().dumps(payload)


def read_token(token: str) -> PageToken:
    """Verify ``token``; raise :class:`TokenError` with code ``token_expired`` or ``token_invalid``."""
    payload = tokenizer().loads(token, conf.get("SERVERPUSH_TOKEN_MAX_AGE"))
    try:
        return PageToken(path=payload["p"], user_pk=payload["u"], session=payload["s"], language=payload["l"], urlconf=payload["c"], log=payload.get("g"))
    except (KeyError, TypeError):
        raise TokenError("token_invalid", "the page token verifies but does not hold a page; was it made by another tokenizer?") from None


class SignedTokenizer:
    """Signs with ``django.core.signing``: SECRET_KEY, SECRET_KEY_FALLBACKS, SERVERPUSH_TOKEN_SALT.

    A custom tokenizer (``SERVERPUSH_TOKENIZER``) has the same two methods.
    """

    def __init__(self) -> None:
        # What signing.dumps and loads build on every call, built once (tokenizer() is cached).
        self.signer = signing.TimestampSigner(salt=conf.get("SERVERPUSH_TOKEN_SALT"))

    def dumps(self, payload: dict[str, Any]) -> str:
        return self.signer.sign_object(payload, compress=True)

    def loads(self, token: str, max_age: int) -> dict[str, Any]:
        try:
            return self.signer.unsign_object(token, max_age=max_age)
        except signing.SignatureExpired:
            raise TokenError("token_expired", "the page token has expired; reload the page for a new one") from None
        except signing.BadSignature:
            raise TokenError("token_invalid", "the page token does not verify; it was altered or signed with another SECRET_KEY") from None


@conf.derived
def tokenizer() -> SignedTokenizer:
    """The ``SERVERPUSH_TOKENIZER``, made once (and again when settings change)."""
    return import_string(conf.get("SERVERPUSH_TOKENIZER"))()

