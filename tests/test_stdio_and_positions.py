"""The single-user daemon's own inputs: a stdio stream that lies about its sizes, positions on
huge or astral-plane lines, a one-line document of megabytes, and warnings for tokens sent in
clear."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from engine.completion.context import build_cursor_context
from engine.completion.templating.templates import template_named
from engine.completion.types import CompletionRequest
from engine.place import Place
from lsp.fast_positions import FastPositionCodec
from lsp.serve.bridge import cleartext_warning
from lsp.stdio import BoundedStdinReader
from tests.support.lsp_session import REPO


def framed(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_huge_content_length_is_skipped_and_the_session_goes_on():
    """Content-Length: 10^14 made pygls allocate it and the server exit with MemoryError."""
    initialize = framed(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "processId": None},
        }
    )
    junk = b"x" * 300_000
    stream = (
        b"Content-Length: %d\r\n\r\n%s" % (len(junk), junk)  # over the test's limit: skipped
        + initialize
        + framed({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        + framed({"jsonrpc": "2.0", "method": "exit"})
    )
    script = (
        "import sys, io\n"
        "from lsp.server import build_stdio_server\n"
        "from lsp import stdio\n"
        "stdio.MAX_MESSAGE_BYTES = 100_000\n"
        "stdio.serve_stdio(build_stdio_server(None))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=stream,
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert b'"id": 1' in done.stdout and b"capabilities" in done.stdout
    assert b"MemoryError" not in done.stderr
    assert b"a message of 300000 bytes (the limit is 100000): skipped" in done.stderr


async def test_the_reader_refuses_to_allocate_what_a_header_claims():
    claimed = 10**14
    reader = BoundedStdinReader(io.BytesIO(b"x" * 1000), max_bytes=1_000_000)
    assert await reader.readexactly(claimed) == b""  # read through in pieces, then the end
    header = await BoundedStdinReader(io.BytesIO(b"C" * 10_000 + b"\r\n")).readline()
    assert len(header) <= 1024


def test_fast_positions_agree_with_pygls_on_every_encoding():
    random.seed(7)
    alphabet = ["a", "é", "😋", "\n", "\r\n", "中", "\ud800"]
    for encoding in (
        types.PositionEncodingKind.Utf16,
        types.PositionEncodingKind.Utf8,
        types.PositionEncodingKind.Utf32,
    ):
        slow, fast = PositionCodec(encoding), FastPositionCodec(encoding)
        for _ in range(2000):
            line = "".join(random.choice(alphabet) for _ in range(random.randint(0, 10)))
            for character in range(0, 24):
                position = types.Position(line=0, character=character)
                expected = slow.position_from_client_units([line], position)
                assert fast.position_from_client_units([line], position) == expected
                assert fast.client_num_units(line) == slow.client_num_units(line)


def test_a_one_line_document_of_megabytes_sends_a_prompt_within_the_budget():
    """A 5 MB one-line document sent a 5 MB prompt."""
    text = "x = [" + "1, " * 1_700_000 + "]"
    request = CompletionRequest(Place("file:///big.py"), "python", text, cursor=len(text) // 2)
    context = build_cursor_context(request, 2048)
    prompt = template_named("qwen").render(context)
    assert len(prompt) < 2048 * 8


def test_tokens_in_clear_are_warned_about(tmp_path: Path):
    assert cleartext_warning("tcp://gpu-box.example:7070") is not None
    assert cleartext_warning("ws://10.0.0.5:7071") is not None
    assert cleartext_warning("tls://gpu-box.example:7070") is None
    assert cleartext_warning("tcp://127.0.0.1:7070") is None
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsp",
            "--serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--ws-port",
            "0",
            "--tokens",
            str(tmp_path / "tokens.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert serve.stderr is not None
        first = serve.stderr.readline()  # printed before anything else starts
    finally:
        serve.kill()
        serve.wait()
    assert b"WARNING: no --tls-cert" in first
