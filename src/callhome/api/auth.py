"""Bearer tokens of the API and their rights.

The token in ``api.token_file`` is the admin token: every right, actor ``token:<hash>``.
``api.tokens_file`` (``api-tokens.toml``) lists more, each with a name, the SHA-256 of the
token (hex) and its rights; its actor is ``token:NAME``::

    [[token]]
    name = "alice"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    rights = ["read", "operate", "terminal"]

Rights: ``read`` (GET routes), ``operate`` (every other route: approvals, NETCONF jobs ...),
``terminal`` (shell, exec and TCP forwards through the WebSocket routes).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from callhome.config import ApiToken
from callhome.errors import AuthError

ALL_RIGHTS = frozenset({"read", "operate", "terminal"})


class Forbidden(AuthError):
    """A valid token without the right asked for (HTTP 403, where AuthError is 401);
    ``actor`` is who holds the token."""

    def __init__(self, message: str, actor: str) -> None:
        super().__init__(message)
        self.actor = actor


@dataclass(frozen=True)
class Principal:
    """Who is behind a request, and what they may do."""

    actor: str
    rights: frozenset[str]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenSet:
    """Every token the API accepts, found by the SHA-256 of what a client presents."""

    def __init__(self, admin_token: str, tokens: Iterable[ApiToken] = ()) -> None:
        digest = _digest(admin_token)
        self._by_digest = {digest: Principal("token:" + digest[:8], ALL_RIGHTS)}
        for t in tokens:
            self._by_digest.setdefault(
                t.sha256.lower(), Principal("token:" + t.name, frozenset(t.rights))
            )

    def lookup(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = _digest(token)
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def authorize(self, header: str | None, right: str) -> Principal:
        """The principal of an ``Authorization`` header value, if it holds ``right``."""
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        principal = self.lookup(token)
        if principal is None:
            raise AuthError("a valid bearer token is required")
        if right not in principal.rights:
            raise Forbidden(f"{principal.actor} does not have the {right!r} right", principal.actor)
        return principal
