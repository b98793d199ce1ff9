"""Code actions and their commands: thin handlers over ``engine.actions``.

Explain / Fix / Find bugs are offered on a selection or at a diagnostic (``offer``), and run as
``workspace/executeCommand`` with cancellable work-done progress (``commands``, ``progress``).
Results land as the editor expects: explanations as an ``iquest/explanation`` notification (the
plugins render it) and a read-only markdown document for plain clients (``explanations``);
fixes as ``workspace/applyEdit``; findings as diagnostics with a quick fix each."""

from __future__ import annotations

from lsprotocol import types

from lsp import extensions
from lsp.actions.commands import run_ask, run_explain, run_find_bugs, run_fix
from lsp.actions.offer import on_code_action
from lsp.language_server import IquestServer


def register(ls: IquestServer) -> None:
    ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.QuickFix,
                types.CodeActionKind.RefactorRewrite,
                extensions.KIND_EXPLAIN,
                extensions.KIND_FIND_BUGS,
            ],
            resolve_provider=False,
        ),
    )(on_code_action)
    ls.command(extensions.EXPLAIN)(run_explain)
    ls.command(extensions.FIX)(run_fix)
    ls.command(extensions.FIND_BUGS)(run_find_bugs)
    ls.command(extensions.ASK)(run_ask)
