"""Where a name is declared: followed through imports and re-exports, or looked up by name.

``follow`` answers "which declaration does this file's ``name`` refer to" the way the language
would: a declaration in the module the name is imported from, or, when that module re-exports
it (``from .core import Client`` in an ``__init__.py``, ``export * from './client'`` in an
``index.ts``), in the module it comes from. ``NameTable`` answers "where in the repository is a
name declared" for names no import explains (methods of objects, fixtures, globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.repository.headers import FileHeader
from engine.repository.imports import ImportResolver, submodule
from engine.repository.symbols import Definition

MAX_HOPS = 4
# A name declared in more places than this is too common to guess which one is meant.
MAX_PLACES = 2


@dataclass(frozen=True)
class Located:
    path: str
    definition: Definition

    @property
    def is_impl_block(self) -> bool:
        """A Rust ``impl Type`` block: it names the type without declaring it."""
        return self.definition.text.startswith(("impl ", "impl<", "unsafe impl"))

    @property
    def key(self) -> str:
        owner = f"{self.definition.container}." if self.definition.container else ""
        return f"{self.path}#{owner}{self.definition.name}:{self.definition.line}"


class NameTable:
    """Name -> {path: its declarations there}. The index's worker thread updates it while the
    event loop reads: readers take a snapshot (``places``), made in one C-level step that no
    other thread interleaves with under the GIL."""

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, list[Definition]]] = {}
        self._names_of: dict[str, tuple[str, ...]] = {}
        # Name -> how many files mention it, and each file's mentions (to take them back).
        self._mentioned: dict[str, int] = {}
        self._mentions_of: dict[str, tuple[str, ...]] = {}

    @classmethod
    def of(cls, headers: dict[str, FileHeader]) -> NameTable:
        """A table built in one pass (a whole index: copying on write per file would cost
        quadratic time for names declared in thousands of files, like ``__init__``)."""
        table = cls()
        by_name: dict[str, dict[str, list[Definition]]] = {}
        for path, header in headers.items():
            names = []
            for definition in header.definitions:
                places = by_name.setdefault(definition.name, {})
                if path not in places:
                    places[path] = []
                    names.append(definition.name)
                places[path].append(definition)
            table._names_of[path] = tuple(names)
            table._count_mentions(path, header)
        table._by_name = by_name
        return table

    def _count_mentions(self, path: str, header: FileHeader | None) -> None:
        for name in self._mentions_of.pop(path, ()):
            left = self._mentioned.get(name, 0) - 1
            if left > 0:
                self._mentioned[name] = left
            else:
                self._mentioned.pop(name, None)
        if header is not None and header.mentions:
            self._mentions_of[path] = header.mentions
            for name in header.mentions:
                self._mentioned[name] = self._mentioned.get(name, 0) + 1

    def mentioned(self, name: str) -> int:
        """How many files of the repository mention ``name``."""
        return self._mentioned.get(name, 0)

    def set(self, path: str, header: FileHeader | None) -> None:
        self._count_mentions(path, header)
        for name in self._names_of.pop(path, ()):
            places = self._by_name.get(name)
            if places is not None:
                places.pop(path, None)
                if not places:
                    self._by_name.pop(name, None)
        if header is None or not header.definitions:
            return
        grouped: dict[str, list[Definition]] = {}
        for definition in header.definitions:
            grouped.setdefault(definition.name, []).append(definition)
        for name, definitions in grouped.items():
            self._by_name.setdefault(name, {})[path] = definitions
        self._names_of[path] = tuple(grouped)

    def places(self, name: str) -> tuple[tuple[str, list[Definition]], ...]:
        return tuple(self._by_name.get(name, {}).items())


def follow(
    header_of: Callable[[str], FileHeader | None],
    resolver: ImportResolver,
    path: str,
    name: str,
    hops: int = 0,
) -> list[Located]:
    """Declarations of ``name`` as seen from the file ``path``: declared there, or imported."""
    header = header_of(path)
    if header is None or hops > MAX_HOPS:
        return []
    declared = [
        Located(path, d) for d in header.definitions if d.name == name and d.container is None
    ]
    if declared:
        # The type itself, not its impl blocks (Rust): those name it without declaring it, and
        # the members a file uses are shown one by one (engine.definitions.needed).
        types = [located for located in declared if not located.is_impl_block]
        return (types or declared)[:MAX_PLACES]
    stars = []
    for binding in header.bindings:
        if binding.local == "*":
            stars.append(binding)
            continue
        if binding.local != name or binding.imported is None:
            continue
        target = resolver.module_path(path, header.language, binding.module)
        if target is not None and target != path:
            found = follow(header_of, resolver, target, binding.imported, hops + 1)
            if found:
                return found
    for binding in stars:
        target = resolver.module_path(path, header.language, binding.module)
        if target is not None and target != path:
            found = follow(header_of, resolver, target, name, hops + 1)
            if found:
                return found
    return []


def module_of(header: FileHeader, resolver: ImportResolver, path: str, local: str) -> str | None:
    """The file a local module name stands for (``import a.b as m``, ``from pkg import mod``,
    ``import * as ns from './x'``), or None when ``local`` is not a module. In Python a
    dotted ``local`` names a submodule of one (``attr.setters`` after ``import attr``)."""
    for binding in header.bindings:
        if binding.local != local:
            continue
        if binding.imported is None:
            return resolver.module_path(path, header.language, binding.module)
        if header.language == "python" and binding.imported != "*":
            found = resolver.module_path(path, header.language, submodule(binding))
            if found is not None:
                return found
        if header.language == "rust" and binding.imported != "*":
            # `use crate::ast;` binds a module when `ast` has its own file; otherwise the
            # longest module prefix would be the parent's file, where `ast` is an item.
            whole = resolver.module_path(path, "rust", f"{binding.module}::{binding.imported}")
            if whole is not None and whole != resolver.module_path(path, "rust", binding.module):
                return whole
    if header.language == "python" and "." in local:
        first, _, rest = local.partition(".")
        for binding in header.bindings:
            if binding.local == first and binding.imported != "*":
                module = binding.module if binding.imported is None else submodule(binding)
                return resolver.module_path(path, "python", f"{module}.{rest}")
    return None
