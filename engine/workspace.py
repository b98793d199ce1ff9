"""The workspace the daemon serves: repository indexes per folder and the open documents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import platformdirs

from engine.documents import OpenDocuments
from engine.repository.imports import ImportResolver
from engine.repository.index import RepositoryIndex

log = logging.getLogger(__name__)

# A folder's indexing: (folder name, None) when it starts, (folder name, what was done) when
# it ends; the editor shows it as progress.
IndexingProgress = Callable[[str, str | None], None]


def default_index_cache() -> Path:
    return Path(platformdirs.user_cache_dir("iquest-lsp")) / "index"


class Workspace:
    def __init__(
        self,
        cache_dir: Path | None = None,
        extra_deny: tuple[str, ...] = (),
        own_files: tuple[Path, ...] = (),
        on_failure: Callable[[str], None] | None = None,
        on_progress: IndexingProgress | None = None,
    ) -> None:
        self.documents = OpenDocuments()
        self.indexes: list[RepositoryIndex] = []
        self._cache_dir = cache_dir
        self._extra_deny = extra_deny
        # The daemon's log and caches: a watcher must not report our own writes.
        self._own_files = (*own_files, *((cache_dir,) if cache_dir else ()))
        self._on_failure = on_failure
        self._on_progress = on_progress or (lambda _folder, _done: None)
        self._builds: list[asyncio.Task[object]] = []

    def add_folder(self, root: Path, watch: bool = True) -> RepositoryIndex:
        index = RepositoryIndex(root, self._cache_dir, self._extra_deny, self._own_files)
        self.indexes.append(index)
        # Longest root first: a nested folder owns its files.
        self.indexes.sort(key=lambda i: len(str(i.root)), reverse=True)

        async def build_then_watch() -> None:
            self._on_progress(root.name, None)
            try:
                report = await index.build(lambda resolver: self._imported_by_open(index, resolver))
            except Exception as error:
                self._on_progress(root.name, "failed")
                # Completions go on without repository context; the user hears of it once.
                log.exception("indexing %s failed", root)
                if self._on_failure is not None:
                    self._on_failure(
                        f"iquest: indexing {root.name} failed ({error}); "
                        "completions go on without repository context."
                    )
                return
            self._on_progress(
                root.name,
                f"{report.files:,} files ({report.parsed:,} parsed, "
                f"{report.from_cache:,} from the cache) in {report.seconds:.1f} s",
            )
            if watch:
                index.start_watching()

        self._builds.append(asyncio.create_task(build_then_watch()))
        return index

    def _imported_by_open(self, index: RepositoryIndex, resolver: ImportResolver) -> list[str]:
        """Files the open documents import (called from the build's thread; with several
        folders, another folder's document only adds a harmless priority)."""
        wanted: list[str] = []
        for document in list(self.documents.by_recency()):
            header = document.header
            if document.relative is None or header is None:
                continue
            wanted += resolver.resolve(
                document.relative, header.language, header.imports, header.bindings
            )
        return wanted

    async def ready(self) -> None:
        """Wait for the initial builds (tests and benchmarks; completions never wait)."""
        if self._builds:
            await asyncio.gather(*self._builds)

    def locate(self, path: Path) -> tuple[RepositoryIndex | None, str | None]:
        for index in self.indexes:
            relative = index.relative(path)
            if relative is not None:
                return index, relative
        return None, None

    async def aclose(self) -> None:
        for task in self._builds:
            task.cancel()
        for index in self.indexes:
            await index.stop_watching()
            index.close()
