import os
import subprocess
import sys

from engine import __version__
from tests.support.lsp_session import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_and_help():
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"iquest-lsp {__version__}"
    helptext = run_cli("--help")
    assert helptext.returncode == 0
    for command in ("demo", "doctor", "--stdio", "--config"):
        assert command in helptext.stdout


def test_doctor_reports_an_unreachable_endpoint_and_fails(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[instruct]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[reasoning]\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    report = run_cli("--config", str(config), "doctor")
    assert report.returncode == 1
    assert "FAIL" in report.stdout and "http://127.0.0.1:9" in report.stdout
    # What to do next, not only what failed (issue 25).
    assert "is vLLM running there? start it with `iquest-lsp vllm" in report.stdout


def test_the_cli_parser_imports_no_metrics_library():
    """prometheus_client picks its value store once, at import: ``--serve --workers`` sets
    PROMETHEUS_MULTIPROC_DIR after parsing, so parsing must not import it (it did through
    ``iquest-lsp vllm``'s parser once, and /metrics of a multi-worker daemon came back empty)."""
    import subprocess

    probe = (
        "import sys, lsp.cli; lsp.cli.parser().parse_args(['--serve']); "
        "print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr


def test_the_command_lines_vscode_launches_parse():
    """vscode-languageclient adds --stdio to a stdio server's arguments: `connect` refused it,
    so team mode never started in a real VS Code (found by the in-host suite)."""
    from lsp.cli import parser

    for argv in (
        ["--config", "/etc/iquest.toml", "--stdio"],
        ["connect", "tls://gpu-host:7070", "--stdio"],
        ["connect", "wss://gpu-host:7071", "--token-file", "/home/me/t", "--stdio"],
    ):
        parser().parse_args(argv)  # exits 2 on an unknown argument
