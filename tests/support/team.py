"""A team daemon in the test's event loop, and editors that reach it through real
``iquest-lsp connect`` bridge processes driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from engine.team.tokens import TokenStore
from lsp.serve.daemon import TeamDaemon
from lsp.serve.limits import UserLimits
from lsp.serve.options import ServeOptions
from tests.support.certificates import self_signed
from tests.support.fake_server import FakeServer
from tests.support.lsp_session import REPO, editor_capabilities


@asynccontextmanager
async def team_daemon(
    tmp_path: Path,
    fake: FakeServer,
    limits: UserLimits | None = None,
    repos: tuple[Path, ...] = (),
    config_extra: str = "",
) -> AsyncIterator[tuple[TeamDaemon, dict]]:
    """A daemon in the test's event loop: inline completions from ``fake``; users alice, bob
    and carol (carol sees another checkout only). ``config_extra``: more TOML tables."""
    cert, key = self_signed(tmp_path)
    config = tmp_path / "server.toml"
    config.write_text(
        f'[instruct]\nbase_url = "{fake.base_url}"\n'
        "[completion]\ndebounce_ms = 0\ntimeout_s = 5.0\n"
        f'[index]\ncache_dir = "{tmp_path / "index-cache"}"\n' + config_extra
    )
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {user: store.add(user) for user in ("alice", "bob")}
    tokens["carol"] = store.add("carol", ("some-other-checkout",))
    daemon = TeamDaemon(
        ServeOptions(
            port=0,
            ws_port=0,
            tls_cert=cert,
            tls_key=key,
            tokens=store.path,
            config=config,
            limits=limits or UserLimits(),
            repos=repos,
        )
    )
    await daemon.start()
    try:
        yield daemon, {"tokens": tokens, "cert": cert, "store": store}
    finally:
        await daemon.aclose()


@asynccontextmanager
async def editor(
    url: str,
    token: str,
    tmp_path: Path,
    cert: Path,
    folder: str = "proj",
    before_initialize_s: float = 0.0,
) -> AsyncIterator[LanguageClient]:
    """An editor through a real bridge process; ``before_initialize_s``: a slow editor's
    pause between starting the bridge and sending ``initialize``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "IQUEST_TOKEN": token}
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "lsp", "connect", url, "--ca-file", str(cert)],
        server_env=env,
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    await asyncio.sleep(before_initialize_s)
    root = tmp_path / folder
    await client.initialize_session(
        types.InitializeParams(
            capabilities=editor_capabilities(),
            initialization_options={"iquest": {"completion": {"max_tokens": 16}}},
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=folder)],
        )
    )
    try:
        yield client
    finally:
        await client.shutdown_session()
