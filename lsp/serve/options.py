"""How ``iquest-lsp --serve`` runs: addresses, TLS, checkouts, tokens and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lsp.serve.limits import UserLimits


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int | None = 7070  # LSP over TCP; TLS with a certificate
    ws_port: int | None = 7071  # LSP over WebSocket, plus GET /healthz and /metrics
    tls_cert: Path | None = None
    tls_key: Path | None = None
    repos: tuple[Path, ...] = ()
    tokens: Path | None = None
    config: Path | None = None
    # One cache salt per user (isolation), or one for the whole team (more cache sharing).
    salt_per: str = "user"
    max_message_bytes: int = 8 * 1024 * 1024
    auth_timeout_s: float = 1.0
    limits: UserLimits = field(default_factory=UserLimits)
    # Worker processes (lsp.serve.workers) each bind the same ports with SO_REUSEPORT; the
    # parent prints the banner.
    reuse_port: bool = False
    announce: bool = True
