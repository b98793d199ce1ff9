"""Per-user access tokens for team mode, stored hashed.

A token is ``iq_<id>_<secret>``: the id finds the entry without scanning, the secret (32 random
bytes) is checked against a salted hash with a constant-time comparison. The secret has 256 bits
of entropy, so a fast keyed hash is enough (a slow password hash would only slow every
connection). The plain token is shown once, at creation; the store never holds it.

The file is private (0600 in a 0700 folder), written whole through a private temporary file
under a lock (two ``token add`` at once both land), and read again only when it changed (the
daemon checks it for every connection attempt and every few seconds for revocations). Beside
it, ``server.key`` holds the daemon's secret for keyed hashes (cache salts, session ids)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
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
        # The entries as last read, and the file's identity then (inode, size, mtime).
        self._cached: tuple[tuple[int, int, int], list[TokenEntry]] | None = None

    # --- administration (``iquest-lsp token add|list|revoke``) ----------------------------
    def add(self, user: str, repos: tuple[str, ...] | None = None) -> str:
        if not user or not user.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise TokenError(f"user names are letters, digits, '-', '_' and '.': {user!r}")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._locked():
            entries = self._load()
            entries.append(
                TokenEntry(
                    token_id, user, salt.hex(), _digest(secret, salt), time.time(), False, repos
                )
            )
            self._save(entries)
        return f"{PREFIX}{token_id}_{secret}"

    def entries(self) -> list[TokenEntry]:
        return self._load()

    def revoke(self, id_or_user: str) -> int:
        with self._locked():
            entries = self._load()
            matched = [e for e in entries if id_or_user in (e.id, e.user) and not e.revoked]
            if not matched:
                raise TokenError(f"no active token with id or user {id_or_user!r}")
            self._save(
                [
                    TokenEntry(**{**asdict(e), "revoked": True}) if e in matched else e
                    for e in entries
                ]
            )
        return len(matched)

    def live(self, token_id: str) -> TokenEntry | None:
        """The entry of ``token_id`` while it is not revoked (a session checks it still holds)."""
        entry = next((e for e in self._load() if e.id == token_id), None)
        return entry if entry is not None and not entry.revoked else None

    def server_secret(self) -> bytes:
        """The daemon's own secret (created once, private), for keyed hashes."""
        path = self.path.with_name("server.key")
        try:
            return bytes.fromhex(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        with self._locked():
            try:
                return bytes.fromhex(path.read_text().strip())
            except (FileNotFoundError, ValueError):
                secret = secrets.token_bytes(32)
                _write_private(path, secret.hex())
                return secret

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
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._cached is not None and self._cached[0] == identity:
            return list(self._cached[1])
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        entries = []
        for item in raw.get("tokens", []):
            repos = item.get("repos")
            entries.append(TokenEntry(**{**item, "repos": tuple(repos) if repos else repos}))
        self._cached = (identity, entries)
        return list(entries)

    def _save(self, entries: list[TokenEntry]) -> None:
        _write_private(self.path, json.dumps({"tokens": [asdict(e) for e in entries]}, indent=1))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Read-modify-write as one step, across processes."""
        _private_folder(self.path.parent)
        descriptor = os.open(
            self.path.with_name(self.path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _private_folder(folder: Path) -> None:
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    """Written whole or not at all, and never readable by others, not even for a moment."""
    _private_folder(path.parent)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _digest(secret: str, salt: bytes) -> str:
    return hashlib.blake2b(secret.encode(), key=salt, digest_size=32).hexdigest()
