"""Which actions the editor's lightbulb offers: on a diagnostic, on a selection, on the file."""

from __future__ import annotations

from lsprotocol import types

from lsp import extensions
from lsp.documents import open_document
from lsp.extensions import ActionArguments, Range
from lsp.findings import DIAGNOSTIC_SOURCE
from lsp.language_server import IquestServer


def on_code_action(ls: IquestServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    if open_document(ls.workspace, uri) is None:
        return []
    selection = params.range
    has_selection = selection.start != selection.end
    actions: list[types.CodeAction] = []
    for diagnostic in params.context.diagnostics:
        arguments = ActionArguments(
            uri=uri, range=_whole_lines(diagnostic.range), problem=diagnostic.message
        )
        actions.append(
            types.CodeAction(
                title=f"iquest: Fix “{_short(diagnostic.message)}”",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=diagnostic.source == DIAGNOSTIC_SOURCE,
                command=_command("Fix", extensions.FIX, arguments),
            )
        )
    if has_selection:
        arguments = ActionArguments(uri=uri, range=Range.of(selection))
        actions += [
            types.CodeAction(
                title="iquest: Explain selection",
                kind=extensions.KIND_EXPLAIN,
                command=_command("Explain", extensions.EXPLAIN, arguments),
            ),
            types.CodeAction(
                title="iquest: Fix selection",
                kind=types.CodeActionKind.RefactorRewrite,
                command=_command("Fix", extensions.FIX, arguments),
            ),
            types.CodeAction(
                title="iquest: Find bugs in selection",
                kind=extensions.KIND_FIND_BUGS,
                command=_command("Find bugs", extensions.FIND_BUGS, arguments),
            ),
        ]
    whole_file = ActionArguments(uri=uri)
    actions.append(
        types.CodeAction(
            title="iquest: Find bugs in this file",
            kind=extensions.KIND_FIND_BUGS,
            command=_command("Find bugs", extensions.FIND_BUGS, whole_file),
        )
    )
    if not has_selection and not params.context.diagnostics:
        actions.insert(
            0,
            types.CodeAction(
                title="iquest: Explain this file",
                kind=extensions.KIND_EXPLAIN,
                command=_command("Explain", extensions.EXPLAIN, whole_file),
            ),
        )
    only = params.context.only
    if only:
        actions = [a for a in actions if any(str(a.kind or "").startswith(k) for k in only)]
    return actions


def _whole_lines(range_: types.Range) -> Range:
    end_line = range_.end.line + (
        1 if range_.end.character > 0 or range_.end == range_.start else 0
    )
    return Range.of(
        types.Range(
            start=types.Position(line=range_.start.line, character=0),
            end=types.Position(line=end_line, character=0),
        )
    )


def _command(title: str, name: str, arguments: ActionArguments) -> types.Command:
    # Unset fields are left out: clients send the arguments back as they got them.
    payload = arguments.model_dump(by_alias=True, mode="json", exclude_none=True)
    return types.Command(title=f"iquest: {title}", command=name, arguments=[payload])


def _short(text: str, limit: int = 50) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
