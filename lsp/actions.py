"""Code actions and their commands: thin handlers over ``engine.actions``.

Explain / Fix / Find bugs are offered on a selection or at a diagnostic, and run as
``workspace/executeCommand`` with cancellable work-done progress. Results land as the editor
expects: explanations as an ``iquest/explanation`` notification (the plugins render it) and a
read-only markdown document (``window/showDocument``) for plain clients; fixes as
``workspace/applyEdit``; findings as diagnostics with a quick fix each."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument

from engine.actions.types import ActionError, ActionKind, ActionRequest, Finding
from engine.health import Notice
from lsp.documents import open_document
from lsp.positions import position_at, range_offsets

if TYPE_CHECKING:
    from lsp.server import IquestServer

log = logging.getLogger(__name__)

EXPLAIN, FIX, FIND_BUGS, ASK = "iquest.explain", "iquest.fix", "iquest.findBugs", "iquest.ask"
COMMANDS = {EXPLAIN: ActionKind.EXPLAIN, FIX: ActionKind.FIX, FIND_BUGS: ActionKind.FIND_BUGS}
EXPLANATION_NOTIFICATION = "iquest/explanation"
KEEP_EXPLANATIONS = 50
DIAGNOSTIC_SOURCE = "iquest"
KIND_EXPLAIN = "iquest.explain"
KIND_FIND_BUGS = "source.iquest.findBugs"
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}
T = TypeVar("T")


class ActionFailed(JsonRpcException):
    """LSP's RequestFailed: the action ran and could not give a result."""

    code = -32803


def register(ls: IquestServer) -> None:
    ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.QuickFix,
                types.CodeActionKind.RefactorRewrite,
                KIND_EXPLAIN,
                KIND_FIND_BUGS,
            ],
            resolve_provider=False,
        ),
    )(on_code_action)
    ls.command(EXPLAIN)(run_explain)
    ls.command(FIX)(run_fix)
    ls.command(FIND_BUGS)(run_find_bugs)
    ls.command(ASK)(run_ask)


# --- offering ------------------------------------------------------------------------------
def on_code_action(ls: IquestServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    if open_document(ls.workspace, uri) is None:
        return []
    selection = params.range
    has_selection = selection.start != selection.end
    actions: list[types.CodeAction] = []
    for diagnostic in params.context.diagnostics:
        arguments = {
            "uri": uri,
            "range": _whole_lines(diagnostic.range),
            "problem": diagnostic.message,
        }
        actions.append(
            types.CodeAction(
                title=f"iquest: Fix “{_short(diagnostic.message)}”",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=diagnostic.source == DIAGNOSTIC_SOURCE,
                command=_command("Fix", FIX, arguments),
            )
        )
    if has_selection:
        arguments = {"uri": uri, "range": _range_json(selection)}
        actions += [
            types.CodeAction(
                title="iquest: Explain selection",
                kind=KIND_EXPLAIN,
                command=_command("Explain", EXPLAIN, arguments),
            ),
            types.CodeAction(
                title="iquest: Fix selection",
                kind=types.CodeActionKind.RefactorRewrite,
                command=_command("Fix", FIX, arguments),
            ),
            types.CodeAction(
                title="iquest: Find bugs in selection",
                kind=KIND_FIND_BUGS,
                command=_command("Find bugs", FIND_BUGS, arguments),
            ),
        ]
    actions.append(
        types.CodeAction(
            title="iquest: Find bugs in this file",
            kind=KIND_FIND_BUGS,
            command=_command("Find bugs", FIND_BUGS, {"uri": uri}),
        )
    )
    if not has_selection and not params.context.diagnostics:
        actions.insert(
            0,
            types.CodeAction(
                title="iquest: Explain this file",
                kind=KIND_EXPLAIN,
                command=_command("Explain", EXPLAIN, {"uri": uri}),
            ),
        )
    only = params.context.only
    if only:
        actions = [a for a in actions if any(str(a.kind or "").startswith(k) for k in only)]
    return actions


# --- running -------------------------------------------------------------------------------
async def run_explain(ls: IquestServer, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return await _explain(ls, ActionKind.EXPLAIN, arguments)


async def run_ask(ls: IquestServer, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return await _explain(ls, ActionKind.ASK, arguments)


async def _explain(
    ls: IquestServer, kind: ActionKind, arguments: dict[str, Any] | None
) -> dict[str, Any]:
    request, document = _request(ls, kind, arguments)
    service = ls.actions()
    title = "Explain" if kind is ActionKind.EXPLAIN else "Ask"
    run = service.explain if kind is ActionKind.EXPLAIN else service.ask
    explanation = await _with_progress(ls, title, lambda progress: run(request, progress))
    markdown = explanation.markdown
    if explanation.thinking and ls.service().settings.actions.show_thinking:
        quoted = "\n".join(f"> {line}" for line in explanation.thinking.splitlines())
        markdown = f"<details><summary>Reasoning</summary>\n\n{quoted}\n\n</details>\n\n{markdown}"
    payload = {
        "uri": request.document_uri,
        "range": _range_json(_range(document, request.start, request.end)),
        "kind": kind.value,
        "question": request.question,
        "markdown": markdown,
    }
    ls.protocol.notify(EXPLANATION_NOTIFICATION, payload)
    # Team mode: the file would be on the server, out of the editor's reach.
    if ls.team is None and _can_show_document(ls) and not _renders_explanations(ls):
        shown = _write_explanation(ls, request, markdown)
        await ls.window_show_document_async(
            types.ShowDocumentParams(
                uri=from_fs_path(str(shown)) or shown.as_uri(), take_focus=True
            )
        )
        payload["document"] = shown.as_uri()
    return payload


async def run_fix(ls: IquestServer, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    request, document = _request(ls, ActionKind.FIX, arguments)
    version = document.version
    outcome = await _with_progress(ls, "Fix", lambda progress: ls.actions().fix(request, progress))
    if outcome.edit is None:
        message = f"iquest: no fix applied: {outcome.problem}"
        ls.notify_user(Notice("warning", message))
        return {"applied": False, "reason": outcome.problem, "attempts": outcome.attempts}
    current = ls.workspace.get_text_document(request.document_uri)
    if current.version != version or current.source != request.text:
        reason = "the file changed while the fix was being made; run Fix again"
        ls.notify_user(Notice("warning", f"iquest: no fix applied: {reason}"))
        return {"applied": False, "reason": reason, "attempts": outcome.attempts}
    edit = types.TextEdit(
        range=_range(document, outcome.edit.start, outcome.edit.end), new_text=outcome.edit.new_text
    )
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            label="iquest: Fix", edit=_workspace_edit(ls, document, edit)
        )
    )
    if not result.applied:
        reason = result.failure_reason or "the editor refused the edit"
        ls.notify_user(Notice("warning", f"iquest: no fix applied: {reason}"))
    return {
        "applied": bool(result.applied),
        "reason": None if result.applied else result.failure_reason,
        "attempts": outcome.attempts,
    }


async def run_find_bugs(
    ls: IquestServer, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    request, _ = _request(ls, ActionKind.FIND_BUGS, arguments)
    findings = await _with_progress(
        ls, "Find bugs", lambda progress: ls.actions().find_bugs(request, progress)
    )
    current = ls.workspace.get_text_document(request.document_uri)
    ls.findings.publish(request.document_uri, request.text, findings, replace=request.whole_file)
    if current.source != request.text:  # edited meanwhile: keep only what still matches
        ls.findings.reconcile(request.document_uri, current.source)
    publish_findings(ls, request.document_uri)
    if not findings:
        ls.notify_user(Notice("info", "iquest: no bugs found"))
    return {"findings": len(findings)}


def publish_findings(ls: IquestServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    diagnostics = [_diagnostic(document, f) for f in ls.findings.get(uri)]
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version)
    )


def _diagnostic(document: TextDocument, finding: Finding) -> types.Diagnostic:
    lines = document.lines
    last = min(finding.end_line, max(0, len(lines) - 1))
    end_text = lines[last].rstrip("\r\n") if lines else ""
    return types.Diagnostic(
        range=types.Range(
            start=types.Position(line=finding.start_line, character=0),
            end=types.Position(
                line=last, character=document.position_codec.client_num_units(end_text)
            ),
        ),
        message=finding.message,
        severity=_SEVERITY[finding.severity],
        source=DIAGNOSTIC_SOURCE,
    )


async def _with_progress(
    ls: IquestServer, title: str, work: Callable[[Callable[[str, int | None], None]], Awaitable[T]]
) -> T:
    """Runs ``work`` under work-done progress that the user can cancel; errors become a
    message and a RequestFailed answer, never a crash."""
    token = str(uuid.uuid4())
    progress_ok = await _create_progress(ls, token)
    task = asyncio.current_task()
    if progress_ok:
        ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=f"iquest: {title}", cancellable=True)
        )
        future = ls.work_done_progress.tokens.get(token)
        if future is not None and task is not None:
            loop = asyncio.get_running_loop()

            def cancelled_by_user(done: Future[object]) -> None:
                if done.cancelled():
                    log.info("%s cancelled from the progress bar", title)
                    loop.call_soon_threadsafe(task.cancel)

            future.add_done_callback(cancelled_by_user)

    def report(message: str, percentage: int | None) -> None:
        if progress_ok:
            ls.work_done_progress.report(
                token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    outcome = "cancelled"
    try:
        log.debug("%s: running under progress %s", title, token if progress_ok else None)
        result = await work(report)
        outcome = "done"
        return result
    except ActionError as error:
        outcome = f"failed: {error}"
        ls.notify_user(Notice("error", f"iquest: {title} failed: {error}"))
        raise ActionFailed(str(error)) from error
    finally:
        if progress_ok:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
            ls.work_done_progress.tokens.pop(token, None)


async def _create_progress(ls: IquestServer, token: str) -> bool:
    window = ls.client_capabilities.window
    if not (window and window.work_done_progress):
        return False
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as error:  # a client may refuse; the action runs without a bar
        log.info("work done progress refused: %s", error)
        return False
    return True


def _request(
    ls: IquestServer, kind: ActionKind, arguments: dict[str, Any] | None
) -> tuple[ActionRequest, TextDocument]:
    if not isinstance(arguments, dict) or not isinstance(arguments.get("uri"), str):
        raise JsonRpcInvalidParams(f"{kind.value} takes one argument: {{uri, range?, question?}}")
    uri = arguments["uri"]
    document = open_document(ls.workspace, uri)
    if document is None:
        raise JsonRpcInvalidParams(f"document {uri[:200]} is not open")
    start = end = 0
    if arguments.get("range") is not None:
        try:
            selection = ls.protocol._converter.structure(arguments["range"], types.Range)
        except Exception as error:
            raise JsonRpcInvalidParams(f"not a range: {arguments['range']!r}") from error
        start, end = range_offsets(document, _clamped(document, selection))
    question = arguments.get("question") or arguments.get("problem")
    if kind is ActionKind.ASK and not (isinstance(question, str) and question.strip()):
        raise JsonRpcInvalidParams("iquest.ask needs a 'question' (the editor plugin asks for it)")
    path = ls.server_path(uri)
    relative = None
    if ls.engine_workspace is not None and path:
        _, relative = ls.engine_workspace.locate(path)
    request = ActionRequest(
        kind=kind,
        document_uri=uri,
        language_id=document.language_id or "plaintext",
        text=document.source,
        start=start,
        end=end,
        question=question if isinstance(question, str) else None,
        relative_path=relative or (path.name if path else None),
        path=path,
        session=ls.session_for_document(uri),
    )
    return request, document


def _workspace_edit(
    ls: IquestServer, document: TextDocument, edit: types.TextEdit
) -> types.WorkspaceEdit:
    workspace = ls.client_capabilities.workspace
    edits = workspace.workspace_edit if workspace else None
    if edits and edits.document_changes:
        # Versioned: the editor refuses the edit if the file changed after we read it.
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=document.uri, version=document.version
                    ),
                    edits=[edit],
                )
            ]
        )
    return types.WorkspaceEdit(changes={document.uri: [edit]})


def _write_explanation(ls: IquestServer, request: ActionRequest, markdown: str) -> Path:
    folder = ls.explanations_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(request.relative_path or "file").name
    digest = hashlib.blake2b(markdown.encode(), digest_size=4).hexdigest()
    target = folder / f"{request.kind.value}-{name}-{digest}.md"
    if target.exists():
        target.chmod(0o644)
    target.write_text(markdown, encoding="utf-8")
    target.chmod(0o444)  # read-only: an explanation is not a file to edit
    # Keep the newest few: an editor tab may still show them, the rest is litter.
    older = sorted(folder.glob("*.md"), key=lambda f: f.stat().st_mtime, reverse=True)
    for stale in older[KEEP_EXPLANATIONS:]:
        stale.unlink(missing_ok=True)
    return target


def _can_show_document(ls: IquestServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.show_document and window.show_document.support)


def _renders_explanations(ls: IquestServer) -> bool:
    experimental = ls.client_capabilities.experimental
    return isinstance(experimental, dict) and bool(
        (experimental.get("iquest") or {}).get("explanations")
    )


def _clamped(document: TextDocument, range_: types.Range) -> types.Range:
    """A range whose end lies past the last line (a whole-lines range at the end of a file
    without a final newline) ends at the document's end instead."""
    end_of_document = position_at(document, len(document.source))

    def clamp(position: types.Position) -> types.Position:
        return end_of_document if position.line > end_of_document.line else position

    return types.Range(start=clamp(range_.start), end=clamp(range_.end))


def _range(document: TextDocument, start: int, end: int) -> types.Range:
    return types.Range(start=position_at(document, start), end=position_at(document, end))


def _whole_lines(range_: types.Range) -> dict[str, Any]:
    end_line = range_.end.line + (
        1 if range_.end.character > 0 or range_.end == range_.start else 0
    )
    return {
        "start": {"line": range_.start.line, "character": 0},
        "end": {"line": end_line, "character": 0},
    }


def _range_json(range_: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": range_.start.line, "character": range_.start.character},
        "end": {"line": range_.end.line, "character": range_.end.character},
    }


def _command(title: str, name: str, arguments: dict[str, Any]) -> types.Command:
    return types.Command(title=f"iquest: {title}", command=name, arguments=[arguments])


def _short(text: str, limit: int = 50) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
