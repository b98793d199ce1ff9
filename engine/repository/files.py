"""Which workspace files are indexed: .gitignore respected; binaries, big files, vendored and
generated folders and secret files skipped."""

from __future__ import annotations

import errno
import logging
import os
import stat
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


# Minified or generated: over this size, a mean line longer than MAX_MEAN_LINE, or any line
# longer than MAX_LINE_BYTES. (Hand-written code averages 30-50 bytes a line; the thresholds
# are those of the code datasets' filters, loosened.) Such files cost parsing time and give no
# definitions worth a prompt.
GENERATED_MIN_BYTES = 16 * 1024
MAX_MEAN_LINE = 200
MAX_LINE_BYTES = 20_000
# A binary without NUL bytes (random data, compressed, images): control characters other than
# whitespace (source has next to none), or mostly bytes that are no UTF-8 (a Latin-1 file's
# accented letters stay far under it).
MAX_CONTROL_SHARE = 0.05
MAX_UNDECODABLE_SHARE = 0.30
_NOT_CONTROL = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F) + b"\t\n\r\f\v\x1b"


def unlike_source(data: bytes) -> str | None:
    """Why ``data`` is not worth parsing as source (binary-like, minified, generated), or
    None. Linear in the size, no regular expressions."""
    head = data[:BINARY_SNIFF_BYTES]
    if b"\x00" in head:
        return "binary"
    controls = len(head.translate(None, _NOT_CONTROL))
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    if controls > len(head) * MAX_CONTROL_SHARE or undecodable > len(head) * MAX_UNDECODABLE_SHARE:
        return "binary-like (not UTF-8 text)"
    if len(data) < GENERATED_MIN_BYTES:
        return None
    lines = data.count(b"\n") + 1
    if len(data) / lines > MAX_MEAN_LINE:
        return f"minified or generated (mean line {len(data) // lines} bytes)"
    longest, start = 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end == -1 else end
        longest = max(longest, end - start)
        start = end + 1
    if longest > MAX_LINE_BYTES:
        return f"minified or generated (a line of {longest} bytes)"
    return None


class NotInside(OSError):
    """A path that leads outside its repository (a symlink swapped in), or no regular file."""


def read_inside(root: Path, relative: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """``root/relative``'s bytes, checked when read: a file swapped for a symlink, or a folder
    swapped for one that leads into another checkout, is refused however the path was seen
    before. The file opened is checked (not the path, which could be swapped again between a
    check and the open)."""
    path = root / relative
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotInside(f"{relative} is a symbolic link") from error
        raise
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotInside(f"{relative} is not a regular file")
        opened = _opened_path(descriptor, path)
        if not opened.is_relative_to(root):
            raise NotInside(f"{relative} leads outside {root.name}")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotInside(f"{relative} is over {limit:,} bytes")
    return data


def _opened_path(descriptor: int, path: Path) -> Path:
    """Where the open file really is: the kernel's own answer on Linux, else resolved."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{descriptor}"))
    except OSError:
        return Path(os.path.realpath(path))


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
