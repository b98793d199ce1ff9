"""Explanations for editors without our plugin: a read-only markdown file the editor opens
(``window/showDocument``). Plugins that render them say so and get none."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.actions.types import ActionRequest
from lsp import extensions
from lsp.language_server import IquestServer

KEEP_EXPLANATIONS = 50


def wants_explanation_file(ls: IquestServer) -> bool:
    return (
        ls.session.writes_explanation_files
        and _can_show_document(ls)
        and not _renders_explanations(ls)
    )


def write_explanation(folder: Path, request: ActionRequest, markdown: str) -> Path:
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
        (experimental.get(extensions.CAPABILITY) or {}).get("explanations")
    )
