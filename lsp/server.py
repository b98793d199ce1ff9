"""The language server's handlers: each takes what the editor sent, asks the session's engine
and converts the answer to LSP types. Code actions are in ``lsp.actions``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.workspace import TextDocument

from engine.completion.types import CompletionRequest, Suggestion
from lsp import actions, convert, extensions
from lsp.documents import open_document
from lsp.extensions import AcceptedArguments, DaemonStats, InvalidPayload, PartialAcceptParams
from lsp.fast_positions import use_fast_positions
from lsp.findings import clear_findings, publish_findings
from lsp.language_server import IquestServer
from lsp.logging_setup import attach_client_logging
from lsp.positions import offset_at
from lsp.session import Session, single_user_session

log = logging.getLogger(__name__)


def build_server(session: Session | None = None) -> IquestServer:
    """A server for ``session``; by default the single user's, on the default config."""
    server = IquestServer(session or single_user_session())
    _register(server)
    return server


def build_stdio_server(config_path: Path | None) -> IquestServer:
    return build_server(single_user_session(config_path))


def _register(ls: IquestServer) -> None:
    ls.feature(types.INITIALIZE)(on_initialize)
    ls.feature(types.INITIALIZED)(on_initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_did_change_configuration)
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(on_did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(on_did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(on_did_close)
    ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(on_did_save)
    ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        on_inline_completion
    )
    ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))(
        on_completion
    )
    ls.feature(extensions.STATS)(on_stats)
    ls.feature(extensions.PARTIAL_ACCEPT)(on_partially_accepted)
    ls.command(extensions.ACCEPTED)(on_accepted)
    actions.register(ls)


def on_initialize(ls: IquestServer, params: types.InitializeParams) -> None:
    use_fast_positions(ls.workspace)  # before any document opens: each takes the codec
    ls.session.layers.set_initialization_options(params.initialization_options)
    ls.session.initialize(params)


async def on_initialized(ls: IquestServer, params: types.InitializedParams) -> None:
    if ls.session.forwards_logs:
        attach_client_logging(ls)
    await ls.reload_settings()


async def on_did_change_configuration(
    ls: IquestServer, params: types.DidChangeConfigurationParams
) -> None:
    if not ls.can_pull_configuration():
        # Push-style clients send the settings themselves.
        ls.session.layers.set_editor(params.settings)
    await ls.reload_settings()


def on_did_open(ls: IquestServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    workspace = ls.session.workspace
    if workspace is not None:
        place = ls.place(item.uri)
        workspace.documents.opened(item.uri, place.indexed, item.language_id, item.text)


def on_did_change(ls: IquestServer, params: types.DidChangeTextDocumentParams) -> None:
    # pygls has applied the changes to its copy already: hand the engine the resulting text.
    uri = params.text_document.uri
    document = open_document(ls.workspace, uri)
    if document is None:
        return
    text = document.source
    if ls.session.workspace is not None:
        ls.session.workspace.documents.changed(uri, text)
    if ls.session.findings.reconcile(uri, text):  # findings on changed lines are stale now
        publish_findings(ls, uri)


def on_did_close(ls: IquestServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.session.completions.forget_document(uri)
    clear_findings(ls, uri)
    if ls.session.workspace is not None:
        ls.session.workspace.documents.closed(uri)


def on_did_save(ls: IquestServer, params: types.DidSaveTextDocumentParams) -> None:
    log.debug("saved %s", params.text_document.uri)


async def on_inline_completion(
    ls: IquestServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    document = ls.document(params.text_document.uri)
    request = _completion_request(
        ls,
        document,
        params.position,
        explicit=params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked,
    )
    suggestion = await _complete(ls, request)
    return convert.inline_items(suggestion, params.position, params.text_document.uri)


async def on_completion(ls: IquestServer, params: types.CompletionParams) -> types.CompletionList:
    document = ls.document(params.text_document.uri)
    explicit = params.context is not None and (
        params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    )
    request = _completion_request(ls, document, params.position, explicit=explicit)
    suggestion = await _complete(ls, request)
    line_start = request.text.rfind("\n", 0, request.cursor) + 1
    return convert.completion_items(
        suggestion,
        params.position,
        request.text[line_start : request.cursor],
        document.position_codec.client_num_units,
        markdown=_completion_renders_markdown(ls),
    )


def _completion_renders_markdown(ls: IquestServer) -> bool:
    text_document = ls.client_capabilities.text_document
    completion = text_document.completion if text_document else None
    item = completion.completion_item if completion else None
    return types.MarkupKind.Markdown in ((item.documentation_format if item else None) or [])


def on_stats(ls: IquestServer, params: Any) -> dict[str, object]:
    service = ls.session.completions
    served = service.served_model
    stats = DaemonStats.model_validate(
        {
            **service.stats.as_dict(),
            "model": served.name if served else None,
            "template": served.template.name if served else None,
            "backend_down": ls.session.endpoints.suggestions_paused(),
            "in_flight": service.in_flight(),
            **ls.session.stats_extra(),
        }
    )
    return stats.to_json()


def on_accepted(ls: IquestServer, arguments: Any = None) -> None:
    stats = ls.session.completions.stats
    accepted = _lenient(AcceptedArguments, arguments)
    stats.accepted += 1
    stats.accepted_chars += accepted.length
    if accepted.index < len(stats.accepted_by_index):
        stats.accepted_by_index[accepted.index] += 1


def on_partially_accepted(ls: IquestServer, params: Any) -> None:
    stats = ls.session.completions.stats
    stats.partially_accepted += 1
    stats.accepted_chars += _lenient(PartialAcceptParams, params).accepted_length


def _lenient(kind: type[AcceptedArguments] | type[PartialAcceptParams], value: Any) -> Any:
    """A count from a client is a statistic: a malformed one counts nothing, never fails."""
    try:
        return kind.parse(value if value is not None else {})
    except InvalidPayload:
        return kind.model_validate({})


async def _complete(ls: IquestServer, request: CompletionRequest) -> Suggestion | None:
    try:
        return await ls.session.completions.complete(request)
    except Exception:
        # An engine bug costs this suggestion, never the editor session.
        log.exception("completion failed for %s", request.document_uri)
        return None


def _completion_request(
    ls: IquestServer, document: TextDocument, position: types.Position, *, explicit: bool
) -> CompletionRequest:
    place = ls.place(document.uri)
    return CompletionRequest(
        place=place,
        language_id=document.language_id or "plaintext",
        text=document.source,
        cursor=offset_at(document, position),
        explicit=explicit,
    )
