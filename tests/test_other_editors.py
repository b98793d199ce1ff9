"""Helix, Emacs (eglot, lsp-mode) and Zed: the daemon answers the requests each one sends.

None of them can run here, so each is represented by the capabilities it announces: eglot's as
recorded by pytest-lsp (Emacs 29.1), the others' as their sources build them (the parts that
change the daemon's answers: position encodings, completion and code action support, progress).
Against the real vLLM: position encoding negotiated, a completion item whose edit starts where
the typed word starts in that encoding, and our code actions offered on a selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import client_capabilities

from tests.conftest import VllmEndpoint
from tests.support.lsp_session import lsp_session, open_document

_COMPLETION = {
    "completionItem": {"snippetSupport": True, "insertReplaceSupport": True},
    "completionItemKind": {},
}
# Zed and lsp-mode render markdown documentation; Helix and eglot (as recorded) say nothing.
_COMPLETION_MARKDOWN = {
    "completionItem": {**_COMPLETION["completionItem"], "documentationFormat": ["markdown"]},
    "completionItemKind": {},
}
_CODE_ACTION = {
    "codeActionLiteralSupport": {
        "codeActionKind": {"valueSet": ["", "quickfix", "refactor", "source"]}
    },
    "isPreferredSupport": True,
}
HELIX = {  # helix-lsp/src/client.rs: UTF-8 first, no inline completion, stdio only
    "general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"]},
    "workspace": {"applyEdit": True, "configuration": True, "executeCommand": {}},
    "textDocument": {"completion": _COMPLETION, "codeAction": _CODE_ACTION},
    "window": {"workDoneProgress": True},
}
ZED = {  # UTF-16 only; code actions and completion, no generic inline completion
    "general": {"positionEncodings": ["utf-16"]},
    "workspace": {"applyEdit": True, "configuration": True, "executeCommand": {}},
    "textDocument": {"completion": _COMPLETION_MARKDOWN, "codeAction": _CODE_ACTION},
    "window": {"workDoneProgress": True, "showDocument": {"support": True}},
}
LSP_MODE = {  # lsp-mode 9: UTF-16, with inlineCompletion (lsp-inline-completion)
    "workspace": {"applyEdit": True, "configuration": True, "executeCommand": {}},
    "textDocument": {
        "completion": _COMPLETION_MARKDOWN,
        "codeAction": _CODE_ACTION,
        "inlineCompletion": {},
    },
    "window": {"workDoneProgress": True, "showDocument": {"support": True}},
}


def _capabilities(editor: str) -> types.ClientCapabilities:
    if editor == "eglot":
        return client_capabilities("emacs@v29.1")
    raw = {"helix": HELIX, "zed": ZED, "lsp-mode": LSP_MODE}[editor]
    return default_converter().structure(raw, types.ClientCapabilities)


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


SOURCE = 'label = "naïve café"\ncafé_total = 0\nprint(café'


@pytest.mark.parametrize(
    ("editor", "encoding"),
    [("helix", "utf-8"), ("eglot", "utf-32"), ("zed", "utf-16"), ("lsp-mode", "utf-16")],
)
async def test_the_daemon_answers_each_editor(
    editor: str, encoding: str, vllm: VllmEndpoint, tmp_path: Path
) -> None:
    options: dict[str, Any] = {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {"temperature": 0.0, "max_tokens": 8},
    }
    uri = (tmp_path / "prices.py").as_uri()
    capabilities = _capabilities(editor)
    async with lsp_session(options, tmp_path, capabilities) as client:
        announced = client.initialize_result.capabilities  # type: ignore[attr-defined]
        negotiated = announced.position_encoding or "utf-16"
        assert negotiated == encoding
        open_document(client, uri, SOURCE)
        last = SOURCE.split("\n")[-1]
        at = types.Position(line=2, character=_units(last, encoding))
        completion = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=at,
                context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
            )
        )
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(
                    start=types.Position(line=0, character=0),
                    end=types.Position(line=1, character=_units("café_total", encoding)),
                ),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
    assert isinstance(completion, types.CompletionList)
    assert len(completion.items) == 1
    edit = completion.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    # The edit replaces the typed word "café" and nothing before it, in the editor's units.
    assert edit.range.start == types.Position(line=2, character=_units("print(", encoding))
    assert edit.range.end == at
    assert edit.new_text.startswith("café")
    # Markdown documentation only for an editor that says it renders it.
    item = capabilities.text_document.completion.completion_item  # type: ignore[union-attr]
    if types.MarkupKind.Markdown in (item.documentation_format or []):  # type: ignore[union-attr]
        assert isinstance(completion.items[0].documentation, types.MarkupContent)
    else:
        assert completion.items[0].documentation == edit.new_text
    titles = {action.title for action in actions or []}
    assert {
        "iquest: Explain selection",
        "iquest: Fix selection",
        "iquest: Find bugs in selection",
        "iquest: Find bugs in this file",
    } <= titles, titles
