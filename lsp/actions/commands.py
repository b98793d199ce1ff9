"""The action commands: read the arguments, run the engine's action under progress, and hand
the result to the editor (a notification, an applied edit, diagnostics)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument

from engine.actions.types import ActionKind, ActionRequest
from engine.notices import Notice
from lsp import extensions
from lsp.actions.explanations import wants_explanation_file, write_explanation
from lsp.actions.progress import with_progress
from lsp.extensions import (
    ActionArguments,
    ExplanationParams,
    FindBugsResult,
    FixResult,
    InvalidPayload,
    Range,
)
from lsp.findings import publish_findings
from lsp.language_server import IquestServer
from lsp.positions import clamped, range_at, range_offsets

log = logging.getLogger(__name__)


async def run_explain(ls: IquestServer, arguments: Any = None) -> dict[str, Any]:
    return await _explain(ls, ActionKind.EXPLAIN, arguments)


async def run_ask(ls: IquestServer, arguments: Any = None) -> dict[str, Any]:
    return await _explain(ls, ActionKind.ASK, arguments)


async def _explain(ls: IquestServer, kind: ActionKind, arguments: Any) -> dict[str, Any]:
    request, document = _request(ls, kind, arguments)
    service = ls.session.actions
    title = "Explain" if kind is ActionKind.EXPLAIN else "Ask"
    run = service.explain if kind is ActionKind.EXPLAIN else service.ask
    explanation = await with_progress(ls, title, lambda progress: run(request, progress))
    markdown = explanation.markdown
    if explanation.thinking and service.settings.actions.show_thinking:
        quoted = "\n".join(f"> {line}" for line in explanation.thinking.splitlines())
        markdown = f"<details><summary>Reasoning</summary>\n\n{quoted}\n\n</details>\n\n{markdown}"
    payload = ExplanationParams(
        uri=request.document_uri,
        range=Range.of(range_at(document, request.start, request.end)),
        kind=kind.value,
        question=request.question,
        markdown=markdown,
    )
    ls.protocol.notify(extensions.EXPLANATION, payload.to_json())
    if wants_explanation_file(ls):
        shown = await asyncio.to_thread(
            write_explanation, ls.session.explanations_dir(), request, markdown
        )
        await ls.window_show_document_async(
            types.ShowDocumentParams(
                uri=from_fs_path(str(shown)) or shown.as_uri(), take_focus=True
            )
        )
        payload = payload.model_copy(update={"document": shown.as_uri()})
    return payload.to_json()


async def run_fix(ls: IquestServer, arguments: Any = None) -> dict[str, Any]:
    request, document = _request(ls, ActionKind.FIX, arguments)
    version = document.version
    outcome = await with_progress(
        ls, "Fix", lambda progress: ls.session.actions.fix(request, progress)
    )
    if outcome.edit is None:
        ls.notify_user(Notice("warning", f"iquest: no fix applied: {outcome.problem}"))
        return FixResult(applied=False, reason=outcome.problem, attempts=outcome.attempts).to_json()
    current = ls.workspace.get_text_document(request.document_uri)
    if current.version != version or current.source != request.text:
        reason = "the file changed while the fix was being made; run Fix again"
        ls.notify_user(Notice("warning", f"iquest: no fix applied: {reason}"))
        return FixResult(applied=False, reason=reason, attempts=outcome.attempts).to_json()
    edit = types.TextEdit(
        range=range_at(document, outcome.edit.start, outcome.edit.end),
        new_text=outcome.edit.new_text,
    )
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            label="iquest: Fix", edit=_workspace_edit(ls, document, edit)
        )
    )
    if not result.applied:
        reason = result.failure_reason or "the editor refused the edit"
        ls.notify_user(Notice("warning", f"iquest: no fix applied: {reason}"))
    return FixResult(
        applied=bool(result.applied),
        reason=None if result.applied else result.failure_reason,
        attempts=outcome.attempts,
    ).to_json()


async def run_find_bugs(ls: IquestServer, arguments: Any = None) -> dict[str, Any]:
    request, _ = _request(ls, ActionKind.FIND_BUGS, arguments)
    findings = await with_progress(
        ls, "Find bugs", lambda progress: ls.session.actions.find_bugs(request, progress)
    )
    current = ls.workspace.get_text_document(request.document_uri)
    store = ls.session.findings
    store.publish(request.document_uri, request.text, findings, replace=request.whole_file)
    if current.source != request.text:  # edited meanwhile: keep only what still matches
        store.reconcile(request.document_uri, current.source)
    publish_findings(ls, request.document_uri)
    if not findings:
        ls.notify_user(Notice("info", "iquest: no bugs found"))
    return FindBugsResult(findings=len(findings)).to_json()


def _request(
    ls: IquestServer, kind: ActionKind, arguments: Any
) -> tuple[ActionRequest, TextDocument]:
    try:
        parsed = ActionArguments.parse(arguments)
    except InvalidPayload as error:
        raise JsonRpcInvalidParams(
            f"{kind.value} takes one argument {{uri, range?, question?}}: {error}"
        ) from None
    document = ls.document(parsed.uri)
    start = end = 0
    if parsed.range is not None:
        start, end = range_offsets(document, clamped(document, parsed.range.to_lsp()))
    question = parsed.question or parsed.problem
    if kind is ActionKind.ASK and not (question and question.strip()):
        raise JsonRpcInvalidParams("iquest.ask needs a 'question' (the editor plugin asks for it)")
    place = ls.place(parsed.uri)
    request = ActionRequest(
        kind=kind,
        place=place,
        language_id=document.language_id or "plaintext",
        text=document.source,
        start=start,
        end=end,
        question=question,
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
