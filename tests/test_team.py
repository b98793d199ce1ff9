"""Team mode: ``--serve`` with many editors, each through ``iquest-lsp connect``.

The daemon runs in the test's event loop; editors are real bridge processes driven by
pytest-lsp, against a fake model server that records every request (to see whose code went
where)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from engine.team.identity import cache_salt
from engine.team.tokens import TokenStore
from lsp.serve.framing import frame
from lsp.serve.limits import UserLimits
from tests.conftest import VllmEndpoint
from tests.support.certificates import self_signed
from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    REPO,
    end_position,
    inline_completion,
    items_of,
    open_document,
    stats,
)
from tests.support.polling import eventually
from tests.support.team import editor, team_daemon

SOURCE = "def total(values):\n    return "


def test_tokens_are_stored_hashed_checked_and_revoked(tmp_path: Path):
    store = TokenStore(tmp_path / "tokens.json")
    token = store.add("carol")
    secret = token.removeprefix("iq_").partition("_")[2]  # the id is hex; the secret may hold "_"
    assert secret not in store.path.read_text()
    assert store.path.stat().st_mode & 0o077 == 0
    assert store.user_for(token) == "carol"
    assert store.user_for(token[:-1] + ("x" if token[-1] != "x" else "y")) is None
    assert store.user_for("iq_unknown_secret") is None
    assert store.user_for("") is None and store.user_for(None) is None
    assert store.revoke("carol") == 1
    assert store.user_for(token) is None
    assert [e.revoked for e in store.entries()] == [True]


async def test_two_editors_see_only_their_own_code_and_cache(tmp_path: Path):
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        # The same path on two machines, different contents.
        uri = (tmp_path / "proj" / "shared.py").as_uri()
        async with (
            editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as alice,
            editor(url, team["tokens"]["bob"], tmp_path, team["cert"]) as bob,
        ):
            open_document(alice, uri, "ALPHA_ONLY = 1\n" + SOURCE)
            open_document(bob, uri, "BRAVO_ONLY = 2\n" + SOURCE)
            for client, text in ((alice, "ALPHA_ONLY = 1\n"), (bob, "BRAVO_ONLY = 2\n")):
                result = await inline_completion(client, uri, end_position(text + SOURCE))
                assert items_of(result)[0].insert_text == fake.reply
    by_salt: dict[str, list[str]] = {}
    for body in fake.completion_requests:
        by_salt.setdefault(str(body.get("cache_salt")), []).append(str(body["prompt"]))
    secret = team["store"].server_secret()
    alice_salt, bob_salt = (cache_salt(secret, "user", user) for user in ("alice", "bob"))
    assert set(by_salt) == {alice_salt, bob_salt}
    # Keyed with the daemon's secret: not computable from the user's name.
    assert not any("alice" in salt or "bob" in salt for salt in by_salt)
    assert all("ALPHA_ONLY" in p and "BRAVO_ONLY" not in p for p in by_salt[alice_salt])
    assert all("BRAVO_ONLY" in p and "ALPHA_ONLY" not in p for p in by_salt[bob_salt])


async def test_one_editor_leaving_leaves_the_others_served(tmp_path: Path):
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        uri = (tmp_path / "proj" / "a.py").as_uri()
        async with editor(url, team["tokens"]["bob"], tmp_path, team["cert"]) as bob:
            async with editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as alice:
                open_document(alice, uri, SOURCE)
                assert items_of(await inline_completion(alice, uri, end_position(SOURCE)))
            # alice sent shutdown and exit: her connection is gone, the daemon is not.
            await eventually(lambda: daemon.metrics.connections._value.get() == 1, 5)
            open_document(bob, uri, SOURCE)
            assert items_of(await inline_completion(bob, uri, end_position(SOURCE)))


async def raw_initialize(port: int, cert: Path, options: Any) -> tuple[dict | None, float]:
    """Send one initialize over TLS; returns (the answer or None, seconds until closed)."""
    context = ssl.create_default_context(cafile=str(cert))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    started = asyncio.get_running_loop().time()
    if options is not ...:
        message = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": options},
        }
        writer.write(frame(json.dumps(message).encode()))
        await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    closed_after = asyncio.get_running_loop().time() - started
    writer.close()
    if not data:
        return None, closed_after
    body = data.split(b"\r\n\r\n", 1)[1]
    return json.loads(body), closed_after


async def test_bad_missing_and_revoked_tokens_are_refused(tmp_path: Path):
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        port, cert = daemon.bound["tcp"], team["cert"]
        bad, _ = await raw_initialize(port, cert, {"token": "iq_0000_nope"})
        missing, _ = await raw_initialize(port, cert, {"iquest": {}})
        silent, closed_after = await raw_initialize(port, cert, ...)
        team["store"].revoke("bob")
        revoked, _ = await raw_initialize(port, cert, {"token": team["tokens"]["bob"]})
        accepted_token = team["tokens"]["alice"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(
                f"wss://127.0.0.1:{daemon.bound['ws']}",
                additional_headers={"Authorization": "Bearer iq_bad_token"},
                ssl=ssl.create_default_context(cafile=str(cert)),
            )
    for answer in (bad, missing, revoked):
        assert answer is not None and answer["error"]["code"] == -32001
    assert silent is None and closed_after < 2.0  # closed within about a second
    assert refused.value.response.status_code == 401
    assert accepted_token not in (tmp_path / "tokens.json").read_text()


async def test_websocket_editor_and_http_endpoints(tmp_path: Path):
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        url = f"wss://127.0.0.1:{daemon.bound['ws']}"
        uri = (tmp_path / "proj" / "w.py").as_uri()
        async with editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as alice:
            open_document(alice, uri, SOURCE)
            assert items_of(await inline_completion(alice, uri, end_position(SOURCE)))
            verify = ssl.create_default_context(cafile=str(team["cert"]))
            async with httpx.AsyncClient(verify=verify) as http:
                health = await http.get(f"https://127.0.0.1:{daemon.bound['ws']}/healthz")
                metrics = await http.get(f"https://127.0.0.1:{daemon.bound['ws']}/metrics")
    assert health.status_code == 200
    assert "iquest_connections 1.0" in metrics.text
    assert "iquest_completion_requests_total" in metrics.text
    # Every daemon series the shipped Grafana dashboard plots is exported.
    dashboard = json.loads((REPO / "deploy" / "grafana" / "iquest-lsp.json").read_text())
    plotted = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"iquest_[a-z_]+", target["expr"])
    }
    assert len(plotted) >= 8
    assert all(f"\n{name}" in metrics.text or f"# TYPE {name}" in metrics.text for name in plotted)


async def test_malformed_frames_close_only_their_connection(tmp_path: Path):
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        port, cert = daemon.bound["tcp"], team["cert"]
        context = ssl.create_default_context(cafile=str(cert))
        uri = (tmp_path / "proj" / "a.py").as_uri()
        async with editor(f"tls://127.0.0.1:{port}", team["tokens"]["bob"], tmp_path, cert) as bob:
            # An authenticated connection that then sends garbage.
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            hello = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "capabilities": {},
                    "initializationOptions": {"token": team["tokens"]["alice"]},
                },
            }
            writer.write(frame(json.dumps(hello).encode()))
            writer.write(frame(b"{not json"))
            writer.write(
                frame(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "no/such"}).encode())
            )
            writer.write(b"Content-Length: 99999999999\r\n\r\n")
            await writer.drain()
            answers = await asyncio.wait_for(reader.read(), 5)  # read until the daemon closes
            writer.close()
            open_document(bob, uri, SOURCE)
            assert items_of(await inline_completion(bob, uri, end_position(SOURCE)))
    assert b'"code": -32700' in answers or b'"code":-32700' in answers  # parse error, answered
    assert b"-32601" in answers  # unknown method, answered


async def test_per_user_limits_refuse_bursts_and_documents_but_not_other_users(tmp_path: Path):
    limits = UserLimits(requests_per_s=2.0, burst=3, open_documents=2)
    async with fake_server() as fake, team_daemon(tmp_path, fake, limits) as (daemon, team):
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        async with (
            editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as alice,
            editor(url, team["tokens"]["bob"], tmp_path, team["cert"]) as bob,
        ):
            uris = [(tmp_path / "proj" / f"f{n}.py").as_uri() for n in range(3)]
            for uri in uris:
                open_document(alice, uri, SOURCE)
            burst = await asyncio.gather(
                *(inline_completion(alice, uris[0], end_position(SOURCE)) for _ in range(6)),
                return_exceptions=True,
            )
            open_document(bob, uris[0], SOURCE)
            bobs = await inline_completion(bob, uris[0], end_position(SOURCE))
            await eventually(lambda: any("not opened here" in m.message for m in alice.messages), 5)
            warnings = [m.message for m in alice.messages if "not opened here" in m.message]
    refused = [r for r in burst if isinstance(r, Exception)]
    assert refused and all("limit reached" in str(r) for r in refused)
    assert len(refused) < len(burst)  # the first ones, within the burst, were served
    assert items_of(bobs)  # alice's burst costs bob nothing
    assert warnings and "more than 2 open documents" in warnings[0]


async def test_a_users_burst_waits_behind_other_users_at_the_model_server(tmp_path: Path):
    """Fair share: each request carries vLLM priority = base + that user's requests already
    at the server, so bob's one request outranks alice's fourth, though it came last."""
    async with fake_server() as fake, team_daemon(tmp_path, fake) as (daemon, team):
        fake.mode = "hold"
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        async with (
            editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as alice,
            editor(url, team["tokens"]["bob"], tmp_path, team["cert"]) as bob,
        ):
            # One document per request: a newer request on the same document would cancel.
            uris = [(tmp_path / "proj" / f"f{n}.py").as_uri() for n in range(4)]
            for uri in uris:
                open_document(alice, uri, SOURCE)
            bursts = [
                asyncio.ensure_future(inline_completion(alice, uri, end_position(SOURCE)))
                for uri in uris
            ]
            await eventually(lambda: len(fake.completion_requests) == 4, 10)
            open_document(bob, uris[0], SOURCE)
            bobs = asyncio.ensure_future(inline_completion(bob, uris[0], end_position(SOURCE)))
            await eventually(lambda: len(fake.completion_requests) == 5, 10)
            fake.release.set()
            answers = await asyncio.gather(*bursts, bobs)
    priorities = [body.get("priority", 0) for body in fake.completion_requests]
    assert sorted(priorities[:4]) == [0, 1, 2, 3]  # alice's four, one behind the other
    assert priorities[4] == 0  # bob's, first in line although it came last
    assert all(items_of(answer) for answer in answers)
    assert daemon.fair_share.at_server("alice") == 0  # every place given back


async def test_server_checkouts_give_context_only_to_users_allowed_to_see_them(tmp_path: Path):
    checkout = tmp_path / "server" / "proj"
    checkout.mkdir(parents=True)
    (checkout / "util.py").write_text("def helper_from_the_server(x):\n    return x * 2\n")
    async with (
        fake_server() as fake,
        team_daemon(tmp_path, fake, repos=(checkout,)) as (
            daemon,
            team,
        ),
    ):
        await daemon.checkouts.ready()
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        prompts: dict[str, list[str]] = {}
        for user in ("alice", "carol"):
            async with editor(url, team["tokens"][user], tmp_path, team["cert"]) as client:
                before = len(fake.prompts)
                for attempt in range(6):  # header token counts arrive in the background
                    uri = (tmp_path / "proj" / f"main{attempt}.py").as_uri()
                    text = "from util import helper_from_the_server\n\n" + SOURCE
                    open_document(client, uri, text)
                    await inline_completion(client, uri, end_position(text))
                    await asyncio.sleep(0.3)
                prompts[user] = fake.prompts[before:]
    assert any("def helper_from_the_server" in p for p in prompts["alice"])
    assert not any("def helper_from_the_server" in p for p in prompts["carol"])


async def test_worker_processes_share_the_port_sum_their_metrics_and_are_replaced(
    tmp_path: Path, vllm: VllmEndpoint
):
    """--workers 2, against the real vLLM: editors are served by the worker processes, /metrics
    sums them, a worker that dies is replaced while the other goes on serving, and SIGINT stops
    them all."""
    cert, key = self_signed(tmp_path)
    store = TokenStore(tmp_path / "tokens.json")
    token = store.add("alice")
    config = tmp_path / "server.toml"
    config.write_text(
        f'[instruct]\nbase_url = "{vllm.base_url}"\nmodel = "{vllm.model}"\n'
        "[completion]\ndebounce_ms = 0\ntemperature = 0.0\n"
        f'[index]\ncache_dir = "{tmp_path / "index-cache"}"\n'
    )
    daemon = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lsp", "--serve", "--port", "0", "--ws-port", "0"),
        *("--workers", "2", "--tls-cert", str(cert), "--tls-key", str(key)),
        *("--tokens", str(store.path), "--config", str(config)),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert daemon.stdout is not None
        banner = (await asyncio.wait_for(daemon.stdout.readline(), 60)).decode()
        up_at = asyncio.get_running_loop().time()
        found = re.search(
            r"tls://[^:]+:(\d+) wss://[^:]+:(\d+) \(2 workers: (\d+), (\d+)\)", banner
        )
        assert found, banner
        tcp, ws = int(found.group(1)), int(found.group(2))
        workers = {int(found.group(3)), int(found.group(4))}
        url = f"tls://127.0.0.1:{tcp}"
        uri = (tmp_path / "proj" / "w.py").as_uri()

        async def one_editor() -> int:
            async with editor(url, token, tmp_path, cert) as client:
                open_document(client, uri, SOURCE)
                assert items_of(await inline_completion(client, uri, end_position(SOURCE)))
                return (await stats(client))["worker_pid"]

        served_by = await asyncio.gather(*(one_editor() for _ in range(8)))
        assert set(served_by) <= workers
        verify = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=verify) as http:
            metrics = (await http.get(f"https://127.0.0.1:{ws}/metrics")).text
        assert "iquest_completion_requests_total 8.0" in metrics  # both workers' counts

        # A worker dies (after its first five seconds): the other serves, a new one starts.
        await asyncio.sleep(max(0.0, up_at + 5.5 - asyncio.get_running_loop().time()))
        victim = served_by[0]
        os.kill(victim, signal.SIGKILL)
        assert await one_editor() in workers - {victim} | _children(daemon.pid)
        deadline = asyncio.get_running_loop().time() + 30
        while len(_children(daemon.pid) - {victim}) < 2:
            assert asyncio.get_running_loop().time() < deadline, "no replacement worker"
            await asyncio.sleep(0.2)
        replacement = (_children(daemon.pid) - workers).pop()
        assert replacement != victim
    finally:
        daemon.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(daemon.wait(), 30) == 0
    assert not _alive(replacement)


def _children(pid: int) -> set[int]:
    tasks = Path(f"/proc/{pid}/task")
    return {int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
