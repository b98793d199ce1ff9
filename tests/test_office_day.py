"""Team mode through a real office day (issue 23): swapped symlinks, hostile files, log
floods, requests before initialize, and what TLS accepts. Each test failed on the main of
2026-12-04."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from tests.support.fake_server import fake_server
from tests.test_team_hardening import daemon_with


@pytest.mark.parametrize(
    ("ciphers", "accepted"),
    [
        ("ECDHE-ECDSA-AES128-SHA256", False),
        ("ECDHE-ECDSA-AES256-SHA384", False),
        ("ECDHE-ECDSA-AES128-SHA", False),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
    ],
)
async def test_tls_12_takes_only_aead_suites(tmp_path: Path, ciphers: str, accepted: bool):
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        context = ssl.create_default_context(cafile=str(team["cert"]))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", daemon.bound["tcp"], ssl=context)
        except (ssl.SSLError, ConnectionError):  # refused in the handshake
            handshook = False
        else:
            handshook = True
            writer.close()
    assert handshook is accepted


async def test_tls_13_is_taken(tmp_path: Path):
    async with fake_server() as fake, daemon_with(tmp_path, fake) as (daemon, team):
        context = ssl.create_default_context(cafile=str(team["cert"]))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        _, writer = await asyncio.open_connection("127.0.0.1", daemon.bound["tcp"], ssl=context)
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
    assert version == "TLSv1.3"
