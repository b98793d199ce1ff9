"""Client-side helpers for code actions: run a command, answer applyEdit like an editor, and
collect the iquest/explanation notifications."""

from __future__ import annotations

from typing import Any, Union

from lsprotocol import types
from pytest_lsp import LanguageClient


def act_like_an_editor(client: LanguageClient, texts: dict[str, str]) -> dict[str, Any]:
    """Answer workspace/applyEdit by applying the edit to ``texts`` (uri -> text), and record
    explanations. Returns the record: ``edits`` and ``explanations`` lists."""
    record: dict[str, Any] = {"edits": [], "explanations": []}

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        record["edits"].append(params.edit)
        for change in params.edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            for edit in change.edits:
                assert isinstance(edit, types.TextEdit)
                uri = change.text_document.uri
                texts[uri] = apply_text_edit(texts[uri], edit)
        for uri, edits in (params.edit.changes or {}).items():
            for edit in edits:
                texts[uri] = apply_text_edit(texts[uri], edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("iquest/explanation")
    def explanation(params: Any) -> None:
        record["explanations"].append(params)

    return record


def apply_text_edit(text: str, edit: types.TextEdit) -> str:
    """ASCII test texts: UTF-16 units are code points here."""
    lines = text.split("\n")

    def offset(position: types.Position) -> int:
        return sum(len(line) + 1 for line in lines[: position.line]) + position.character

    return text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]


async def execute(client: LanguageClient, command: str, arguments: dict[str, Any]) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=[arguments])
    )


def line_range(first: int, last_exclusive: int) -> dict[str, Any]:
    return {
        "start": {"line": first, "character": 0},
        "end": {"line": last_exclusive, "character": 0},
    }


def field(value: Any, name: str) -> Any:
    """pygls hands back custom results as namedtuples or dicts."""
    return value[name] if isinstance(value, dict) else getattr(value, name)


def fix_code_action_structuring(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0 structures a CodeAction that carries a command as a broken Command
    on the client side (the server's JSON is right): pick Command only when `command` is a
    string, as the specification tells them apart."""
    converter = client.protocol._converter

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(types.Command | types.CodeAction, structure)
    converter.register_structure_hook(Union[types.Command, types.CodeAction], structure)  # noqa: UP007


def action_progress(client: LanguageClient) -> dict[Any, list[Any]]:
    """The actions' progress bars by token (not the workspace's indexing, which has its own)."""
    return {
        token: reports
        for token, reports in client.progress_reports.items()
        if reports and not str(token).startswith("iquest-indexing-")
    }
