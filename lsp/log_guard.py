"""What a client can make the daemon log is bounded: every line is cut to ``MAX_LINE`` characters
and to one line, and a connection repeating one kind of line is heard at most
``PER_MINUTE`` times a minute (the rest are counted and summed up).

One user wrote 205 MB of log in 15 s through pygls's "unknown method '<1 MiB name>'" line, and
malformed input wrote a traceback per message. Records are told apart by their template (the
format string, not its arguments) and by the connection they were logged for (a context
variable the team daemon sets while it handles a connection's message; tasks started then
inherit it)."""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

MAX_LINE = 2000
PER_MINUTE = 20
# Loggers whose lines carry what clients sent (pygls: methods, params, malformed bodies; the
# stdio reader): one line each, without the traceback (mostly the client's mistake, and a
# client can cause them at will); at DEBUG level they keep it.
CLIENT_FACING = ("pygls", "lsp.stdio")

# The connection a log line is about (None: the daemon itself, or the one stdio editor).
connection_tag: ContextVar[int | None] = ContextVar("iquest_connection", default=None)


class LogGuard(logging.Filter):
    def __init__(self, per_minute: int = PER_MINUTE, max_line: int = MAX_LINE) -> None:
        super().__init__("")
        self._per_minute = per_minute
        self._max_line = max_line
        self._window = time.monotonic()
        self._counts: dict[tuple[int | None, str, str], int] = {}
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, "iquest_verdict", None)
        if verdict is not None:
            return bool(verdict)  # one record reaches several handlers: judged once
        record.iquest_verdict = verdict = self._judge(record)
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        summary = self._roll_window()
        connection = connection_tag.get()
        # Per kind of line, and for a connection also all its lines together (a template
        # formatted before logging makes every line a kind of its own).
        keys = [(connection, record.name, str(record.msg)[:200])]
        limits = [self._per_minute]
        if connection is not None:
            keys.append((connection, "", ""))
            limits.append(self._per_minute * 10)
        if any(self._counts.get(key, 0) >= limit for key, limit in zip(keys, limits, strict=True)):
            self._dropped += 1
            return False
        for key in keys:
            if len(self._counts) < 10_000:  # bounded; past it, new kinds share no count
                self._counts[key] = self._counts.get(key, 0) + 1
        message = record.getMessage()
        if record.exc_info and record.name.startswith(CLIENT_FACING) and not _debugging(record):
            message = f"{message} ({_exception_line(record)})"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = one_line(message, self._max_line), None
        if summary:
            record.msg = f"{record.msg} [{summary}]"
        return True

    def _roll_window(self) -> str:
        now = time.monotonic()
        if now - self._window < 60:
            return ""
        dropped, self._dropped = self._dropped, 0
        self._window, self._counts = now, {}
        return f"{dropped} repeated lines were left out in the last minute" if dropped else ""


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line (a traceback becomes its first and last lines), at most ``limit``
    characters."""
    if "\n" in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1].strip()}"
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} characters more)"
    return text


def _debugging(record: logging.LogRecord) -> bool:
    return logging.getLogger(record.name).getEffectiveLevel() <= logging.DEBUG


def _exception_line(record: logging.LogRecord) -> str:
    assert record.exc_info is not None
    kind, value = record.exc_info[0], record.exc_info[1]
    return f"{kind.__name__ if kind else 'error'}: {str(value)[:200]}"


# One guard for every handler of the process: a line's verdict and counts are shared.
_GUARD = LogGuard()


def guard(handler: logging.Handler) -> logging.Handler:
    """``handler`` with the process's guard (once)."""
    if _GUARD not in handler.filters:
        handler.addFilter(_GUARD)
    return handler
