"""``iquest-lsp``: the language server on stdio, plus ``demo`` and ``doctor``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from engine import __version__


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="iquest-lsp",
        description="AI code completion language server for vLLM deployments. "
        "With no command, speaks LSP over stdio.",
    )
    root.add_argument("--version", action="version", version=f"iquest-lsp {__version__}")
    root.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default)")
    root.add_argument(
        "--config",
        type=Path,
        help="TOML settings file (default: $IQUEST_CONFIG "
        "or the user config dir's iquest-lsp/config.toml)",
    )
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="start the embedded model on vLLM's CPU build (unless an instruct endpoint "
        "answers) and show a real suggestion through the language server",
    )
    demo.add_argument(
        "--file", type=Path, help="complete at the end of this file instead of the built-in example"
    )
    demo.add_argument(
        "--port", type=int, default=0, help="port for the embedded vLLM (default: free)"
    )
    commands.add_parser("doctor", help="check the endpoints, models, FIM tokens and prefix caching")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        from lsp.demo import run_demo

        _console_logging()
        return asyncio.run(run_demo(args.config, args.file, args.port))
    if args.command == "doctor":
        from lsp.doctor_cli import run_doctor

        _console_logging()
        return asyncio.run(run_doctor(args.config))
    from lsp.server import build_server

    build_server(args.config).start_io()
    return 0


def _console_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
