"""Headers parsed off the serving process, each file within a time limit.

Parsing holds the interpreter lock: one hostile 0.9 MB file took 4.6-8 s of it, and every editor
on the daemon waited that long (a watcher saw each rewrite, so it stalled again each time). So
files are parsed in child processes: the daemon only waits on a pipe (the lock is free for the
event loop), and a file that takes longer than ``time_limit_s`` costs its own header, nothing
more: its process is killed and a fresh one takes the next file.

Children are started with ``spawn`` (the daemon has threads; forking it would copy their locks),
lazily, at most ``processes`` of them, shared by every index of the process."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any, Protocol

from engine.repository.headers import FileHeader, extract_header
from engine.repository.languages import language_for, refine_language
from engine.repository.secrets import mask_credentials

log = logging.getLogger(__name__)

TIME_LIMIT_S = 2.0


class ParseFailed(Exception):
    """A file that could not be parsed within the limits (its header is left out)."""


class HeaderParser(Protocol):
    # How many files it parses at once (an index keeps that many in flight).
    parallel: int

    def header(self, relative: str, data: bytes) -> FileHeader:
        """Blocking; ParseFailed when the file cannot be parsed within the limits."""
        ...


def header_of(relative: str, data: bytes) -> FileHeader:
    """The file's header with credentials masked; an unparsable file falls back to first lines."""
    language = refine_language(language_for(relative), relative, data)
    try:
        header = extract_header(relative, language, data)
    except Exception as error:  # a grammar failure costs this file's header, nothing more
        log.info("cannot parse %s (%s): using its first lines", relative, error)
        header = extract_header(relative, None, data)
    return replace(header, text=mask_credentials(header.text))


@dataclass
class InProcessParser:
    """Parsing in the calling thread (holding the interpreter lock): for tools and tests that
    compare, or need a parse function of their own; never the serving daemon."""

    parse: Callable[[str, bytes], FileHeader] = header_of
    parallel: int = 1

    def header(self, relative: str, data: bytes) -> FileHeader:
        return self.parse(relative, data)


def _serve(connection: Connection) -> None:
    """A child's loop: (relative, data) in, ("ok", header) or ("error", reason) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C ends the parent first
    while True:
        try:
            relative, data = connection.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", header_of(relative, data))
        except Exception as error:
            answer = ("error", f"{type(error).__name__}: {str(error)[:200]}")
        connection.send(answer)


class _Child:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end,), name="iquest-parser", daemon=True
        )
        self._process.start()
        child_end.close()

    def parse(self, relative: str, data: bytes, time_limit_s: float) -> FileHeader:
        try:
            self._connection.send((relative, data))
            if not self._connection.poll(time_limit_s):
                self.kill()
                raise ParseFailed(f"parsing took over {time_limit_s:g} s")
            kind, value = self._connection.recv()
        except (EOFError, OSError) as error:
            self.kill()
            raise ParseFailed(f"the parser process ended ({type(error).__name__})") from error
        if kind != "ok":
            raise ParseFailed(value)
        return value  # type: ignore[no-any-return]

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def kill(self) -> None:
        self._process.kill()
        self._process.join(5)
        self._connection.close()


class ParserPool:
    """Thread-safe: each call takes an idle child (or a free place to start one), so indexes
    building in worker threads parse side by side, at most ``processes`` at a time."""

    def __init__(self, processes: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> None:
        self.time_limit_s = time_limit_s
        self.parallel = processes or max(1, min(2, os.cpu_count() or 1))
        # A child ready for work, or None: a place where a child may be started.
        self._idle: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        for _ in range(self.parallel):
            self._idle.put(None)
        self.closed = False

    def header(self, relative: str, data: bytes) -> FileHeader:
        """The header of ``data``; ParseFailed when over the time limit or the child died."""
        if self.closed:
            raise ParseFailed("the parser pool is closed")
        child = self._idle.get()
        try:
            if child is None or not child.alive:
                child = _Child()
            header = child.parse(relative, data, self.time_limit_s)
        except ParseFailed:
            # A child that answered with an error stays; one killed (time limit) or dead
            # frees its place for a fresh one.
            if child is not None and child.alive:
                self._give_back(child)
            else:
                self._idle.put(None)
            raise
        except BaseException:
            if child is not None:
                child.kill()  # mid-request: its answer would reach the next caller
            self._idle.put(None)
            raise
        self._give_back(child)
        return header

    def _give_back(self, child: _Child) -> None:
        if self.closed:
            child.kill()
        else:
            self._idle.put(child)

    def close(self) -> None:
        self.closed = True
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                break
            if child is not None:
                child.kill()


_shared: ParserPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ParserPool:
    """The process's pool (one set of children for every index)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = ParserPool()
        return _shared
