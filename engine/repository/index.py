"""The repository index: a header per source file, persisted in diskcache, kept current by
watchfiles. Heavy work runs in a worker thread so completions never wait on it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG

import diskcache
import watchfiles

from engine.repository.definitions import Located, NameTable, follow, module_of
from engine.repository.files import (
    FileFilter,
    FileStat,
    read_inside,
    unlike_source,
    walk,
)
from engine.repository.headers import FileHeader
from engine.repository.imports import ImportResolver
from engine.repository.languages import SOURCE_EXTENSIONS
from engine.repository.parsing import HeaderParser, ParseFailed, shared_pool

log = logging.getLogger(__name__)

# Bump when headers change shape: old cache entries are then ignored.
HEADER_VERSION = 17
# A file that could not be parsed within the limits is not tried again for this long: a
# hostile file rewritten in a loop would otherwise cost a parse per rewrite.
RETRY_UNPARSABLE_S = 600.0


# Given the resolver over every walked path: the files to parse first.
Wanted = Callable[[ImportResolver], Iterable[str]]


@dataclass(frozen=True)
class IndexedFile:
    relative: str
    size: int
    mtime_ns: int
    digest: str
    header: FileHeader


@dataclass(frozen=True)
class IndexReport:
    files: int
    parsed: int
    from_cache: int
    seconds: float


class RepositoryIndex:
    def __init__(
        self,
        root: Path,
        cache_dir: Path | None = None,
        extra_deny: tuple[str, ...] = (),
        own_files: tuple[Path, ...] = (),
        parser: HeaderParser | None = None,
    ) -> None:
        self.root = root.resolve()
        # Off the serving process unless told otherwise (engine.repository.parsing).
        self._parser = parser or shared_pool()
        # The daemon's own files (its log, the index cache) inside the folder: never events.
        self._own = tuple(path.resolve() for path in own_files)
        self.name = self.root.name
        self._filter = FileFilter(self.root, extra_deny)
        self._files: dict[str, IndexedFile] = {}
        self._resolver: ImportResolver | None = None
        self._names = NameTable()
        self._cache: diskcache.Cache | None = None
        if cache_dir is not None:
            key = hashlib.blake2b(str(self.root).encode(), digest_size=8).hexdigest()
            # It holds the code's headers: a private folder, whatever the umask.
            cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            cache_dir.chmod(0o700)
            folder = cache_dir / f"v{HEADER_VERSION}-{key}"
            folder.mkdir(exist_ok=True, mode=0o700)
            self._cache = diskcache.Cache(str(folder))
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watching = asyncio.Event() if _has_loop() else None
        # Bumped whenever a header changes: context built from the index can tell it is stale.
        self.generation = 0
        self._relative_paths: dict[Path, str | None] = {}
        # Files that failed parsing, and when (RETRY_UNPARSABLE_S).
        self._unparsable: dict[str, float] = {}

    # --- reading ---------------------------------------------------------------------------
    def header(self, relative: str) -> FileHeader | None:
        entry = self._files.get(relative)
        return entry.header if entry else None

    def paths(self) -> list[str]:
        return list(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, relative: object) -> bool:
        return relative in self._files

    def resolver(self) -> ImportResolver:
        if self._resolver is None:
            self._resolver = ImportResolver(self._files, self.name)
        return self._resolver

    def declarations(self, name: str) -> list[Located]:
        """Every declaration of ``name`` in the repository (top level and class members)."""
        return [
            Located(path, definition)
            for path, definitions in self._names.places(name)
            for definition in definitions
        ]

    def follow(self, path: str, name: str) -> list[Located]:
        """The declaration ``name`` refers to in file ``path``: there, or through its imports."""
        return follow(self.header, self.resolver(), path, name)

    def mentioned(self, name: str) -> int:
        """How many of the repository's files mention ``name``: how widely it is used."""
        return self._names.mentioned(name)

    def module_of(self, path: str, header: FileHeader, local: str) -> str | None:
        return module_of(header, self.resolver(), path, local)

    def relative(self, path: Path) -> str | None:
        # Memoized: resolve() costs a system call per path component, on every keystroke.
        if path in self._relative_paths:
            return self._relative_paths[path]
        try:
            relative: str | None = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            relative = None
        if len(self._relative_paths) > 4096:
            self._relative_paths.clear()
        self._relative_paths[path] = relative
        return relative

    # --- building ----------------------------------------------------------------------------
    async def build(self, wanted: Wanted | None = None) -> IndexReport:
        return await asyncio.to_thread(self.build_blocking, wanted)

    def build_blocking(self, wanted: Wanted | None = None) -> IndexReport:
        """Walk, serve what the disk cache holds at once, then parse the rest: first the files
        that ``wanted`` names (what the open documents import), so a cold start gives the
        first completions their context before the whole repository is parsed."""
        started = time.perf_counter()
        stats = [stat for stat in walk(self._filter) if _is_source(stat.relative)]
        resolver = ImportResolver((stat.relative for stat in stats), self.name)
        files: dict[str, IndexedFile] = {}
        misses: list[tuple[FileStat, IndexedFile | None]] = []
        for stat in stats:
            stored = self._stored(stat.relative)
            if stored is not None and _current(stored, stat):
                files[stat.relative] = stored
            else:
                misses.append((stat, stored))
        names = NameTable.of({path: entry.header for path, entry in files.items()})
        self._files, self._names, self._resolver = files, names, resolver
        self.generation += 1
        urgent: set[str] = set()
        if misses and wanted is not None:
            try:
                urgent = set(wanted(resolver))
            except Exception as error:  # a priority, never a reason to fail the build
                log.info("cannot tell which files are needed first: %s", error)
            misses.sort(key=lambda miss: miss[0].relative not in urgent)
        parsed = 0

        def index_one(miss: tuple[FileStat, IndexedFile | None]) -> IndexedFile | None:
            try:
                return self._index_file(*miss)[0]
            except Exception as error:  # one file's failure costs that file, nothing more
                log.info("skipping %s: %s", miss[0].relative, error)
                return None

        # As many files in flight as the parser parses at once; taken in order, urgent first.
        with ThreadPoolExecutor(self._parser.parallel, "iquest-index") as threads:
            entries = list(threads.map(index_one, misses)) if misses else []
        for (stat, _), entry in zip(misses, entries, strict=True):
            if entry is not None:
                files[stat.relative] = entry
                parsed += 1
                if stat.relative in urgent:
                    names.set(stat.relative, entry.header)
            if urgent and stat.relative in urgent:
                urgent.discard(stat.relative)
                if not urgent:
                    self.generation += 1  # the open documents' imports are in
        if parsed:
            self._names = NameTable.of({path: entry.header for path, entry in files.items()})
        # Built here, off the event loop; again only if some walked file could not be indexed.
        self._resolver = resolver if len(files) == len(stats) else ImportResolver(files, self.name)
        self.generation += 1
        report = IndexReport(len(files), parsed, len(files) - parsed, time.perf_counter() - started)
        log.info(
            "indexed %s: %d files (%d parsed, %d from cache) in %.2f s",
            self.root,
            report.files,
            report.parsed,
            report.from_cache,
            report.seconds,
        )
        return report

    def _stored(self, relative: str) -> IndexedFile | None:
        """The disk cache's entry for ``relative``, whatever its age."""
        if self._cache is None:
            return None
        try:
            cached = self._cache.get(relative)
        except Exception as error:  # a damaged cache entry: parse the file again
            log.info("index cache unreadable for %s: %s", relative, error)
            return None
        return cached if isinstance(cached, IndexedFile) else None

    def _index_file(
        self, stat: FileStat, stored: IndexedFile | None = None
    ) -> tuple[IndexedFile | None, bool]:
        """The file's entry and whether the cache had it; ``stored``: the cache's entry when
        the caller read it already."""
        cached = stored or self._stored(stat.relative)
        if _current(cached, stat):
            return cached, True
        try:
            data = read_inside(self.root, stat.relative)
        except OSError as error:  # gone, swapped for a symlink, grown past the cap
            log.info("cannot read %s: %s", stat.relative, error)
            return None, False
        why = unlike_source(data)
        if why is not None:
            log.info("skipping %s: %s", stat.relative, why)
            return None, False
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if cached is not None and cached.digest == digest:
            entry = replace(cached, size=stat.size, mtime_ns=stat.mtime_ns)
        else:
            failed = self._unparsable.get(stat.relative)
            if failed is not None and time.monotonic() - failed < RETRY_UNPARSABLE_S:
                return None, False
            try:
                header = self._parser.header(stat.relative, data)
            except ParseFailed as error:
                log.info("skipping %s for %.0f s: %s", stat.relative, RETRY_UNPARSABLE_S, error)
                if len(self._unparsable) > 4096:
                    self._unparsable.clear()
                self._unparsable[stat.relative] = time.monotonic()
                return None, False
            entry = IndexedFile(stat.relative, stat.size, stat.mtime_ns, digest, header)
        if self._cache is not None:
            self._cache.set(stat.relative, entry)
        return entry, False

    # --- keeping current ---------------------------------------------------------------------
    def apply_changes(self, changes: Iterable[tuple[watchfiles.Change, str]]) -> int:
        """Reflect file-system events; returns how many headers changed."""
        changed = 0
        for change, absolute in changes:
            relative = self._event_relative(absolute)
            if relative is None:
                continue
            if relative.endswith(".gitignore"):
                self._filter.load_gitignore(relative.rpartition("/")[0])
                continue
            if change == watchfiles.Change.deleted or not Path(absolute).is_file():
                changed += self._forget(relative)
                if relative not in self._files and (
                    change == watchfiles.Change.deleted or os.path.islink(absolute)
                ):
                    # A folder deleted, or swapped for a link: what was below it goes too.
                    below = [path for path in self._files if path.startswith(relative + "/")]
                    changed += sum(self._forget(path) for path in below)
                continue
            try:
                changed += self._refresh(relative)
            except Exception as error:
                log.info("skipping %s: %s", relative, error)
        if changed:
            self.generation += 1
        return changed

    def _refresh(self, relative: str) -> int:
        if not _is_source(relative):
            return 0
        try:
            # Not followed: a file swapped for a symlink is no longer a file of this tree.
            stat = (self.root / relative).lstat()
        except OSError:
            return 0
        if not S_ISREG(stat.st_mode):
            return self._forget(relative)
        if self._skipped(relative, stat.st_size):
            return 0
        entry, _ = self._index_file(FileStat(relative, stat.st_size, stat.st_mtime_ns))
        previous = self._files.get(relative)
        if entry is None:
            return self._forget(relative)
        if previous is None:
            self._resolver = None
        self._files[relative] = entry
        if previous is None or previous.header != entry.header:
            self._names.set(relative, entry.header)
        return int(previous is None or previous.header != entry.header)

    def _skipped(self, relative: str, size: int) -> bool:
        """Ignored, secret, generated, too big, or in a skipped folder: never parsed."""
        return self._filter.ignored_file(relative, size) is not None or any(
            self._filter.ignored_dir(relative.rsplit("/", i + 1)[0])
            for i in range(relative.count("/"))
        )

    def _forget(self, relative: str) -> int:
        """Drops ``relative`` from the index; 1 if it was there."""
        if self._files.pop(relative, None) is None:
            return 0
        self._names.set(relative, None)
        self._resolver = None
        if self._cache is not None:
            self._cache.delete(relative)
        return 1

    def start_watching(self) -> None:
        if self._watcher is None:
            self._stop_watching = asyncio.Event()
            self._watcher = asyncio.create_task(self._watch(), name=f"watch {self.root}")

    async def stop_watching(self) -> None:
        if self._stop_watching is not None:
            self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except (asyncio.CancelledError, Exception):
                pass
            self._watcher = None

    async def _watch(self) -> None:
        async for changes in watchfiles.awatch(
            self.root,
            watch_filter=self._watch_filter,
            debounce=100,
            step=20,
            stop_event=self._stop_watching,
            recursive=True,
        ):
            # A branch switch may touch thousands of files: parse them off the event loop.
            changed = await asyncio.to_thread(self.apply_changes, changes)
            log.debug("watcher: %d events, %d headers changed", len(changes), changed)

    def watches(self, path: Path) -> bool:
        """Whether a file-system event at ``path`` concerns the index."""
        return self._watch_filter(watchfiles.Change.modified, str(path))

    def _event_relative(self, absolute: str) -> str | None:
        """An event's path relative to the root, read as written: the watcher reports paths
        under the (resolved) root, and resolving one would follow a symlink swapped in."""
        try:
            return Path(absolute).relative_to(self.root).as_posix()
        except ValueError:
            return self.relative(Path(absolute))

    def _watch_filter(self, change: watchfiles.Change, path: str) -> bool:
        if self._own and any(Path(path).is_relative_to(own) for own in self._own):
            return False
        relative = self._event_relative(path)
        if relative is None:
            return False
        parts = relative.split("/")
        return not any(
            self._filter.ignored_dir("/".join(parts[: i + 1])) for i in range(len(parts) - 1)
        )

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _current(entry: IndexedFile | None, stat: FileStat) -> bool:
    return entry is not None and (entry.size, entry.mtime_ns) == (stat.size, stat.mtime_ns)


def _is_source(relative: str) -> bool:
    dot = relative.rfind(".")
    return dot != -1 and relative[dot:].lower() in SOURCE_EXTENSIONS


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
