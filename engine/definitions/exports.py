"""What a module imported as a whole offers (``import click``, ``import * as z from "zod"``):
its declarations and the names it re-exports, the most widely used first.

A file that writes ``click.`` is about to use one of click's names, and which one the text
does not say yet: the names the rest of the repository uses most are the likeliest. Ranked by
how many files mention each (the index counts them), so the list changes only when the
repository does, never with a keystroke."""

from __future__ import annotations

from engine.repository.definitions import Located
from engine.repository.index import RepositoryIndex

# Star re-exports (`export * from './types'`, `from .core import *`) followed this deep.
STAR_DEPTH = 2
MAX_EXPORTS = 400


def module_exports(index: RepositoryIndex, path: str, *, reexports: bool = True) -> list[Located]:
    """The public declarations ``path`` offers, most mentioned across the repository first
    (ties in the module's own order); ``reexports``: with the names it imports and passes on
    (a package's ``__init__``, a barrel file), else its own declarations only."""
    found: dict[str, Located] = {}
    _collect(index, path, STAR_DEPTH, found, set(), reexports)
    ranked = sorted(
        enumerate(found.values()),
        key=lambda item: (-index.mentioned(item[1].definition.name), item[0]),
    )
    return [located for _, located in ranked]


def _collect(
    index: RepositoryIndex,
    path: str,
    depth: int,
    found: dict[str, Located],
    visited: set[str],
    reexports: bool = True,
) -> None:
    header = index.header(path)
    if header is None or path in visited:
        return
    visited.add(path)
    for definition in header.definitions:
        if len(found) >= MAX_EXPORTS:
            return
        if definition.container is None and _public(definition.name):
            located = Located(path, definition)
            if not located.is_impl_block:
                found.setdefault(definition.name, located)
    if not reexports:
        return
    resolver = index.resolver()
    for binding in header.bindings:
        if len(found) >= MAX_EXPORTS:
            return
        if binding.local == "*":
            if depth > 0:
                target = resolver.module_path(path, header.language, binding.module)
                if target is not None:
                    _collect(index, target, depth - 1, found, visited)
        elif binding.imported is not None and _public(binding.local):
            if binding.local not in found:
                declared = index.follow(path, binding.local)
                if declared:
                    found[binding.local] = declared[0]


def _public(name: str) -> bool:
    return not name.startswith("_")
