"""The READMEs' own examples, run or parsed as written (issue 25: the documented paths must be
the ones the tests run, so doc and test cannot drift). Set-up (scripts/setup.sh) and the demo
run elsewhere (CI runs set-up; the demo needs minutes of CPU)."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.config import Settings, build_settings
from lsp.cli import parser
from lsp.vllm_args import split_extra
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
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and words[0].endswith("iquest-lsp"):
                    lines.append((readme, part.strip()))
    return lines


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
    ours, _ = split_extra(shlex.split(line)[1:])
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
