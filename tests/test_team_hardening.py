"""Team mode against a user with a valid token who is hostile or buggy: every per-message cost
is bounded, limits cover notifications, strangers cost little, revoked tokens end sessions,
and nothing a client sends becomes a metric label or a traceback in the log.

The daemon runs in the test's event loop against the recording fake model server; clients
speak raw LSP over TLS (or WebSocket) so that they can misbehave."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from engine.team.tokens import TokenStore
from lsp.serve.daemon import TeamDaemon
from lsp.serve.framing import frame, read_bodies
from lsp.serve.guards import GuardedWriter
from lsp.serve.limits import UserLimits
from lsp.serve.options import ServeOptions
from tests.support.certificates import self_signed
from tests.support.fake_server import FakeServer, fake_server

SOURCE = "def total(values):\n    return "


@asynccontextmanager
async def daemon_with(
    tmp_path: Path, fake: FakeServer, repos: tuple[Path, ...] = (), **options: Any
) -> AsyncIterator[tuple[TeamDaemon, dict[str, Any]]]:
    cert, key = self_signed(tmp_path)
    config = tmp_path / "server.toml"
    config.write_text(
        f'[instruct]\nbase_url = "{fake.base_url}"\n'
        "[completion]\ndebounce_ms = 0\ntimeout_s = 5.0\n"
        f'[index]\ncache_dir = "{tmp_path / "index-cache"}"\n'
    )
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {user: store.add(user) for user in ("alice", "bob")}
    daemon = TeamDaemon(
        dataclasses.replace(
            ServeOptions(
                port=0, ws_port=0, tls_cert=cert, tls_key=key, tokens=store.path, config=config
            ),
            repos=repos,
            **options,
        )
    )
    await daemon.start()
    try:
        yield daemon, {"tokens": tokens, "cert": cert, "store": store}
    finally:
        await daemon.aclose()


class RawEditor:
    """An editor speaking LSP by hand: it sends what it likes and reads when it likes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.bodies = read_bodies(reader, 64 * 1024 * 1024)
        self._next_id = 100
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls, port: int, cert: Path, token: str, folder: Path, settings: Any = None
    ) -> RawEditor:
        context = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        editor = cls(reader, writer)
        editor.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "capabilities": {},
                    "initializationOptions": {"token": token, "iquest": settings or {}},
                    "workspaceFolders": [{"uri": folder.as_uri(), "name": folder.name}],
                },
            }
        )
        await editor.answer(1)
        editor.notify("initialized", {})
        return editor

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(frame(json.dumps(message).encode()))

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any = ...) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not ...:
            message["params"] = params
        self.send(message)
        return self._next_id

    async def answer(self, msg_id: int, within: float = 10.0) -> dict[str, Any]:
        """The answer to ``msg_id`` (notifications on the way are kept in ``seen``)."""
        while True:
            body = await asyncio.wait_for(anext(self.bodies), within)
            message = json.loads(body)
            self.seen.append(message)
            if message.get("id") == msg_id and "method" not in message:
                return message

    def open(self, uri: str, text: str) -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )

    def complete(self, uri: str, line: int, character: int) -> int:
        return self.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 1},
            },
        )

    async def closed(self, within: float) -> bool:
        """Whether the daemon closes the connection within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError):
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def shown_messages(editor: RawEditor) -> list[str]:
    return [m["params"]["message"] for m in editor.seen if m.get("method") == "window/showMessage"]


async def test_an_edit_past_the_document_cap_stops_that_document_not_the_session(
    tmp_path: Path,
):
    """didChange was neither size- nor rate-limited: a document grew past the cap."""
    limits = UserLimits(document_bytes=20_000)
    async with fake_server() as fake, daemon_with(tmp_path, fake, limits=limits) as (daemon, team):
        port, cert = daemon.bound["tcp"], team["cert"]
        alice = await RawEditor.connect(port, cert, team["tokens"]["alice"], tmp_path / "proj")
        big, small = (tmp_path / "proj" / "big.py").as_uri(), (tmp_path / "proj" / "s.py").as_uri()
        alice.open(big, SOURCE)
        alice.open(small, SOURCE)
        growth = {
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
        }
        alice.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": big, "version": 2},
                "contentChanges": [{**growth, "text": "# " + "x" * 25_000 + "\n"}],
            },
        )
        refused = await alice.answer(alice.complete(big, 1, 11))
        served = await alice.answer(alice.complete(small, 1, 11))
        alice.close()
    assert "not open" in refused["error"]["message"]  # no longer followed
    assert served["result"]["items"][0]["insertText"] == fake.reply  # the session goes on
    assert any("no more suggestions" in m for m in shown_messages(alice))
    assert all(len(p) < 20_000 for p in fake.prompts)


async def test_notebook_cells_count_as_open_documents(tmp_path: Path):
    limits = UserLimits(open_documents=3)
    async with fake_server() as fake, daemon_with(tmp_path, fake, limits=limits) as (daemon, team):
        alice = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], team["tokens"]["alice"], tmp_path / "proj"
        )
        notebook = (tmp_path / "proj" / "n.ipynb").as_uri()
        cells = [
            {"uri": f"{notebook}#cell{n}", "languageId": "python", "version": 1, "text": "x = 1"}
            for n in range(5)
        ]
        alice.notify(
            "notebookDocument/didOpen",
            {
                "notebookDocument": {
                    "uri": notebook,
                    "notebookType": "jupyter-notebook",
                    "version": 1,
                    "cells": [{"kind": 2, "document": c["uri"]} for c in cells],
                },
                "cellTextDocuments": cells,
            },
        )
        await alice.answer(alice.request("iquest/stats", None))
        alice.close()
        opened = sum(len(c.server.workspace.text_documents) for c in daemon.connections.all())
    assert opened == 0
    assert any("more than 3 open documents" in m for m in shown_messages(alice))


async def test_malformed_requests_count_against_the_rate_limit_and_log_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Requests without params skipped the limiter, and each logged a whole traceback."""
    caplog.set_level(logging.DEBUG)
    limits = UserLimits(requests_per_s=1.0, burst=5)
    async with fake_server() as fake, daemon_with(tmp_path, fake, limits=limits) as (daemon, team):
        alice = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], team["tokens"]["alice"], tmp_path / "proj"
        )
        ids = [alice.request("textDocument/hover") for _ in range(40)]
        answers = [await alice.answer(i) for i in ids]
        alice.close()
        metrics = daemon.metrics.scrape().decode()
    errors = [a["error"]["message"] for a in answers]
    assert sum("limit reached" in e for e in errors) >= 30
    assert sum("invalid params" in e for e in errors) <= 6
    assert "Traceback" not in caplog.text
    assert 'iquest_limited_messages_total{method="textDocument/hover"}' in metrics


async def test_metric_labels_never_come_from_the_client(tmp_path: Path):
    """A dozen 100 KB method names grew /metrics to 2.4 MB; a lone surrogate broke it."""
    limits = UserLimits(requests_per_s=0.01, burst=1)
    async with fake_server() as fake, daemon_with(tmp_path, fake, limits=limits) as (daemon, team):
        alice = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], team["tokens"]["alice"], tmp_path / "proj"
        )
        names = [f"x/{n}{'y' * 100_000}" for n in range(5)] + ["\ud800"]
        for name in names:
            await alice.answer(alice.request(name, {}))
        alice.close()
        verify = ssl.create_default_context(cafile=str(team["cert"]))
        async with httpx.AsyncClient(verify=verify) as http:
            scraped = await http.get(f"https://127.0.0.1:{daemon.bound['ws']}/metrics")
    assert scraped.status_code == 200
    assert len(scraped.content) < 64_000
    assert "yyyy" not in scraped.text
    assert 'iquest_limited_messages_total{method="other"}' in scraped.text


async def test_before_authentication_a_message_is_small(tmp_path: Path):
    """8 MiB of JSON was read and parsed before the token was checked."""
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        context = ssl.create_default_context(cafile=str(team["cert"]))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", daemon.bound["tcp"], ssl=context
        )
        writer.write(b"Content-Length: %d\r\n\r\n" % (4 * 1024 * 1024))
        writer.write(b"[" + b"{}," * 20_000)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        refused = daemon.metrics.refused.labels("no initialize with a token")._value.get()
    assert data == b""  # closed unread
    assert refused == 1


async def test_silent_sockets_are_dropped_and_connections_capped(tmp_path: Path):
    """Sockets that never sent a ClientHello were held for 60 s each, without a cap."""
    async with (
        fake_server() as fake,
        daemon_with(
            tmp_path,
            fake,
            tls_handshake_timeout_s=0.5,
            max_connections_per_address=2,
        ) as (daemon, team),
    ):
        port = daemon.bound["tcp"]
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        started = asyncio.get_running_loop().time()
        ends = await asyncio.gather(
            *(asyncio.wait_for(reader.read(), 5) for reader, _ in silent),
            return_exceptions=True,
        )
        waited = asyncio.get_running_loop().time() - started
        for _, writer in silent:
            writer.close()
        # Authenticated connections are capped per address: the third is refused.
        folder = tmp_path / "proj"
        first = await RawEditor.connect(port, team["cert"], team["tokens"]["alice"], folder)
        second = await RawEditor.connect(port, team["cert"], team["tokens"]["bob"], folder)
        with pytest.raises((TimeoutError, ConnectionError, StopAsyncIteration, ssl.SSLError)):
            await RawEditor.connect(port, team["cert"], team["tokens"]["bob"], folder)
        first.close()
        second.close()
        capped = daemon.metrics.refused.labels("too many connections from one address")
        refused = capped._value.get()
    assert all(not isinstance(e, BaseException) or isinstance(e, ConnectionError) for e in ends)
    assert waited < 2.5  # each dropped after the handshake timeout, not 60 s
    assert refused >= 1


async def test_duplicate_authorization_headers_are_refused_not_an_error(tmp_path: Path):
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        token = team["tokens"]["alice"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(
                f"wss://127.0.0.1:{daemon.bound['ws']}",
                additional_headers=[
                    ("Authorization", f"Bearer {token}"),
                    ("Authorization", f"Bearer {token}"),
                ],
                ssl=ssl.create_default_context(cafile=str(team["cert"])),
            )
    assert refused.value.response.status_code == 401


async def test_revoking_a_token_ends_its_live_sessions(tmp_path: Path):
    async with (
        fake_server() as fake,
        daemon_with(tmp_path, fake, token_check_s=0.2) as (daemon, team),
    ):
        folder = tmp_path / "proj"
        alice = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], team["tokens"]["alice"], folder
        )
        bob = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], team["tokens"]["bob"], folder
        )
        async with websockets.connect(
            f"wss://127.0.0.1:{daemon.bound['ws']}",
            additional_headers={"Authorization": f"Bearer {team['tokens']['alice']}"},
            ssl=ssl.create_default_context(cafile=str(team["cert"])),
        ) as socket:
            await asyncio.to_thread(team["store"].revoke, "alice")
            alice_closed = await alice.closed(3.0)
            told = []
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:  # the notice that the token was revoked, then the close
                    told.append(await asyncio.wait_for(socket.recv(), 3.0))
            assert any(b"token was revoked" in message for message in told)
        bob_alive = not await bob.closed(0.5)
        bob.close()
    assert alice_closed
    assert bob_alive


async def test_a_restricted_token_stays_restricted_beside_an_unrestricted_one(tmp_path: Path):
    checkout = tmp_path / "server" / "proj"
    checkout.mkdir(parents=True)
    (checkout / "util.py").write_text("def helper_from_the_server(x):\n    return x * 2\n")
    async with (
        fake_server() as fake,
        daemon_with(tmp_path, fake, repos=(checkout,)) as (
            daemon,
            team,
        ),
    ):
        await daemon.checkouts.ready()
        restricted = team["store"].add("alice", ("some-other-checkout",))  # alice has both
        editor = await RawEditor.connect(
            daemon.bound["tcp"], team["cert"], restricted, tmp_path / "proj"
        )
        for attempt in range(4):
            uri = (tmp_path / "proj" / f"main{attempt}.py").as_uri()
            text = "from util import helper_from_the_server\n\n" + SOURCE
            editor.open(uri, text)
            await editor.answer(editor.complete(uri, 3, 11))
            await asyncio.sleep(0.2)
        editor.close()
    assert fake.prompts
    assert not any("def helper_from_the_server" in p for p in fake.prompts)
    # The checkout's index cache: under the config's [index] cache_dir, private.
    cache = tmp_path / "index-cache"
    assert any(cache.iterdir()) and cache.stat().st_mode & 0o077 == 0


async def test_a_websocket_that_never_speaks_is_closed_as_idle(tmp_path: Path):
    limits = UserLimits(idle_timeout_s=0.4)
    async with fake_server() as fake, daemon_with(tmp_path, fake, limits=limits) as (daemon, team):
        async with websockets.connect(
            f"wss://127.0.0.1:{daemon.bound['ws']}",
            additional_headers={"Authorization": f"Bearer {team['tokens']['alice']}"},
            ssl=ssl.create_default_context(cafile=str(team["cert"])),
        ) as socket:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 3.0)


async def test_one_editor_not_yet_initialized_leaves_the_users_other_editor_working(
    tmp_path: Path,
):
    """A WebSocket connection authenticates before its `initialize`: until then it has no
    workspace, and counting the user's documents across connections raised."""
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        async with websockets.connect(
            f"wss://127.0.0.1:{daemon.bound['ws']}",
            additional_headers={"Authorization": f"Bearer {team['tokens']['alice']}"},
            ssl=ssl.create_default_context(cafile=str(team["cert"])),
        ):
            alice = await RawEditor.connect(
                daemon.bound["tcp"], team["cert"], team["tokens"]["alice"], tmp_path / "proj"
            )
            uri = (tmp_path / "proj" / "a.py").as_uri()
            alice.open(uri, SOURCE)
            answer = await alice.answer(alice.complete(uri, 1, 11))
            alice.close()
    assert answer["result"]["items"][0]["insertText"] == fake.reply


async def test_editor_settings_cannot_ask_for_unbounded_work(tmp_path: Path):
    """An editor set actions.max_tokens to 10^9 and it was forwarded."""
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        huge = {"max_tokens": 10**9, "temperature": 99}
        editor = await RawEditor.connect(
            daemon.bound["tcp"],
            team["cert"],
            team["tokens"]["alice"],
            tmp_path / "proj",
            {"completion": huge, "actions": {"max_tokens": 10**9}},
        )
        uri = (tmp_path / "proj" / "a.py").as_uri()
        editor.open(uri, SOURCE)
        await editor.answer(editor.complete(uri, 1, 11))
        editor.close()
    body = fake.completion_requests[-1]
    assert body["max_tokens"] <= 128 and body["temperature"] <= 2.0


def test_a_writer_gives_up_on_an_editor_that_does_not_read():
    """A client that never read made the daemon buffer 230 MB."""
    written: list[bytes] = []
    closed: list[bool] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

        def close(self) -> None:
            pass

    writer = GuardedWriter(
        Transport(), lambda: sum(map(len, written)), 10_000, lambda: closed.append(True)
    )
    for _ in range(100):
        writer.write(b"x" * 1000)
    assert closed == [True]
    assert sum(map(len, written)) <= 11_000  # nothing more once over the limit


def test_the_token_store_is_private_and_survives_concurrent_changes(tmp_path: Path):
    store = TokenStore(tmp_path / "config" / "tokens.json")
    threads = [threading.Thread(target=store.add, args=(f"user{n}",)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    secret = store.server_secret()
    assert {e.user for e in TokenStore(store.path).entries()} == {f"user{n}" for n in range(12)}
    assert store.path.stat().st_mode & 0o077 == 0
    assert store.path.parent.stat().st_mode & 0o077 == 0
    assert (store.path.parent / "server.key").stat().st_mode & 0o077 == 0
    assert store.server_secret() == secret and len(secret) == 32
    assert not [p for p in store.path.parent.iterdir() if p.name.startswith(".tokens.json.")]


@pytest.mark.parametrize("scheme", ["tls", "wss"])
async def test_an_editor_slower_than_the_auth_timeout_to_initialize_still_connects(
    tmp_path: Path, scheme: str
):
    """The daemon gives a connection a second to present its token; the bridge connects only
    once the editor has sent its first message, so an editor that takes longer than that to
    send `initialize` after starting the bridge is not cut off (CI's busy cores found it)."""
    from lsprotocol import types as lsp_types

    from tests.support.lsp_session import end_position, inline_completion, open_document
    from tests.support.team import editor, team_daemon

    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        port = daemon.bound["tcp" if scheme == "tls" else "ws"]
        url = f"{scheme}://127.0.0.1:{port}"
        async with editor(
            url, team["tokens"]["alice"], tmp_path, team["cert"], before_initialize_s=1.6
        ) as client:
            uri = (tmp_path / "proj" / "slow.py").as_uri()
            open_document(client, uri, "value = ")
            answer = await inline_completion(client, uri, end_position("value = "))
    assert isinstance(answer, lsp_types.InlineCompletionList | list)
    assert fake.prompts  # the request reached the model server through the daemon
