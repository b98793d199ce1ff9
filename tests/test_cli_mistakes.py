"""The first day's mistakes (issue 25): each gets one line on stderr naming what is wrong and
what to do, exit code 2, and never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import SettingsError, build_settings
from engine.team.tokens import TokenStore
from tests.support.certificates import self_signed
from tests.support.lsp_session import REPO

INITIALIZE = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
).encode()
FRAMED = b"Content-Length: %d\r\n\r\n%s" % (len(INITIALIZE), INITIALIZE)


def cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "lsp", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=60,
    )


def one_line_exit_2(done: subprocess.CompletedProcess[bytes], *words: str) -> str:
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def plain_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("daemon")
    store = TokenStore(folder / "tokens.json")
    token = store.add("alice")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "lsp", "--serve", "--port", "0", "--ws-port", "0"),
            *("--tokens", str(store.path)),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    banner = process.stdout.readline().decode()
    tcp = int(banner.split("tcp://127.0.0.1:")[1].split()[0])
    ws = int(banner.split("ws://127.0.0.1:")[1].split()[0])
    try:
        yield {"tcp": tcp, "ws": ws, "token": token, "folder": folder}
    finally:
        process.terminate()
        process.wait(30)


def test_connect_with_a_wrong_token_over_websocket(plain_daemon):
    done = cli(
        "connect",
        f"ws://127.0.0.1:{plain_daemon['ws']}",
        stdin=FRAMED,
        env={"IQUEST_TOKEN": "iq_wrong_token"},
    )
    one_line_exit_2(done, "refused the token", "HTTP 401")


def test_connect_ws_to_the_tcp_port(plain_daemon):
    done = cli(
        "connect",
        f"ws://127.0.0.1:{plain_daemon['tcp']}",
        stdin=FRAMED,
        env={"IQUEST_TOKEN": str(plain_daemon["token"])},
    )
    one_line_exit_2(done, "--ws-port")


def test_connect_tls_to_a_plain_server(plain_daemon):
    done = cli(
        "connect",
        f"tls://127.0.0.1:{plain_daemon['tcp']}",
        stdin=FRAMED,
        env={"IQUEST_TOKEN": str(plain_daemon["token"])},
    )
    one_line_exit_2(done, "--tls-cert", "tcp://")


def test_connect_with_an_empty_or_missing_token_file(tmp_path: Path, plain_daemon):
    empty = tmp_path / "token"
    empty.write_text("")
    url = f"tcp://127.0.0.1:{plain_daemon['tcp']}"
    one_line_exit_2(cli("connect", url, "--token-file", str(empty), stdin=FRAMED), "is empty")
    missing = str(tmp_path / "nope")
    one_line_exit_2(cli("connect", url, "--token-file", missing, stdin=FRAMED), "not found")


def test_serve_on_a_port_in_use(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tokens = str(tmp_path / "t")
        done = cli("--serve", "--port", str(port), "--ws-port", "0", "--tokens", tokens)
    one_line_exit_2(done, "in use", str(port))


def test_serve_with_a_missing_certificate(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    missing = str(tmp_path / "missing.pem")
    done = cli("--serve", "--tls-cert", missing, "--tls-key", str(key), "--port", "0")
    one_line_exit_2(done, "--tls-cert", missing)
    done = cli("--serve", "--tls-cert", str(cert), "--port", "0")
    one_line_exit_2(done, "go together")


def test_serve_with_a_tokens_folder_or_repo_that_does_not_exist(tmp_path: Path):
    done = cli("--serve", "--tokens", str(tmp_path / "no" / "tokens.json"), "--port", "0")
    one_line_exit_2(done, "does not exist")
    done = cli("--serve", "--repo", str(tmp_path / "nowhere"), "--port", "0")
    one_line_exit_2(done, "--repo", "no such folder")


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_a_missing_config_file_is_named_wherever_config_is_given(tmp_path: Path, before: bool):
    missing = str(tmp_path / "config.toml")
    args = ("--config", missing, "doctor") if before else ("doctor", "--config", missing)
    one_line_exit_2(cli(*args), "config file", "not found")


def test_token_list_on_an_empty_store_says_so(tmp_path: Path):
    done = cli("token", "list", "--tokens", str(tmp_path / "tokens.json"))
    assert done.returncode == 0
    assert "no tokens" in done.stderr.decode() and "token add" in done.stderr.decode()


def test_a_misspelled_key_is_named_once_with_what_was_meant():
    with pytest.raises(SettingsError) as refused:
        build_settings({"instruct": {"base_ur": "http://gpu:8000/v1"}})
    assert str(refused.value) == (
        "invalid settings: instruct.base_ur: not a setting (did you mean base_url?)"
    )


@pytest.mark.parametrize("command", ["demo", "doctor", "connect", "token", "vllm"])
def test_each_command_has_a_description_and_shows_defaults(command: str):
    done = cli(command, "--help")
    text = done.stdout.decode()
    assert done.returncode == 0
    _, _, rest = text.partition("\n\n")
    assert rest.strip() and not rest.startswith(("positional", "options")), text[:300]
    if command == "connect":
        assert "--token-file" in text and "mode 600" in text
    if command == "vllm":
        assert "--role" in text and "(default: instruct)" in text


def test_connect_with_a_wrong_token_over_tcp(plain_daemon):
    """The editor keeps stdin open (a closed stdin ends the bridge before any answer)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lsp", "connect", f"tcp://127.0.0.1:{plain_daemon['tcp']}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "IQUEST_TOKEN": "iq_wrong_token"},
    )
    assert process.stdin is not None
    process.stdin.write(FRAMED)
    process.stdin.flush()
    try:
        process.wait(timeout=30)  # the daemon refuses and closes; stdin stays open
    finally:
        process.kill()
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = process.stdout.read(), process.stderr.read()
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    one_line_exit_2(done, "refused the token")
    assert b"unauthorized" in done.stdout  # the editor still gets the server's answer
