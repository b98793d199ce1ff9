"""Connection slots under churn: every way a socket can start and end, cycled from one address
many times more than its cap, gives every slot back (issue 23: 64 ordinary WSS sessions locked
an address out until restart, while ``iquest_connections`` read 0).

The per-address cap is small here (4), so a slot lost on any path locks the address out within
four cycles; ``IQUEST_CHURN_CYCLES`` sets the cycles per kind (300; bench.abuse's slot-churn
phase runs thousands beside honest editors)."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import websockets

from bench.slot_churn import CYCLES as CYCLES_BY_NAME
from bench.slot_churn import Target, churn, cycles_for, open_sockets, served_over_websocket
from lsp.serve.daemon import TeamDaemon
from tests.support.fake_server import fake_server
from tests.support.polling import eventually
from tests.test_team_hardening import SOURCE, RawEditor, daemon_with

CYCLES = int(os.environ.get("IQUEST_CHURN_CYCLES", "300"))
CAP = 4


def _gauge(daemon: TeamDaemon, name: str) -> float:
    for line in daemon.metrics.scrape().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


async def _handshake_timeouts(target: Target) -> None:
    """Sockets that connect and never finish their handshake: TLS (or the HTTP upgrade) times
    out on the daemon's side, three times the cap at once."""
    held = [await target.open_tcp(port, tls=False) for port in (target.tcp_port,) * CAP]
    if target.tls is not None:  # through TLS, then silent before the HTTP upgrade
        held += [await target.open_tcp(target.ws_port) for _ in range(CAP)]
    held += [await target.open_tcp(target.ws_port, tls=False) for _ in range(CAP)]
    for reader, writer in held:
        try:
            await asyncio.wait_for(reader.read(), 10)
        except (ConnectionError, ssl.SSLError):
            pass
        writer.close()


async def _revocations(daemon: TeamDaemon, target: Target, store: Any) -> None:
    """Sessions whose token is revoked while they are open, CAP at a time, three rounds."""
    for round_ in range(3):
        token = store.add(f"revoked{round_}")
        mine = Target(target.host, target.tcp_port, target.ws_port, token, target.tls)
        tcp = [await mine.open_tcp(mine.tcp_port) for _ in range(CAP // 2)]
        scheme = "wss" if target.tls else "ws"
        sockets = [
            await websockets.connect(
                f"{scheme}://{target.host}:{target.ws_port}",
                additional_headers={"Authorization": f"Bearer {token}"},
                ssl=target.tls,
            )
            for _ in range(CAP - CAP // 2)
        ]
        for reader, writer in tcp:
            writer.write(_initialize(token))
            await reader.readuntil(b"\r\n\r\n")
        await asyncio.to_thread(store.revoke, f"revoked{round_}")
        for reader, writer in tcp:
            await asyncio.wait_for(reader.read(), 10)
            writer.close()
        for socket in sockets:
            await asyncio.wait_for(socket.wait_closed(), 10)


def _initialize(token: str) -> bytes:
    from bench.slot_churn import _initialize as hello

    return hello(token)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
async def test_every_way_a_socket_ends_gives_its_slot_back(tmp_path: Path, tls: bool):
    plain: dict[str, Any] = {} if tls else {"tls_cert": None, "tls_key": None}
    async with (
        fake_server() as fake,
        daemon_with(
            tmp_path,
            fake,
            max_connections_per_address=CAP,
            tls_handshake_timeout_s=0.3,
            auth_timeout_s=0.3,
            token_check_s=0.1,
            new_connections_per_address_per_s=float("inf"),  # churn, not a rate, is tested here
            **plain,
        ) as (daemon, team),
    ):
        context = ssl.create_default_context(cafile=str(team["cert"])) if tls else None
        target = Target(
            "127.0.0.1", daemon.bound["tcp"], daemon.bound["ws"], team["tokens"]["alice"], context
        )
        failed = {}
        for name, cycle in cycles_for(target).items():
            errors = await churn(target, cycle, CYCLES, parallel=2)
            if errors:
                failed[name] = errors[:2]
        await _handshake_timeouts(target)
        await _revocations(daemon, target, team["store"])
        await eventually(lambda: daemon.listeners.slots.open == 0, within_s=5)
        assert _gauge(daemon, "iquest_open_sockets") == 0
        assert _gauge(daemon, "iquest_connections") == 0
        # The address is not locked out: an honest editor from it is served at once.
        if tls:
            editor = await RawEditor.connect(
                daemon.bound["tcp"], team["cert"], team["tokens"]["bob"], tmp_path / "proj"
            )
            uri = (tmp_path / "proj" / "a.py").as_uri()
            editor.open(uri, SOURCE)
            answer = await editor.answer(editor.complete(uri, 1, 11), within=5)
            editor.close()
            assert answer["result"]["items"][0]["insertText"] == fake.reply
        else:
            assert await served_over_websocket(daemon.bound["ws"], team["tokens"]["bob"])
    assert not failed


async def test_slots_come_back_under_workers(tmp_path: Path):
    """With --workers every process keeps its own slots: churn past the default per-address cap
    of 64 times the workers, on the paths that leaked, then the address is still served."""
    from bench.common import start_team_daemon
    from engine.team.tokens import TokenStore

    store = TokenStore(tmp_path / "tokens.json")
    token = store.add("alice")
    daemon, port, ws_port = await start_team_daemon(
        *("--workers", "2", "--tokens", str(store.path), "--new-connections-per-s", "100000")
    )
    try:
        target = Target("127.0.0.1", port, ws_port, token)
        for name in ("ws-close", "ws-failed-upgrade", "ws-reset", "tcp-reset"):
            assert not await churn(target, CYCLES_BY_NAME[name], 300, parallel=4), name
        for _ in range(100):  # the workers see the last closes within 5 s
            if await open_sockets(ws_port) == 0:
                break
            await asyncio.sleep(0.05)
        assert await open_sockets(ws_port) == 0
        assert await served_over_websocket(ws_port, token)
    finally:
        daemon.terminate()
        await daemon.wait()


async def test_new_connections_from_one_address_are_rate_limited_and_others_served(
    tmp_path: Path,
):
    """Thousands of connections a second from one address each cost the daemon a session: past
    a burst they are refused at once, and another address is served as before."""
    async with (
        fake_server() as fake,
        daemon_with(
            tmp_path,
            fake,
            tls_cert=None,
            tls_key=None,
            new_connections_per_address_per_s=1.0,
            new_connections_burst=10,
        ) as (daemon, team),
    ):
        churner = Target(
            "127.0.0.1",
            daemon.bound["tcp"],
            daemon.bound["ws"],
            team["tokens"]["alice"],
            local_host="127.0.0.66",
        )
        errors = await churn(churner, CYCLES_BY_NAME["tcp-close"], 30, parallel=1)
        honest = Target("127.0.0.1", daemon.bound["tcp"], daemon.bound["ws"], team["tokens"]["bob"])
        honest_errors = await churn(honest, CYCLES_BY_NAME["tcp-close"], 5, parallel=1)
        refused = daemon.metrics.refused.labels("too many new connections from one address")
        count = refused._value.get()
    assert 15 <= len(errors) <= 20  # 10 of the burst, one a second after it, the rest refused
    assert count == len(errors)
    assert honest_errors == []
