"""Several vLLM replicas behind one endpoint: session-affine choice with failover.

Rendezvous (highest random weight) hashing on a session key (user and workspace) orders the
replicas the same way for every request of a session, so its prompts keep landing on the
replica whose prefix cache holds them; when that replica is down, the next in the order takes
over, and a session moves only when its own replica fails (adding or removing a replica moves
only the sessions it wins or loses). Requests also carry ``X-Session-ID`` and ``X-User-ID``, so
a router in front (vllm-router's consistent hash, the production stack's session routing) can do
the same: with ``router = true`` the daemon leaves the choice to it (one URL, no replica order)."""

from __future__ import annotations

import dataclasses
import hashlib

from engine.config import EndpointConfig

SESSION_HEADER = "X-Session-ID"
USER_HEADER = "X-User-ID"


def routing_headers(session: str | None, user: str | None) -> dict[str, str]:
    """What a router in front of vLLM keys on. Both stable per session and user, never per
    request: a per-request value would scatter one session's prompts over the replicas."""
    headers = {}
    if session:
        headers[SESSION_HEADER] = session
    if user:
        headers[USER_HEADER] = user
    return headers


def replica_urls(endpoint: EndpointConfig) -> tuple[str, ...]:
    return endpoint.replicas or (endpoint.base_url,)


def routing_mode(endpoint: EndpointConfig) -> str:
    """Who picks the replica for a request, in words (doctor)."""
    if endpoint.router:
        return (
            f"router at {endpoint.base_url}: it picks each request's replica "
            "(the daemon sends X-Session-ID and X-User-ID)"
        )
    urls = replica_urls(endpoint)
    if len(urls) > 1:
        return (
            f"{len(urls)} replicas, picked by the daemon per session (rendezvous hashing), "
            "failing over in order"
        )
    return f"one server at {urls[0]}"


def in_affinity_order(endpoint: EndpointConfig, session: str | None) -> list[EndpointConfig]:
    """The endpoint's replicas, best first for this session, each as a single-URL endpoint."""
    urls = replica_urls(endpoint)
    if len(urls) > 1 and session is not None:
        urls = tuple(sorted(urls, key=lambda url: _weight(session, url), reverse=True))
    return [dataclasses.replace(endpoint, base_url=url, replicas=()) for url in urls]


def _weight(session: str, url: str) -> int:
    digest = hashlib.blake2b(f"{session}\0{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
