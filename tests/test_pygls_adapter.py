"""The one place that reads pygls's private state (lsp.protocol.IquestProtocol's adapter),
checked against the installed pygls: if an upgrade moves ``_request_futures``, ``_send_data``
or ``_workspace``, these fail before the team daemon's limits silently stop working."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version
from typing import Any

from lsp.language_server import IquestServer
from lsp.server import build_stdio_server


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes | str) -> None:
        self.sent.append(json.loads(data))

    def close(self) -> None:
        pass


def server_with(recorder: Recorder) -> IquestServer:
    server = build_stdio_server(None)
    server.protocol.set_writer(recorder, include_headers=False)
    return server


def feed(server: IquestServer, message: dict[str, Any]) -> None:
    """As the team dispatcher does: structured by the protocol, then handled."""
    structured = json.loads(json.dumps(message), object_hook=server.rpc.structure_message)
    server.rpc.handle_message(structured)


def test_the_adapter_is_checked_against_this_pygls():
    assert version("pygls").startswith("2.")  # written against pygls 2.1


async def test_open_documents_are_none_before_initialize_then_the_workspaces():
    recorder = Recorder()
    server = server_with(recorder)
    assert server.rpc.open_documents() == {}
    feed(
        server,
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
    )
    uri = "file:///tmp/adapter.py"
    feed(
        server,
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x"}
            },
        },
    )
    await asyncio.sleep(0.05)
    assert list(server.rpc.open_documents()) == [uri]
    assert server.rpc.open_documents()[uri].source == "x"


async def test_a_running_request_is_found_until_it_is_answered():
    recorder = Recorder()
    server = server_with(recorder)
    release = asyncio.Event()

    @server.feature("iquest/adapterProbe")
    async def probe(ls: IquestServer, params: Any) -> str:
        await release.wait()
        return "done"

    feed(
        server,
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
    )
    feed(server, {"jsonrpc": "2.0", "id": 7, "method": "iquest/adapterProbe", "params": {}})
    running = server.rpc.running_request(7)
    assert running is not None and not running.done()
    release.set()
    for _ in range(100):
        if server.rpc.running_request(7) is None:
            break
        await asyncio.sleep(0.01)
    assert server.rpc.running_request(7) is None
    assert {"jsonrpc": "2.0", "id": 7, "result": "done"} in recorder.sent


def test_send_raw_writes_the_message_as_is():
    recorder = Recorder()
    server = server_with(recorder)
    message = {"jsonrpc": "2.0", "id": 3, "error": {"code": -32803, "message": "limit"}}
    server.rpc.send_raw(message)
    assert recorder.sent == [message]
