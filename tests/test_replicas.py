"""Several replicas of one endpoint: each session sticks to one replica (rendezvous hashing),
carries X-Session-ID, and fails over when its replica is down."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from engine.config import EndpointConfig
from engine.endpoints.replicas import in_affinity_order
from engine.team.identity import session_id
from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
)

URLS = ("http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1")


def first_replica(session: str, urls: tuple[str, ...] = URLS) -> str:
    return in_affinity_order(EndpointConfig(replicas=urls), session)[0].base_url


def test_sessions_stick_spread_and_move_only_when_their_replica_goes():
    sessions = [session_id(f"user{n}", "proj") for n in range(300)]
    placed = {s: first_replica(s) for s in sessions}
    assert all(first_replica(s) == placed[s] for s in sessions)  # stable
    spread = Counter(placed.values())
    assert set(spread) == set(URLS) and min(spread.values()) >= 60
    without_b = {s: first_replica(s, (URLS[0], URLS[2])) for s in sessions}
    moved = [s for s in sessions if without_b[s] != placed[s]]
    assert moved and all(placed[s] == URLS[1] for s in moved)
    # Failover order: a session's second choice is where it goes when its first is down.
    for s in sessions[:20]:
        order = [e.base_url for e in in_affinity_order(EndpointConfig(replicas=URLS), s)]
        assert order[0] == placed[s] and sorted(order) == sorted(URLS)


def test_session_ids_are_opaque_and_per_user_and_folder():
    alice = session_id("alice", "proj")
    assert alice == session_id("alice", "proj")
    assert alice != session_id("bob", "proj") != session_id("alice", "other")
    assert "alice" not in alice and "proj" not in alice


async def test_a_session_stays_on_its_replica_and_fails_over(tmp_path: Path):
    source = "def answer():\n    return "
    # A new file each time: typing-through memory must not answer instead of a replica.
    uris = iter((tmp_path / f"f{n}.py").as_uri() for n in range(10))
    async with fake_server() as one, fake_server() as two:
        settings = {
            "instruct": {"replicas": [one.base_url, two.base_url], "connect_timeout_s": 1.0},
            "completion": {"debounce_ms": 0, "timeout_s": 2.0},
        }
        async with lsp_session(settings, tmp_path) as client:

            async def complete() -> list[object]:
                uri = next(uris)
                open_document(client, uri, source)
                return items_of(await inline_completion(client, uri, end_position(source)))

            for _ in range(4):
                assert await complete()
            home, other = (one, two) if one.completion_requests else (two, one)
            home.mode = "http500"  # the session's replica fails
            failed_over = [await complete() for _ in range(3)]
            await asyncio.sleep(0.1)
    assert len(home.completion_requests) >= 4
    assert all(items for items in failed_over)  # served by the other replica meanwhile
    assert other.completion_requests and other.session_headers[0] == home.session_headers[0]
    assert len(set(home.session_headers)) == 1 and home.session_headers[0]
