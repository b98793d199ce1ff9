"""The editor's open documents as pygls keeps them.

pygls 2 stores a document under its URI percent-decoded (``file:///a/sp%20ace/x.py`` under
``file:///a/sp ace/x.py``), and editors encode spaces, ``+``, accents and even the Windows drive
colon. Every handler looks documents up here, so none compares a raw URI with pygls's keys."""

from __future__ import annotations

from urllib.parse import unquote

from pygls.workspace import TextDocument, Workspace


def open_document(workspace: Workspace, uri: str) -> TextDocument | None:
    """The open document ``uri`` names, however the editor encoded it; None when not open
    (pygls's own getter would invent one from the disk)."""
    return workspace.text_documents.get(unquote(uri))
