"""Findings of "find bugs" as diagnostics: published on a run, and again when edits move or
drop them."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import TextDocument

from engine.actions.types import Finding
from lsp.language_server import IquestServer

DIAGNOSTIC_SOURCE = "iquest"
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def publish_findings(ls: IquestServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    diagnostics = [_diagnostic(document, f) for f in ls.session.findings.get(uri)]
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version)
    )


def clear_findings(ls: IquestServer, uri: str) -> None:
    if ls.session.findings.get(uri):
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
    ls.session.findings.forget(uri)


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
