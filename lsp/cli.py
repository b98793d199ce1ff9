"""``iquest-lsp``: the language server on stdio, plus ``demo``, ``doctor`` and ``vllm``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from engine import __version__


class UsageError(Exception):
    """A mistake in how iquest-lsp was started: one line on stderr, exit code 2."""


def _add_config(parser: argparse.ArgumentParser, suppress: bool) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        # On a command: given there or before it (the command's own wins when both are).
        default=argparse.SUPPRESS if suppress else None,
        help="TOML settings file (default: $IQUEST_CONFIG "
        "or the user config dir's iquest-lsp/config.toml)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="iquest-lsp",
        description="AI code completion language server for vLLM deployments. "
        "With no command, speaks LSP over stdio.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    root.add_argument("--version", action="version", version=f"iquest-lsp {__version__}")
    root.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default)")
    _add_config(root, suppress=False)
    serve = root.add_argument_group("team mode (--serve)")
    serve.add_argument(
        "--serve", action="store_true", help="serve many editors over TCP/TLS and WebSocket"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=7070, help="LSP over TCP (TLS with --tls-cert)")
    serve.add_argument(
        "--ws-port", type=int, default=7071, help="LSP over WebSocket; also /healthz, /metrics"
    )
    serve.add_argument("--tls-cert", type=Path, help="certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, help="private key (PEM)")
    serve.add_argument(
        "--repo", type=Path, action="append", default=[], help="server-side checkout (repeatable)"
    )
    serve.add_argument("--tokens", type=Path, help="token store (default: user config dir)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="daemon processes sharing the ports (SO_REUSEPORT); each takes a core under load",
    )
    serve.add_argument(
        "--new-connections-per-s",
        type=float,
        default=20.0,
        metavar="RATE",
        help="new connections a second from one address, after a burst of 120 (default: 20)",
    )
    serve.add_argument(
        "--log-file",
        type=Path,
        help="also log to this file (rotated at 5 MB, two kept); the console always gets it",
    )
    serve.add_argument(
        "--salt-per",
        choices=("user", "team"),
        default="user",
        help="vLLM cache_salt per user (isolation, default) or one for the team",
    )
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    formatter = argparse.ArgumentDefaultsHelpFormatter
    token = commands.add_parser(
        "token",
        help="manage team-mode access tokens",
        description="Add, list or revoke the tokens editors connect to a team daemon with. "
        "A token is printed once, when added, and stored hashed.",
        formatter_class=formatter,
    )
    token.add_argument("action", choices=("add", "list", "revoke"))
    token.add_argument("name", nargs="?", help="user (add), token id or user (revoke)")
    token.add_argument("--tokens", type=Path, dest="token_store", help="token store")
    token.add_argument(
        "--repo",
        action="append",
        dest="token_repos",
        help="add: a server-side checkout (folder name) the user may see; repeatable "
        "(default: all)",
    )
    bridge = commands.add_parser(
        "connect",
        help="bridge stdio to a team server (token from $IQUEST_TOKEN or a file)",
        description="Speak LSP on stdio for an editor and relay it to a team daemon "
        "(iquest-lsp --serve). The token comes from $IQUEST_TOKEN or --token-file, never "
        "from the command line.",
        formatter_class=formatter,
    )
    bridge.add_argument("url", help="tcp://, tls://, ws:// or wss:// HOST:PORT")
    bridge.add_argument(
        "--token-file",
        type=Path,
        help="file holding the token (mode 600; ~ is expanded); default: $IQUEST_TOKEN",
    )
    bridge.add_argument("--ca-file", type=Path, help="CA bundle for a self-signed server")
    # VS Code's language client adds --stdio to every server command line it launches.
    bridge.add_argument(
        "--stdio", action="store_true", help="accepted and ignored: connect always uses stdio"
    )
    demo = commands.add_parser(
        "demo",
        help="start the embedded model on vLLM's CPU build (unless an instruct endpoint "
        "answers) and show a real suggestion through the language server",
        description="Show a real suggestion end to end: the configured instruct endpoint if "
        "one answers, else SmolLM2-135M on vLLM's CPU build (converted once into the user "
        "cache; no model hub), driven through the language server over stdio.",
        formatter_class=formatter,
    )
    _add_config(demo, suppress=True)
    demo.add_argument(
        "--file", type=Path, help="complete at the end of this file instead of the built-in example"
    )
    demo.add_argument(
        "--port", type=int, default=0, help="port for the embedded vLLM (default: free)"
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the endpoints, models, FIM tokens and prefix caching",
        description="Check each configured endpoint: health, served models, the prompt "
        "template and its FIM tokens, prefix caching, priority scheduling and routing.",
        formatter_class=formatter,
    )
    _add_config(doctor, suppress=True)
    doctor.add_argument(
        "--profile", help="also compare each server with this launch profile (iquest-lsp vllm)"
    )
    doctor.add_argument(
        "--editors",
        type=int,
        metavar="N",
        help="also check the inline server runs enough sequences for N editors",
    )
    from lsp.vllm_args import add_parser as add_vllm_parser

    add_vllm_parser(commands)
    return root


def _run_fast(main: Coroutine[Any, Any, int]) -> int:
    """uvloop where it exists (not on Windows): the team daemon's event loop carries every
    editor's messages and streams, and uvloop's costs less per socket event."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    from lsp.vllm_args import split_extra

    # `iquest-lsp vllm ... -- --load-format dummy`: what follows -- is vLLM's own.
    ours, vllm_extra = split_extra(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(ours)
    try:
        check_arguments(args)
        return _run(args, vllm_extra)
    except UsageError as error:
        print(f"iquest-lsp: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, vllm_extra: tuple[str, ...]) -> int:
    if args.command == "vllm":
        from lsp.vllm_cli import run_vllm

        _console_logging()
        return run_vllm(args, vllm_extra)
    if vllm_extra:
        print("iquest-lsp: arguments after -- are only for `iquest-lsp vllm`", file=sys.stderr)
        return 2
    if args.command == "demo":
        from lsp.demo import run_demo

        _console_logging()
        return asyncio.run(run_demo(args.config, args.file, args.port))
    if args.command == "doctor":
        from lsp.doctor_cli import run_doctor

        _console_logging()
        return asyncio.run(run_doctor(args.config, args.profile, args.editors))
    if args.command == "token":
        return _token_command(args)
    if args.command == "connect":
        from lsp.serve.bridge import BridgeError, cleartext_warning, read_token, run_bridge

        if warning := cleartext_warning(args.url):
            print(f"iquest-lsp connect: {warning}", file=sys.stderr)

        try:
            token = read_token(args.token_file, lambda line: print(line, file=sys.stderr))
            return asyncio.run(run_bridge(args.url, token, args.ca_file))
        except (BridgeError, OSError) as error:
            print(f"iquest-lsp connect: {error}", file=sys.stderr)
            return 2
    if args.serve:
        metrics_dir = None
        if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Before prometheus_client is imported: it picks its value store at import.
            metrics_dir = tempfile.mkdtemp(prefix="iquest-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        from lsp.serve.options import ServeOptions
        from lsp.serve.run import run_serve

        _console_logging(logging.INFO, args.log_file)
        from lsp.serve.bridge import is_loopback

        if args.tls_cert is None and not is_loopback(args.host):
            # Loud, on the console: tokens and code would cross the network in clear.
            print(
                f"iquest-lsp --serve: WARNING: no --tls-cert, yet listening on {args.host}: "
                "editors' tokens and code cross the network unencrypted. Give --tls-cert and "
                "--tls-key, or listen on 127.0.0.1 behind a TLS proxy.",
                file=sys.stderr,
                flush=True,
            )
        options = ServeOptions(
            host=args.host,
            port=args.port,
            ws_port=args.ws_port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            repos=tuple(args.repo),
            tokens=args.tokens,
            config=args.config,
            salt_per=args.salt_per,
            new_connections_per_address_per_s=args.new_connections_per_s,
        )
        try:
            if args.workers > 1:
                from lsp.serve.workers import run_workers

                try:
                    return run_workers(
                        options,
                        args.workers,
                        _run_fast,
                        os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
                    )
                finally:
                    if metrics_dir:
                        shutil.rmtree(metrics_dir, ignore_errors=True)
            return _run_fast(run_serve(options))
        except KeyboardInterrupt:
            return 0
        except OSError as error:
            raise UsageError(_serve_failure(args, error)) from None
    from lsp.server import build_stdio_server
    from lsp.stdio import serve_stdio

    _console_logging()  # until the session's log file is set up: stderr, guarded
    serve_stdio(build_stdio_server(args.config))
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """The mistakes a first day brings, each told in one line before anything starts."""
    config = getattr(args, "config", None)
    if config is not None and not config.expanduser().is_file():
        raise UsageError(
            f"config file {config} not found: give an existing file, or leave --config out "
            "($IQUEST_CONFIG or the user config dir's iquest-lsp/config.toml is read then)"
        )
    if args.command is None and args.serve:
        _check_serve(args)


def _check_serve(args: argparse.Namespace) -> None:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such file (a PEM file)")
    if args.tls_cert is not None:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                args.tls_cert, args.tls_key
            )
        except (ssl.SSLError, OSError) as error:
            raise UsageError(
                f"--tls-cert {args.tls_cert} / --tls-key {args.tls_key} cannot be used: "
                f"{getattr(error, 'reason', None) or error} (PEM certificate chain and its key)"
            ) from None
    if args.tokens is not None and not args.tokens.expanduser().parent.is_dir():
        raise UsageError(
            f"--tokens {args.tokens}: folder {args.tokens.parent} does not exist "
            "(create it, or leave --tokens out for the user config dir)"
        )
    for repo in args.repo:
        if not repo.is_dir():
            raise UsageError(f"--repo {repo}: no such folder (a server-side checkout)")
    if args.workers < 1:
        raise UsageError("--workers must be 1 or more")


def _serve_failure(args: argparse.Namespace, error: OSError) -> str:
    import errno

    if error.errno == errno.EADDRINUSE:
        return (
            f"a port on {args.host} is in use (--port {args.port}, --ws-port {args.ws_port}): "
            "stop what listens there, or choose other ports"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"--host {args.host} is not an address of this machine"
    return f"cannot serve: {error.strerror or error}"


def _token_command(args: argparse.Namespace) -> int:
    from engine.team.tokens import TokenError, TokenStore

    store = TokenStore(args.token_store)
    try:
        if args.action == "add":
            if not args.name:
                raise TokenError("token add needs a user name")
            repos = tuple(args.token_repos) if args.token_repos else None
            print(store.add(args.name, repos))
            print("(shown once: give it to the user; it is stored hashed)", file=sys.stderr)
        elif args.action == "list":
            if not store.entries():
                print(
                    f"no tokens in {store.path}: add one with `iquest-lsp token add NAME`",
                    file=sys.stderr,
                )
            for entry in store.entries():
                state = "revoked" if entry.revoked else "active"
                visible = ", ".join(entry.repos) if entry.repos is not None else "all checkouts"
                print(f"{entry.id}  {entry.user:20} {state:8} {visible}")
        else:
            if not args.name:
                raise TokenError("token revoke needs a token id or a user")
            print(f"revoked {store.revoke(args.name)} token(s)")
    except TokenError as error:
        print(f"iquest-lsp token: {error}", file=sys.stderr)
        return 2
    return 0


def _console_logging(level: int = logging.WARNING, log_file: Path | None = None) -> None:
    from lsp.log_guard import guard
    from lsp.logging_setup import rotating_file_handler

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(rotating_file_handler(log_file))
    logging.basicConfig(
        level=level,
        handlers=[guard(handler) for handler in handlers],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pygls logs every message it sends at INFO, and the HTTP clients every request: in serve
    # mode that put users' code in the daemon's log and formatted each message for nothing.
    for chatty in ("pygls", "httpx", "httpx2"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


if __name__ == "__main__":
    raise SystemExit(main())
