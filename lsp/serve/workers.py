"""``iquest-lsp --serve --workers N``: N daemon processes sharing the ports.

One event loop carries every message and stream of its connections; near a full core its queue
is the daemon's latency. Workers are forked processes, each a whole team daemon, each binding
the same ports with SO_REUSEPORT so that the kernel spreads connections over them. The parent
reserves the ports (bound, never listening: no connection is queued to it), waits until every
worker listens, prints the banner, restarts a worker that dies, and stops them all on SIGINT or
SIGTERM. Metrics are summed over the workers (prometheus multiprocess mode, files in
PROMETHEUS_MULTIPROC_DIR).

Per process, not per daemon: per-user limits and fair share (a user's connections may land on
different workers), model discovery and token counts, and the server-side checkouts' indexes
(each worker indexes and watches them)."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType

from prometheus_client import multiprocess

from lsp.serve.options import ServeOptions
from lsp.serve.run import run_serve

log = logging.getLogger(__name__)

# A worker that dies sooner than this after starting is not restarted (a broken configuration
# would otherwise fork forever).
_MIN_LIFE_S = 5.0
_READY_TIMEOUT_S = 120.0


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_workers(
    options: ServeOptions, count: int, run: Callable[..., int], metrics_dir: str | None
) -> int:
    """``run(coroutine)`` runs a worker's event loop (uvloop where there is one)."""
    reserved = {
        name: _reserve(options.host, port)
        for name, port in (("tcp", options.port), ("ws", options.ws_port))
        if port is not None
    }
    ports = {name: sock.getsockname()[1] for name, sock in reserved.items()}
    worker_options = replace(
        options,
        port=ports.get("tcp"),
        ws_port=ports.get("ws"),
        reuse_port=True,
        announce=False,
        workers=count,
    )
    children: dict[int, float] = {}

    def spawn() -> int:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_end)
            for sock in reserved.values():
                sock.close()
            # The parent's handlers came along with the fork: a worker stops on either signal.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            code = 1

            def ready() -> None:
                os.write(write_end, b"1")

            try:
                code = run(run_serve(worker_options, ready=ready))
            except KeyboardInterrupt:
                code = 0
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                os._exit(code)
        os.close(write_end)
        children[pid] = time.monotonic()
        readable, _, _ = select.select([read_end], [], [], _READY_TIMEOUT_S)
        started = bool(readable) and os.read(read_end, 1) == b"1"
        os.close(read_end)
        if not started:
            raise RuntimeError(f"worker {pid} did not start listening")
        return pid

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGINT)  # a clean stop: sessions closed, profiles written
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for _ in range(count):
            spawn()
        scheme = "tls" if options.tls_cert else "tcp"
        ws = "wss" if options.tls_cert else "ws"
        print(
            f"iquest-lsp serving: {scheme}://{options.host}:{ports.get('tcp')} "
            f"{ws}://{options.host}:{ports.get('ws')} ({count} workers: "
            f"{', '.join(map(str, children))})",
            flush=True,
        )
        while children:
            pid, status = os.wait()
            born = children.pop(pid, None)
            if metrics_dir:
                multiprocess.mark_process_dead(pid, metrics_dir)
            if stopping or born is None:
                continue
            if time.monotonic() - born < _MIN_LIFE_S:
                log.error("worker %d ended at once (status %d); not restarting it", pid, status)
                continue
            log.warning("worker %d ended (status %d); starting another", pid, status)
            spawn()
    except RuntimeError as error:
        log.error("%s", error)
        stop(signal.SIGTERM, None)
        for pid in list(children):
            os.waitpid(pid, 0)
        return 1
    finally:
        for sock in reserved.values():
            sock.close()
    return 0
