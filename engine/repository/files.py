"""Which workspace files are indexed: .gitignore respected; binaries, big files, vendored and
generated folders and secret files skipped."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from engine.repository.secrets import is_denied

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "vendor",
        "third_party",
        "third-party",
        "external",
        "__pycache__",
        ".venv",
        "venv",
        "env",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "dist",
        "build",
        "target",
        "out",
        ".next",
        ".nuxt",
        ".gradle",
        ".idea",
        ".vscode",
        "site-packages",
        "bower_components",
        "Pods",
        "generated",
        "gen",
        "__generated__",
        ".cache",
        "coverage",
        ".eggs",
    }
)
GENERATED_SUFFIXES = (
    ".min.js",
    ".min.css",
    ".map",
    ".lock",
    "-lock.json",
    ".pb.go",
    "_pb2.py",
    ".g.dart",
    ".designer.cs",
)
BINARY_SNIFF_BYTES = 8192


@dataclass
class FileFilter:
    root: Path
    extra_deny: tuple[str, ...] = ()
    _ignores: dict[str, pathspec.GitIgnoreSpec] = field(default_factory=dict)

    def ignored_dir(self, relative_dir: str) -> bool:
        name = relative_dir.rsplit("/", 1)[-1]
        return (
            name in SKIPPED_DIRS
            or name.endswith(".egg-info")
            or self._gitignored(relative_dir + "/")
        )

    def ignored_file(self, relative: str, size: int) -> str | None:
        """Why ``relative`` is skipped, or None when it is indexed."""
        if size > MAX_FILE_BYTES:
            return "over 1 MB"
        if relative.endswith(GENERATED_SUFFIXES):
            return "generated"
        if is_denied(relative, self.extra_deny):
            return "secret"
        parts = relative.split("/")
        if any(part in SKIPPED_DIRS for part in parts[:-1]):
            return "vendored or generated folder"
        if self._gitignored(relative):
            return "gitignored"
        return None

    def load_gitignore(self, relative_dir: str) -> None:
        path = self.root / relative_dir / ".gitignore"
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        try:
            self._ignores[relative_dir] = pathspec.GitIgnoreSpec.from_lines(lines)
        except Exception:
            # Git skips a line it cannot read (a lone "!"); pathspec refuses the whole file.
            self._ignores[relative_dir] = pathspec.GitIgnoreSpec.from_lines(
                _valid_lines(lines, f"{relative_dir}/.gitignore" if relative_dir else ".gitignore")
            )

    def _gitignored(self, relative: str) -> bool:
        # Each .gitignore applies to paths below its folder, relative to that folder.
        for folder, spec in self._ignores.items():
            prefix = f"{folder}/" if folder else ""
            if relative.startswith(prefix) and spec.match_file(relative[len(prefix) :]):
                return True
        return False


def _valid_lines(lines: list[str], name: str) -> list[str]:
    valid = []
    for number, line in enumerate(lines, 1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except Exception:
            log.info("%s:%d: invalid .gitignore line, skipped as git does", name, number)
            continue
        valid.append(line)
    return valid


def is_binary(head: bytes) -> bool:
    return b"\x00" in head[:BINARY_SNIFF_BYTES]


@dataclass(frozen=True)
class FileStat:
    relative: str
    size: int
    mtime_ns: int


def walk(file_filter: FileFilter) -> Iterator[FileStat]:
    """Files to index, depth first, in a stable order."""
    root = file_filter.root
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        file_filter.load_gitignore(relative_dir)
        try:
            entries = sorted(os.scandir(root / relative_dir), key=lambda e: e.name)
        except OSError as error:
            log.info("cannot list %s: %s", relative_dir or ".", error)
            continue
        subdirs = []
        for entry in entries:
            relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not file_filter.ignored_dir(relative):
                        subdirs.append(relative)
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    if file_filter.ignored_file(relative, stat.st_size) is None:
                        yield FileStat(relative, stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue
        stack.extend(reversed(subdirs))
