"""Drive the real language server (``python -m lsp``) over stdio with pytest-lsp's client."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = Path(__file__).resolve().parents[2]


def editor_capabilities(editor: str = "visual_studio_code@v1.65.2") -> types.ClientCapabilities:
    capabilities = client_capabilities(editor)
    # Recorded capabilities predate LSP 3.18: add inline completion as a current client has it.
    text_document = capabilities.text_document or types.TextDocumentClientCapabilities()
    text_document.inline_completion = types.InlineCompletionClientCapabilities()
    capabilities.text_document = text_document
    return capabilities


@asynccontextmanager
async def lsp_session(
    options: dict[str, Any],
    tmp_path: Path,
    capabilities: types.ClientCapabilities | None = None,
    folders: list[Path] | None = None,
) -> AsyncIterator[LanguageClient]:
    """A daemon over stdio; ``folders``: its workspace folders (default: ``tmp_path`` alone)."""
    env = {
        **os.environ,
        # No user config file may leak into a test.
        "IQUEST_CONFIG": str(tmp_path / "absent-config.toml"),
        "PYTHONPATH": str(REPO),
    }
    options = {
        "log_file": str(tmp_path / "iquest.log"),
        "index": {"cache_dir": str(tmp_path / ".cache" / "index")},  # .cache: not indexed
        **options,
    }
    config = ClientServerConfig(server_command=[sys.executable, "-m", "lsp"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    # Kept for tests that check what the server announced (position encoding, ...).
    client.initialize_result = await client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=capabilities or editor_capabilities(),
            initialization_options={"iquest": options},
            workspace_folders=[
                types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name) for folder in folders
            ]
            if folders
            else [types.WorkspaceFolder(uri=tmp_path.as_uri(), name="proj")],
            root_uri=tmp_path.as_uri(),
        )
    )
    try:
        yield client
    finally:
        await client.shutdown_session()


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def change(
    client: LanguageClient,
    uri: str,
    version: int,
    start: types.Position,
    end: types.Position,
    text: str,
) -> None:
    """Replaces ``start``..``end`` with ``text`` (an incremental didChange)."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=start, end=end), text=text
                )
            ],
        )
    )


def end_position(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)


async def inline_completion(
    client: LanguageClient, uri: str, position: types.Position, *, invoked: bool = True
) -> types.InlineCompletionList | list[types.InlineCompletionItem] | None:
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if invoked
        else types.InlineCompletionTriggerKind.Automatic
    )
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position,
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
    )


def items_of(result: Any) -> list[types.InlineCompletionItem]:
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


async def stats(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("iquest/stats", None)
    # pygls hands back unknown methods' results as namedtuples.
    return result._asdict() if hasattr(result, "_asdict") else dict(result)
