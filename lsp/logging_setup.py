"""Logs go to a file and, once the client is connected, to ``window/logMessage``."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

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


def configure_file_logging(path: Path, level: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=5_000_000, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _replace_handler(handler, "file", level)


def attach_client_logging(server: LanguageServer) -> None:
    handler = ClientLogHandler(server)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    _replace_handler(handler, "client", None)


def _replace_handler(handler: logging.Handler, role: str, level: str | None) -> None:
    handler.set_name(f"iquest-{role}")
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            if existing.get_name() == handler.get_name():
                logger.removeHandler(existing)
        logger.addHandler(handler)
        if level is not None:
            logger.setLevel(level)
        logger.propagate = False
