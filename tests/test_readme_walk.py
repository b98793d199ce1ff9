"""The READMEs' own examples, run or parsed as written (issue 25: the documented paths must be
the ones the tests run, so doc and test cannot drift). Set-up (scripts/setup.sh) and the demo
run elsewhere (CI runs set-up; the demo needs minutes of CPU)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.config import Settings, build_settings
from engine.deploy.launcher import free_port
from lsp.cli import parser
from lsp.serve.framing import frame
from lsp.vllm_args import split_extra
from tests.support.certificates import self_signed
from tests.support.lsp_session import REPO

READMES = [
    REPO / "README.md",
    *sorted(REPO.glob("*/README.md")),
    *sorted(REPO.glob("*/*/README.md")),
]


def blocks(language: str) -> list[tuple[Path, str]]:
    found = []
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        found += [(readme, m) for m in re.findall(rf"```{language}\n(.*?)```", text, re.S)]
    return found


def command_lines() -> list[tuple[Path, str]]:
    """Every `iquest-lsp ...` line of the shell examples, continuations joined, comments off."""
    lines = []
    for readme, block in [*blocks("sh"), *blocks("bash")]:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("#"):
                continue
            for part in line.split("&&"):
                words = _without_assignments(shlex.split(part.strip()))
                if words and words[0].endswith("iquest-lsp"):
                    lines.append((readme, part.strip()))
    return lines


def _without_assignments(words: list[str]) -> list[str]:
    """The command after any ``NAME=value`` environment assignments before it."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    return words


def test_the_readmes_have_examples_to_walk():
    assert len(blocks("toml")) >= 5
    assert len(command_lines()) >= 10


@pytest.mark.parametrize(
    ("readme", "block"),
    blocks("toml"),
    ids=lambda value: value.name if isinstance(value, Path) else "",
)
def test_every_settings_example_is_valid_settings(readme: Path, block: str):
    layer = tomllib.loads(block)  # every TOML example parses (Helix's languages.toml too)
    ours = {field.name for field in dataclasses.fields(Settings)}
    if set(layer) & ours:  # the daemon's settings (not another program's file)
        build_settings(layer)  # raises SettingsError naming the key


@pytest.mark.parametrize(
    ("readme", "line"), command_lines(), ids=lambda v: v.name if isinstance(v, Path) else ""
)
def test_every_documented_command_line_parses(readme: Path, line: str):
    ours, _ = split_extra(_without_assignments(shlex.split(line))[1:])
    parser().parse_args(ours)  # exits 2 on an unknown flag or a missing argument


def test_the_team_mode_token_commands_run_as_written(tmp_path: Path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    written = [
        line
        for readme, line in command_lines()
        if readme == REPO / "README.md" and " token " in f" {line} "
    ]
    assert [shlex.split(line)[1:3] for line in written] == [
        ["token", "add"],
        ["token", "list"],
        ["token", "revoke"],
    ]
    outputs = []
    for line in written:
        done = subprocess.run(
            [sys.executable, "-m", "lsp", *shlex.split(line)[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    assert outputs[0].startswith("iq")  # the token, shown once
    assert "alice" in outputs[1] and "active" in outputs[1]
    assert outputs[2].strip() == "revoked 1 token(s)"


def _with_values(words: list[str], values: dict[str, str]) -> list[str]:
    """``words`` with the value after each flag in ``values`` replaced (every other word as
    written)."""
    out = list(words)
    for i, word in enumerate(out[:-1]):
        if word in values:
            out[i + 1] = values[word]
    return out


async def _read_message(stream: asyncio.StreamReader) -> dict[str, Any]:
    length = 0
    while (line := await stream.readline()).strip():
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length, "the bridge closed its output"
    return dict(json.loads(await stream.readexactly(length)))


async def _answer(stream: asyncio.StreamReader, msg_id: int) -> dict[str, Any]:
    while (message := await _read_message(stream)).get("id") != msg_id:
        pass
    return message


async def test_the_team_mode_commands_serve_an_editor_as_written(tmp_path: Path, vllm):
    """README's team-mode block run as written: `token add`, then the `--serve` line (its own
    flags, `--workers 4` included; only ports and files are this machine's), then an editor's
    bridge `IQUEST_TOKEN=… iquest-lsp connect tls://…` gets a suggestion from the real vLLM."""
    home = tmp_path / "home"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    lines = [line for readme, line in command_lines() if readme == REPO / "README.md"]
    add = next(line for line in lines if " token add " in f" {line} ")
    serve = shlex.split(next(line for line in lines if "--serve" in line.split()))
    connect_line = next(line for line in lines if " connect tls://" in f" {line} ")
    work = tmp_path / "équipe partagée"
    checkout = work / "checkouts" / "backend"
    (checkout / "pkg").mkdir(parents=True)
    (checkout / "pkg" / "util.py").write_text("def helper(values):\n    return sorted(values)\n")
    cert, key = self_signed(work)
    server_toml = work / "server.toml"
    server_toml.write_text(
        f'[instruct]\nbase_url = "{vllm.base_url}"\nmodel = "{vllm.model}"\n'
        "[completion]\ndebounce_ms = 0\nmax_tokens = 8\ntimeout_s = 60\n"
    )
    adding = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lsp", *shlex.split(add)[1:]),
        env=env,
        cwd=work,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(adding.communicate(), 60)
    assert adding.returncode == 0
    token = out.decode().split()[0]
    tcp_port, ws_port = free_port(), free_port()
    argv = _with_values(
        serve,
        {
            "--port": str(tcp_port),
            "--ws-port": str(ws_port),
            "--tls-cert": cert.name,
            "--tls-key": key.name,
            "--repo": str(checkout),
            "--config": server_toml.name,
        },
    )
    assert argv[1:] != serve[1:] and "--workers" in argv  # the README's own flags
    console = (tmp_path / "daemon.log").open("wb")
    daemon = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lsp", *argv[1:]),
        env=env,
        cwd=work,
        stdout=console,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert))) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get(f"https://127.0.0.1:{ws_port}/healthz")).is_success:
                        break
                except httpx.HTTPError:
                    pass
                assert daemon.returncode is None and time.monotonic() < deadline, "not healthy"
                await asyncio.sleep(0.2)
        words = shlex.split(connect_line)
        assert words[0].startswith("IQUEST_TOKEN=")
        bridge = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lsp",
            *(word.replace("host:7070", f"127.0.0.1:{tcp_port}") for word in words[2:]),
            env={**env, "IQUEST_TOKEN": token},
            cwd=work,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert bridge.stdin is not None and bridge.stdout is not None

        def send(message: dict[str, Any]) -> None:
            assert bridge.stdin is not None
            bridge.stdin.write(frame(json.dumps({"jsonrpc": "2.0", **message}).encode()))

        uri = (checkout / "pkg" / "main.py").as_uri()  # percent-encoded: space and accent
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "capabilities": {},
                    "workspaceFolders": [{"uri": checkout.as_uri(), "name": "backend"}],
                },
            }
        )
        initialized = await asyncio.wait_for(_answer(bridge.stdout, 1), 60)
        assert "capabilities" in initialized["result"], initialized
        send({"method": "initialized", "params": {}})
        send(
            {
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {
                        "uri": uri,
                        "languageId": "python",
                        "version": 1,
                        "text": "from pkg.util import helper\n\nresult = help",
                    }
                },
            }
        )
        send(
            {
                "id": 2,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": uri},
                    "position": {"line": 2, "character": 13},
                    "context": {"triggerKind": 1},
                },
            }
        )
        answer = await asyncio.wait_for(_answer(bridge.stdout, 2), 120)
        assert "error" not in answer, answer
        assert answer["result"]["items"][0]["insertText"]  # the real vLLM's suggestion
        send({"id": 3, "method": "shutdown"})
        await asyncio.wait_for(_answer(bridge.stdout, 3), 30)
        send({"method": "exit"})
        assert await asyncio.wait_for(bridge.wait(), 30) == 0
        stderr = await bridge.stderr.read() if bridge.stderr else b""
        assert b"Traceback" not in stderr
    finally:
        daemon.terminate()
        await asyncio.wait_for(daemon.wait(), 60)
        console.close()
    assert b"Traceback" not in (tmp_path / "daemon.log").read_bytes()


async def test_the_demo_shows_a_suggestion_from_a_configured_endpoint(tmp_path: Path, vllm):
    """`iquest-lsp demo --config FILE` with an instruct endpoint that answers: no embedded
    model is started (minutes of CPU, left to the README's first command in CI), and the
    suggestion comes through the language server from that endpoint. The daemon it drives
    read no --config before: the demo said "using the configured endpoint", then the daemon
    used another."""
    config = tmp_path / "my config.toml"
    config.write_text(
        f'[instruct]\nbase_url = "{vllm.base_url}"\nmodel = "{vllm.model}"\n'
        "[completion]\ndebounce_ms = 0\ntemperature = 0.0\nmax_tokens = 12\ntimeout_s = 60\n"
        "[index]\nenabled = false\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / "cache"),
    }
    env.pop("IQUEST_CONFIG", None)
    demo = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lsp", "demo", "--config", str(config)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(demo.communicate(), 240)
    stdout, stderr = out.decode(), err.decode()
    assert demo.returncode == 0, stderr
    assert f"Using the configured instruct endpoint {vllm.base_url}" in stderr
    assert "Starting vLLM" not in stderr and "Traceback" not in stderr + stdout
    shown = stdout.split("--- suggestion from the model:")[1].split("\n---")[0]
    assert "def is_prime" in shown  # the example, then the model's continuation
    assert "(no suggestion" not in stdout, stdout
    assert "after typing" in stdout
