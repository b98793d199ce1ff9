"""Logs go to a file and, once the client is connected, to ``window/logMessage``."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp.log_guard import guard

OUR_LOGGERS = ("engine", "lsp")
_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


class ClientLogHandler(logging.Handler):
    def __init__(self, server: LanguageServer) -> None:
        super().__init__(logging.INFO)
        self._server = server

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = _LEVELS.get(record.levelno, types.MessageType.Log)
            self._server.window_log_message(
                types.LogMessageParams(type=kind, message=self.format(record))
            )
        except Exception:  # a log line must never take the server down
            self.handleError(record)


# A log file never grows past this, times BACKUPS + 1 (rotated).
MAX_LOG_BYTES = 5_000_000
BACKUPS = 2


def rotating_file_handler(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_LOG_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return guard(handler)


def configure_file_logging(path: Path, level: str) -> None:
    handler = rotating_file_handler(path)
    _replace_handler(handler, "file", level)
    # pygls's own warnings and errors (malformed input from the editor) go to the file too,
    # guarded, instead of the editor's stderr; its INFO lines would log every message's body.
    _replace_handler(handler, "file", None, ("pygls",))
    named = logging.getLevelNamesMapping().get(str(level).upper(), logging.INFO)
    logging.getLogger("pygls").setLevel(max(logging.WARNING, named))


def attach_client_logging(server: LanguageServer) -> None:
    handler = ClientLogHandler(server)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    _replace_handler(guard(handler), "client", None)


def _replace_handler(
    handler: logging.Handler,
    role: str,
    level: str | None,
    loggers: tuple[str, ...] = OUR_LOGGERS,
) -> None:
    handler.set_name(f"iquest-{role}")
    for name in loggers:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            if existing.get_name() == handler.get_name():
                logger.removeHandler(existing)
        logger.addHandler(handler)
        if level is not None:
            logger.setLevel(level)
        logger.propagate = False
