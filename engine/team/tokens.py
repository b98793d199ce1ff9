"""Per-user access tokens for team mode, stored hashed.

A token is ``iq_<id>_<secret>``: the id finds the entry without scanning, the secret (32 random
bytes) is checked against a salted hash with a constant-time comparison. The secret has 256 bits
of entropy, so a fast keyed hash is enough (a slow password hash would only slow every
connection). The plain token is shown once, at creation; the store never holds it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from engine.config import APP_NAME

PREFIX = "iq_"


@dataclass(frozen=True)
class TokenEntry:
    id: str
    user: str
    salt: str  # hex
    digest: str  # hex, blake2b(secret, key=salt)
    created: float
    revoked: bool = False
    # Server-side checkouts (by folder name) this user may draw context from; None: all.
    repos: tuple[str, ...] | None = None


class TokenError(ValueError):
    """A bad command (unknown user or id); never says anything about a presented token."""


def default_token_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "tokens.json"


class TokenStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_token_path()

    # --- administration (``iquest-lsp token add|list|revoke``) ----------------------------
    def add(self, user: str, repos: tuple[str, ...] | None = None) -> str:
        if not user or not user.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise TokenError(f"user names are letters, digits, '-', '_' and '.': {user!r}")
        entries = self._load()
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        entries.append(
            TokenEntry(token_id, user, salt.hex(), _digest(secret, salt), time.time(), False, repos)
        )
        self._save(entries)
        return f"{PREFIX}{token_id}_{secret}"

    def entries(self) -> list[TokenEntry]:
        return self._load()

    def revoke(self, id_or_user: str) -> int:
        entries = self._load()
        matched = [e for e in entries if id_or_user in (e.id, e.user) and not e.revoked]
        if not matched:
            raise TokenError(f"no active token with id or user {id_or_user!r}")
        self._save(
            [TokenEntry(**{**asdict(e), "revoked": True}) if e in matched else e for e in entries]
        )
        return len(matched)

    # --- checking ----------------------------------------------------------------------------
    def user_for(self, token: str | None) -> str | None:
        """The user a presented token belongs to, or None (bad, unknown or revoked)."""
        entry = self.entry_for(token)
        return entry.user if entry is not None else None

    def entry_for(self, token: str | None) -> TokenEntry | None:
        """The live entry of a presented token, or None (bad, unknown or revoked)."""
        if not token or not token.startswith(PREFIX):
            return None
        token_id, _, secret = token[len(PREFIX) :].partition("_")
        entry = next((e for e in self._load() if e.id == token_id), None)
        if entry is None or not secret:
            # Hash anyway, so an unknown id costs what a known one does.
            _digest(secret or "x", b"\0" * 16)
            return None
        matches = hmac.compare_digest(_digest(secret, bytes.fromhex(entry.salt)), entry.digest)
        return entry if matches and not entry.revoked else None

    # --- storage -----------------------------------------------------------------------------
    def _load(self) -> list[TokenEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        entries = []
        for item in raw.get("tokens", []):
            repos = item.get("repos")
            entries.append(TokenEntry(**{**item, "repos": tuple(repos) if repos else repos}))
        return entries

    def _save(self, entries: list[TokenEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"tokens": [asdict(e) for e in entries]}, indent=1), encoding="utf-8"
        )
        os.chmod(temporary, 0o600)  # hashes only, but nobody else needs to read them
        temporary.replace(self.path)


def _digest(secret: str, salt: bytes) -> str:
    return hashlib.blake2b(secret.encode(), key=salt, digest_size=32).hexdigest()
