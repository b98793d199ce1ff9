"""The repository tier of a prompt: the declarations a file needs, from the index, shared by
completions and actions (an action's prompt leads with the same entries, so it reuses the
completions' cached prefix).

One per connection: it holds the tier of each repository and the memos that make each
keystroke cheap (the ranking changes only with the index or the file's header)."""

from __future__ import annotations

import posixpath
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.definitions.exports import module_exports
from engine.definitions.members import GoMethods, go_methods, member_index
from engine.definitions.needed import PACKAGE_SCOPED, needed_definitions
from engine.definitions.tier import ContextEntry, RepositoryTier, Snippet
from engine.definitions.tokens import TokenCounts, upper_estimate
from engine.documents import OpenDocument
from engine.place import AtPlace, Place
from engine.repository.headers import FileHeader
from engine.repository.index import RepositoryIndex
from engine.repository.languages import C_FAMILY, is_c_header, language_for
from engine.repository.symbols import ImportBinding
from engine.repository.usage import BLOCK_LINES, NameUsage, name_usage
from engine.workspace import Workspace

Layout = Literal["stable", "naive"]

# The tier's share of a prompt's token budget: the same for completions and actions, so an
# action's prompt starts with the tier the completions left in vLLM's cache.
REPOSITORY_SHARE = 0.50
# A whole-file summary gets at most this share of the tier.
SUMMARY_SHARE = 1 / 3
OPEN_FILES = 5
SIBLINGS = 4
# A Go or Java package's files, used ones first, in all.
PACKAGE_FILES = 12
# A C/C++ header's own includes followed (one level), per header.
INCLUDED_INCLUDES = 8
# A header's includers looked for among this many files of its folder, and followed up to:
INCLUDERS = 2
FOLDER_FILES_SCANNED = 64
# Tokens a snippet is charged beyond its text (its share of file markers and newlines).
MARKER_TOKENS = 4
# A declaration shows a line per this many tokens of budget (a class: 16 lines at 2,048).
TOKENS_PER_SHOWN_LINE = 128
# A class whose used members are shown on their own: its first lines only.
HEAD_LINES_WITH_MEMBERS = 6
# A Python class's: its first lines are its docstring and class attributes, where a C struct's
# or a Java class's are the fields the next line reads (four lines: recall up in each Python
# repository of bench/context_recall.py, down in zstandard's structs).
PYTHON_HEAD_LINES_WITH_MEMBERS = 4


@dataclass(frozen=True)
class FileAt(AtPlace):
    """A document and a place in it (a code-point offset), as the repository context needs
    them: a completion's cursor, or the start of an action's selection."""

    place: Place
    text: str
    offset: int


class RepositoryContext:
    def __init__(self, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self._tiers: dict[Path, RepositoryTier] = {}
        self._siblings: dict[tuple[Path, int, str, bool], list[str]] = {}
        # Per-keystroke work that only changes with a header or the index: memoized.
        self._imports: dict[tuple[object, ...], tuple[list[str], list[str]]] = {}
        self._fits: dict[tuple[str, int], str] = {}
        self._snippets: dict[tuple[object, ...], tuple[object, list[Snippet]]] = {}
        self._usages: dict[str, tuple[str, FileHeader | None, NameUsage]] = {}
        self._export_texts: dict[tuple[object, ...], str] = {}
        self._go_methods: dict[tuple[Path, int, str], GoMethods] = {}
        self._shuffle = random.Random(0)
        # Per repository, the room beyond its share the last completion gave the tier.
        self._rooms: dict[Path, int] = {}

    def locate(self, file: FileAt) -> tuple[RepositoryIndex | None, str | None]:
        """The index holding the file and its path there; else the path the editor gave."""
        if self.workspace is None or file.path is None:
            return None, file.relative_path
        index, relative = self.workspace.locate(file.path)
        return index, relative or file.relative_path

    def entries(
        self,
        file: FileAt,
        budget: int,
        counts: TokenCounts,
        layout: Layout = "stable",
        located: tuple[RepositoryIndex | None, str | None] | None = None,
        room: int | None = None,
    ) -> tuple[str | None, tuple[ContextEntry, ...]]:
        """The workspace's name and the tier for ``file``, within ``budget`` tokens and
        ``room`` more that the rest of the prompt leaves unused (a short current file's
        share); None: the room the last completion in this repository had, so that an
        action's prompt leads with the tier the completions left in vLLM's cache.
        ``located``: what :meth:`locate` said of ``file``, when the caller asked already."""
        index, relative = located or self.locate(file)
        if index is None or relative is None:
            return file.workspace_name, ()
        if room is None:
            room = self._rooms.get(index.root, 0)
        else:
            self._rooms[index.root] = room
        return index.name, tuple(self._tier(index, relative, file, budget, room, counts, layout))

    def fit(self, header: str, budget: int) -> str:
        """The header's first lines that fit ``budget`` by an upper bound of their tokens: a
        cut that depends on the text alone, so it never moves when a real count arrives."""
        key = (header, budget)
        fit = self._fits.get(key)
        if fit is None:
            kept: list[str] = []
            total = 0
            for line in header.splitlines():
                total += upper_estimate(line + "\n")
                if total > budget:
                    break
                kept.append(line)
            fit = "\n".join(kept) + "\n" if kept else ""
            if len(self._fits) > 4096:
                self._fits.clear()
            self._fits[key] = fit
        return fit

    def _tier(
        self,
        index: RepositoryIndex,
        relative: str,
        file: FileAt,
        budget: int,
        room: int,
        counts: TokenCounts,
        layout: Layout,
    ) -> list[ContextEntry]:
        """The ranking is made for ``budget`` (its snippets' texts depend on it and must not
        change with ``room``); the tier holds ``budget + room`` tokens of it."""
        assert self.workspace is not None
        live = {
            d.relative: d for d in self.workspace.documents.by_recency() if d.relative is not None
        }
        ranked = self._ranked_snippets(index, relative, file, live, budget)

        def cost(snippet: Snippet) -> int:
            # Declarations of one file appended together share its marker: a snippet is
            # charged a marker's share; the prompt's total is checked against the budget.
            return counts.upper(snippet.text) + MARKER_TOKENS

        if layout == "naive":
            entries, total = [], 0
            for snippet in ranked:
                if total + cost(snippet) <= budget:
                    entries.append(ContextEntry(snippet.path, snippet.text))
                    total += cost(snippet)
            self._shuffle.shuffle(entries)
            return entries
        tier = self._tiers.setdefault(index.root, RepositoryTier())
        return tier.entries(
            ranked,
            cost,
            budget + room,
            alive=lambda p: p in index or p in live,
            version=(counts.version, index.generation),
        )

    def _ranked_snippets(
        self,
        index: RepositoryIndex,
        relative: str,
        file: FileAt,
        live: Mapping[str, OpenDocument],
        budget: int,
    ) -> list[Snippet]:
        """Declarations the file uses (in order of first use), then whole-file summaries of
        the files it imports, open files and relevant siblings. Memoized: it changes only
        with the index or the document's header (re-extracted after an idle pause)."""
        header, usage = self._header_and_usage(index, relative, file)
        # The code around the cursor, by blocks of lines: moving within it keeps the ranking.
        block = file.text.count("\n", 0, file.offset) // BLOCK_LINES
        key = (index.root, index.generation, relative, budget, len(live), block)
        cached = self._snippets.get(key)
        if cached is not None and cached[0] == (header, usage):
            return cached[1]
        snippets: list[Snippet] = []
        declaring: list[str] = []  # files that declare what this one uses, in that order
        shown: dict[str, list[str]] = {}  # per file, the texts already ranked
        if header is not None:
            # What the lines around the cursor use, then what the code further out uses.
            nearest = (usage.near(block * BLOCK_LINES), usage.near(block * BLOCK_LINES, 3))
            found = needed_definitions(index, relative, header, usage, nearest)
            # A class whose members the file uses shows its head and a line for each of a few
            # other members: the used ones follow as their own entries, and the rest of its
            # body would take their budget. So does a class the file holds an instance of
            # (`table = Table(...)`, `c *Command`): the next line may call a member no line
            # calls yet.
            held = {kind for _, kind in usage.types}
            # A pytest fixture the test asks for (`def test_x(app)`, a conftest's `app`
            # returning a Flask): the test holds what it returns.
            held.update(
                kind
                for m in found
                if m.definition.container is None and posixpath.basename(m.path) == "conftest.py"
                for kind in m.definition.returns
            )
            with_members = {(m.path, m.definition.container) for m in found} | {
                (m.path, m.definition.name)
                for m in found
                if m.definition.container is None and m.definition.name in held
            }
            separate = {m.definition.name for m in found if m.definition.container is not None}
            for located in found:
                before = shown.setdefault(located.path, [])
                if any(located.definition.text in earlier for earlier in before) or (
                    located.definition.opener is not None
                    and _line_shown(
                        located.definition.opener, located.definition.text.split("\n", 1)[0], before
                    )
                ):
                    continue  # shown already: a member within its class's lines, a repeat
                lines = budget // TOKENS_PER_SHOWN_LINE
                if (located.path, located.definition.name) in with_members:
                    python = language_for(located.path) == "python"
                    lines = min(
                        lines,
                        PYTHON_HEAD_LINES_WITH_MEMBERS if python else HEAD_LINES_WITH_MEMBERS,
                    )
                text = _first_lines(located.definition.shown, lines)
                if (
                    located.definition.container is None
                    and (located.path, located.definition.name) in with_members
                    and (
                        others := member_index(
                            index,
                            located,
                            text,
                            separate,
                            self._package_methods(index, located.path),
                            budget,
                        )
                    )
                ):
                    # Its other members, one line each: the next line may call one.
                    text += "\n" + others
                before.append(text)
                snippets.append(Snippet(located.key, located.path, text))
                if located.path not in declaring:
                    declaring.append(located.path)
        summary_budget = int(budget * SUMMARY_SHARE)
        files = self._ranked_files(index, relative, header, usage, live)
        whole = self._whole_modules(index, relative, header)
        for path in [*files, *(p for p in declaring if p not in files)]:
            text = self.fit(self._exports(index, path, reexports=path in whole), summary_budget)
            if path in whole and text:
                # `import click`: what `click.` may name next, most used first.
                snippets.append(Snippet(path, path, text.rstrip("\n")))
                continue
            if not text:  # nothing of its own: a barrel (`export * from`) passes others' on
                text = self.fit(self._exports(index, path, reexports=True), summary_budget)
            if not text:  # not indexed (an open document only), or nothing public
                document = live.get(path)
                source = index.header(path) or (document.header if document is not None else None)
                text = self.fit(source.summary, summary_budget) if source is not None else ""
            if text and not _covered(text, shown.get(path, ())):
                snippets.append(Snippet(path, path, text.rstrip("\n")))
        if len(self._snippets) > 256:
            self._snippets.clear()
        self._snippets[key] = ((header, usage), snippets)
        return snippets

    def _whole_modules(
        self, index: RepositoryIndex, relative: str, header: FileHeader | None
    ) -> frozenset[str]:
        """The repository's modules the file imports as a whole (``import click``, ``import *
        as z``, ``from rich import box``)."""
        if header is None:
            return frozenset()
        return frozenset(
            module
            for binding in header.bindings
            if binding.local != "*"
            and (module := index.module_of(relative, header, binding.local)) is not None
            and module != relative
        )

    def _exports(self, index: RepositoryIndex, path: str, reexports: bool) -> str:
        """A module's public names, one signature line each, most used across the repository
        first (memoized: it changes only with the index). What a file's summary shows: the
        next line is likelier to use a widely used declaration than the file's first ones (a
        Go package's files, a C header, a module's helpers see each other without an import).
        ``reexports``: with the names a module imported whole passes on."""
        key = (index.root, index.generation, path, reexports)
        text = self._export_texts.get(key)
        if text is None:
            lines: dict[str, None] = {}  # once each: a Go method is listed under its type
            header = index.header(path)
            # Which of the file's declarations have members to list (read once, not per name).
            owners = {d.container for d in header.definitions} if header is not None else set()
            methods = (self._package_methods(index, path) if not reexports else None) or {}
            for located in module_exports(index, path, reexports=reexports):
                line = _signature_line(located.definition.text)
                lines.setdefault(line)
                if (
                    not reexports
                    and (located.definition.name in owners or located.definition.name in methods)
                    and (members := member_index(index, located, line, set(), methods))
                ):
                    # A class's most used members under it: a Java file's one class is all
                    # it offers, and the next line calls its methods, not its name.
                    lines.update(dict.fromkeys(members.split("\n")))
            text = "\n".join(lines)
            if len(self._export_texts) > 256:
                self._export_texts.clear()
            self._export_texts[key] = text
        return text

    def _package_methods(self, index: RepositoryIndex, path: str) -> GoMethods | None:
        """A Go file's package methods by receiver (memoized per index generation: a package
        of many files is read once, not on each ranking); None for other languages."""
        if not path.endswith(".go"):
            return None
        key = (index.root, index.generation, posixpath.dirname(path))
        found = self._go_methods.get(key)
        if found is None:
            if len(self._go_methods) > 64:
                self._go_methods.clear()
            found = self._go_methods[key] = go_methods(index, path)
        return found

    def _header_and_usage(
        self, index: RepositoryIndex, relative: str, file: FileAt
    ) -> tuple[FileHeader | None, NameUsage]:
        assert self.workspace is not None
        document = self.workspace.documents.get(file.document_uri)
        if document is not None and document.header is not None:
            return document.header, document.usage
        # Not open here (a code action on a file the editor did not send): from its text.
        header = index.header(relative)
        cached = self._usages.get(relative)
        if cached is None or cached[0] != file.text or cached[1] is not header:
            cached = (
                file.text,
                header,
                name_usage(
                    file.text,
                    header.bindings if header else (),
                    header.language if header else None,
                ),
            )
            if len(self._usages) > 64:
                self._usages.clear()
            self._usages[relative] = cached
        return header, cached[2]

    def _ranked_files(
        self,
        index: RepositoryIndex,
        relative: str,
        header: FileHeader | None,
        usage: NameUsage,
        live: Mapping[str, OpenDocument],
    ) -> list[str]:
        """Imported files first, then open files by recency, then same-folder siblings."""
        imports, bindings, language = (
            (header.imports, header.bindings, header.language) if header else ((), (), None)
        )
        key = (index.root, index.generation, relative, language, imports, bindings)
        if key not in self._imports:
            if len(self._imports) > 256:
                self._imports.clear()
            self._imports[key] = self._imported(index, relative, language, imports, bindings)
        direct, further = self._imports[key]
        candidates = list(direct)
        # Names the file uses and does not declare itself: a sibling that declares the same
        # method names (Go's flag_int.go beside flag_string.go, both with `Apply`) is another
        # implementation, not where the file's helpers are.
        used = set(usage.uses).difference(d.name for d in header.definitions) if header else set()
        if further:
            # Those declaring the most names the file uses first (ties in include order).
            candidates += sorted(further, key=lambda path: -_declares(index, path, used))
        candidates += [path for path in live if path != relative and path in index][:OPEN_FILES]
        candidates += self._siblings_of(index, relative, language, used)
        ranked: list[str] = []
        for path in candidates:
            if path != relative and path not in ranked:
                ranked.append(path)
        return ranked

    def _imported(
        self,
        index: RepositoryIndex,
        relative: str,
        language: str | None,
        imports: tuple[str, ...],
        bindings: tuple[ImportBinding, ...],
    ) -> tuple[list[str], list[str]]:
        """The files the file imports, and (C, C++) those its headers include (a header's
        includes are the includer's too: `#include "module.h"` that includes <zstd.h>) and, for
        a header, those its includers include."""
        resolver = index.resolver()
        direct = resolver.resolve(relative, language, imports, bindings)
        further: list[str] = []
        if language not in C_FAMILY:
            return direct, further

        def includes(path: str) -> list[str]:
            header = index.header(path)
            if header is None or header.language not in C_FAMILY:
                return []
            return resolver.resolve(path, language, header.imports)

        def add(included: list[str]) -> None:
            further.extend(
                [p for p in included if p not in direct and p not in further and p != relative][
                    :INCLUDED_INCLUDES
                ]
            )

        for path in direct:
            if is_c_header(path):
                add(includes(path))
        if is_c_header(relative):
            # A header that relies on its includer's includes (ujson's `gay-fixed.h` writes
            # `Vector<…>` and includes nothing): the includes of the files beside it that
            # include it, each resolved once.
            folder = posixpath.dirname(relative)
            includers = 0
            for path in resolver.files_in(folder)[:FOLDER_FILES_SCANNED]:
                if includers == INCLUDERS:
                    break
                included = includes(path) if path != relative else []
                if relative in included:
                    add(included)
                    includers += 1
        return direct, further

    def _siblings_of(
        self, index: RepositoryIndex, relative: str, language: str | None, used: set[str]
    ) -> list[str]:
        """Same-folder files that declare names this file uses, most such names first; in a
        Go or Java package, whose files use each other's names without an import, then the
        package's other files, those declaring the most widely used names first."""
        folder = posixpath.dirname(relative)
        package = language in PACKAGE_SCOPED
        key = (index.root, index.generation, folder, package)
        if key not in self._siblings:
            if len(self._siblings) > 256:
                self._siblings.clear()
            files = list(index.resolver().files_in(folder))  # sorted; a copy to reorder
            if package:  # the order the package's other files join the ranking in
                files.sort(key=lambda path: -_widest_use(index, path))  # stable: ties by path
            self._siblings[key] = files
        scored = []
        for path in self._siblings[key]:
            hits = _declares(index, path, used)
            if hits and path != relative:
                scored.append((-hits, path))
        ranked = [path for _, path in sorted(scored)[:SIBLINGS]]
        if package:
            # Go builds a package's _test.go files only into its tests.
            tests = relative.endswith("_test.go")
            ranked += [
                path
                for path in self._siblings[key]
                if path != relative
                and path not in ranked
                and (header := index.header(path)) is not None
                and header.language == language
                and (tests or not path.endswith("_test.go"))
            ][: max(0, PACKAGE_FILES - len(ranked))]
        return ranked


def _declares(index: RepositoryIndex, path: str, names: set[str]) -> int:
    """How many of ``names`` the file ``path`` declares."""
    header = index.header(path)
    return len({d.name for d in header.definitions} & names) if header is not None else 0


def _widest_use(index: RepositoryIndex, path: str) -> int:
    """How many files mention the most mentioned of ``path``'s top-level declarations."""
    header = index.header(path)
    if header is None:
        return 0
    top_level = (d.name for d in header.definitions if d.container is None)
    return max(map(index.mentioned, top_level), default=0)


def _line_shown(opener: str, line: str, texts: Sequence[str]) -> bool:
    """One of ``texts`` shows the class line ``opener`` and ``line``: a member whose signature
    its class's lines show already (its docstring would be all the repeat adds)."""
    for text in texts:
        lines = text.split("\n")
        if opener in lines and line in lines:
            return True
    return False


def _covered(summary: str, texts: Sequence[str]) -> bool:
    """Every line of a file's summary is in its declarations ranked already (a small file
    whose one class the file uses): the summary would repeat them."""
    if not texts:
        return False
    lines = {line for text in texts for line in text.split("\n")}
    return all(line in lines for line in summary.split("\n") if line.strip())


def _signature_line(text: str) -> str:
    """A declaration's first line that is not a decorator (``@t.overload``)."""
    lines = text.split("\n", 8)
    return next((line for line in lines if not line.startswith("@")), lines[0])


def _first_lines(text: str, count: int) -> str:
    lines = text.split("\n")
    if len(lines) <= count + 1:
        return text
    kept = lines[:count]
    indent = kept[-1][: len(kept[-1]) - len(kept[-1].lstrip())]
    return "\n".join([*kept, indent + "…"])
