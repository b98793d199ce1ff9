"""Who a connection's requests are for, and every opaque value derived from that, in one place:
the session id a router keys on (``X-Session-ID``), the user id (``X-User-ID``) and vLLM's
``cache_salt``.

All are keyed with the team daemon's secret: whoever can reach vLLM or a router sees no user or
folder names and cannot compute another user's ids (or probe their prefix cache) from a name.
The single user of a stdio daemon is ``LOCAL`` and has no key (nobody else shares its server's
cache through it)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

LOCAL = "local"


@dataclass(frozen=True)
class Identity:
    user: str = LOCAL
    # The team daemon's secret (empty for the single user).
    key: bytes = b""
    # One cache salt per user (isolation) or one for the whole team (more cache sharing).
    salt_per: str = "user"

    def session_id(self, workspace: str | None) -> str:
        """Stable per user and workspace folder: keeps that work on one vLLM replica."""
        return session_id(self._keyed_user, workspace, self.key)

    @property
    def user_key(self) -> str:
        """The user alone (never equal to a session id): a router's per-user key."""
        return user_id(self._keyed_user, self.key)

    @property
    def cache_salt(self) -> str:
        return cache_salt(self.key, self.salt_per, self.user)

    @property
    def _keyed_user(self) -> str | None:
        # The single user hashes as no user at all: its ids are the ones it always had.
        return None if self.user == LOCAL and not self.key else self.user


def session_id(user: str | None, workspace: str | None, key: bytes = b"") -> str:
    text = f"{user or ''}\0{workspace or ''}".encode()
    return hashlib.blake2b(text, key=key, digest_size=12).hexdigest()


def user_id(user: str | None, key: bytes = b"") -> str:
    text = (user or "").encode()
    return hashlib.blake2b(text, key=key, digest_size=12, person=b"iquest-user").hexdigest()


def cache_salt(secret: bytes, salt_per: str, user: str) -> str:
    """vLLM's cache_salt for a user's requests (``salt_per`` "team": one for everyone)."""
    scope = "team" if salt_per == "team" else f"user:{user}"
    return hmac.new(secret, scope.encode(), hashlib.sha256).hexdigest()[:32]
