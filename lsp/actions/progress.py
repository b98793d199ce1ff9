"""Long work under work-done progress that the user can cancel from the progress bar."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from engine.actions.types import ActionError
from engine.notices import Notice
from lsp.language_server import IquestServer

log = logging.getLogger(__name__)
T = TypeVar("T")
Report = Callable[[str, int | None], None]


class ActionFailed(JsonRpcException):
    """LSP's RequestFailed: the action ran and could not give a result."""

    CODE = -32803  # pygls reads CODE; `code` was overwritten with -32603 (internal error)


async def with_progress(ls: IquestServer, title: str, work: Callable[[Report], Awaitable[T]]) -> T:
    """Runs ``work`` under work-done progress that the user can cancel; errors become a
    message and a RequestFailed answer, never a crash."""
    token = str(uuid.uuid4())
    progress_ok = await _create_progress(ls, token)
    task = asyncio.current_task()
    if progress_ok:
        ls.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=f"iquest: {title}", cancellable=True)
        )
        future = ls.work_done_progress.tokens.get(token)
        if future is not None and task is not None:
            loop = asyncio.get_running_loop()

            def cancelled_by_user(done: Future[object]) -> None:
                if done.cancelled():
                    log.info("%s cancelled from the progress bar", title)
                    loop.call_soon_threadsafe(task.cancel)

            future.add_done_callback(cancelled_by_user)

    def report(message: str, percentage: int | None) -> None:
        if progress_ok:
            ls.work_done_progress.report(
                token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    outcome = "cancelled"
    try:
        log.debug("%s: running under progress %s", title, token if progress_ok else None)
        result = await work(report)
        outcome = "done"
        return result
    except ActionError as error:
        outcome = f"failed: {error}"
        ls.notify_user(Notice("error", f"iquest: {title} failed: {error}"))
        raise ActionFailed(str(error)) from error
    finally:
        if progress_ok:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
            ls.work_done_progress.tokens.pop(token, None)


async def _create_progress(ls: IquestServer, token: str) -> bool:
    window = ls.client_capabilities.window
    if not (window and window.work_done_progress):
        return False
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as error:  # a client may refuse; the action runs without a bar
        log.info("work done progress refused: %s", error)
        return False
    return True
