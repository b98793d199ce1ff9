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
    # Before a token is proven: the first message (``initialize``) may be at most this big.
    max_unauthenticated_bytes: int = 64 * 1024
    auth_timeout_s: float = 1.0
    tls_handshake_timeout_s: float = 1.0
    # Open sockets, authenticated or not, in all and from one address.
    max_connections: int = 1024
    max_connections_per_address: int = 64
    # New sockets per address and second (bursts of new_connections_burst): an office behind
    # one NAT address reconnecting at once fits; a churn of thousands a second does not.
    new_connections_per_address_per_s: float = 20.0
    new_connections_burst: int = 120
    # Bytes waiting to be sent to an editor that does not read: past this, it is closed.
    max_unsent_bytes: int = 16 * 1024 * 1024
    # How often live sessions are checked against the token store (revocations end them).
    token_check_s: float = 2.0
    limits: UserLimits = field(default_factory=UserLimits)
    # Worker processes (lsp.serve.workers) each bind the same ports with SO_REUSEPORT; the
    # parent prints the banner.
    reuse_port: bool = False
    # How many worker processes share the ports: each keeps this share of an action budget.
    workers: int = 1
    announce: bool = True
