"""Real trees: folders editors percent-encode, broken .gitignore lines, and a corpus of public
projects (registry packages, unpacked once and cached) indexed and completed in."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from engine.repository.index import RepositoryIndex
from tests.conftest import VllmEndpoint
from tests.support.corpus import PROJECTS, Project, project_root
from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
)

# Spaces, a plus sign and accents: VS Code sends each percent-encoded.
AWKWARD = "My Projects/a+b/été"
MODELS = (
    'class Invoice:\n    """A bill."""\n\n    def total_cents(self) -> int:\n        return 0\n'
)
MAIN = "from shop.models import Invoice\n\n\ndef charge(invoice: Invoice) -> int:\n    return "


def editor_uri(path: Path) -> str:
    """As VS Code writes it: every byte outside [A-Za-z0-9/._~-] encoded, '+' included."""
    return "file://" + quote(path.as_posix(), safe="/")


def make_shop(root: Path) -> Path:
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "models.py").write_text(MODELS)
    (root / "shop" / "main.py").write_text(MAIN)
    return root / "shop" / "main.py"


async def test_percent_encoded_paths_get_completions_from_the_real_server(
    vllm: VllmEndpoint, tmp_path: Path
):
    workspace = tmp_path / AWKWARD
    main = make_shop(workspace)
    uri = editor_uri(main)
    assert "%20" in uri and "%2B" in uri and "%C3%A9" in uri
    options = {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {"temperature": 0.0, "multiline": "always"},
    }
    async with lsp_session(options, workspace) as client:
        open_document(client, uri, MAIN)
        items = items_of(await inline_completion(client, uri, end_position(MAIN)))
    # An explicit request: up to completion.candidates distinct suggestions.
    texts = [str(item.insert_text) for item in items]
    assert 1 <= len(texts) <= 3 and len(set(texts)) == len(texts) and texts[0].strip()


async def test_percent_encoded_paths_carry_the_repository_context(tmp_path: Path):
    workspace = tmp_path / AWKWARD
    main = make_shop(workspace)
    uri = editor_uri(main)
    async with fake_server() as server:
        options = {"instruct": {"base_url": server.base_url}, "completion": {"debounce_ms": 0}}
        async with lsp_session(options, workspace) as client:
            open_document(client, uri, MAIN)
            # Completions never wait for the index: the first ones may come before it.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await inline_completion(client, uri, end_position(MAIN))
                if "class Invoice:" in server.prompts[-1]:
                    break
                await asyncio.sleep(0.2)
    assert server.prompts, "no request reached the model"
    prompt = server.prompts[-1]
    # The imported class's declaration, found through the index of the encoded folder.
    assert "class Invoice:" in prompt and "def total_cents(self) -> int" in prompt
    assert "<|file_sep|>shop/main.py" in prompt


def test_an_invalid_gitignore_line_is_skipped_and_the_rest_applies(tmp_path: Path, caplog):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "kept.py").write_text("def kept(): ...\n")
    (root / "pkg" / "ignored.py").write_text("def ignored(): ...\n")
    # A lone '!' (pathspec rejects it; git ignores it), as in a popular project's test data.
    (root / ".gitignore").write_text("!\nignored.py\n")
    (root / "pkg" / ".gitignore").write_text("[\n")
    with caplog.at_level(logging.INFO):
        index = RepositoryIndex(root)
        report = index.build_blocking()
    assert "pkg/kept.py" in index and "pkg/ignored.py" not in index
    assert report.files == 1
    assert "invalid .gitignore line" in caplog.text


def test_one_unreadable_file_costs_that_file_only(tmp_path: Path, caplog):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "good.py").write_text("def good(): ...\n")
    (root / "bad.py").write_text("def bad(): ...\n")
    from engine.repository.parsing import InProcessParser, header_of

    def failing(relative: str, data: bytes):
        if relative == "bad.py":
            raise RuntimeError("boom")
        return header_of(relative, data)

    with caplog.at_level(logging.INFO):
        index = RepositoryIndex(root, parser=InProcessParser(failing))
        index.build_blocking()
    assert "good.py" in index and "bad.py" not in index
    assert "skipping bad.py" in caplog.text


def test_the_daemons_own_log_in_a_watched_folder_is_not_an_event(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("x = 1\n")
    index = RepositoryIndex(root, own_files=(root / "iquest.log",))
    assert not index.watches(root / "iquest.log")
    assert index.watches(root / "app.py")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real projects, unpacked from their registry packages (cached between runs), each
    copied under a folder whose name an editor percent-encodes."""
    base = tmp_path_factory.mktemp("corpus") / "Réal projects"
    found = {}
    for project in PROJECTS:
        target = base / project.folder
        shutil.copytree(project_root(project), target)
        found[project.name] = target
    return found


@pytest.mark.parametrize("name", [p.name for p in PROJECTS])
def test_each_real_project_is_indexed_without_error(corpus: dict[str, Path], name: str, caplog):
    with caplog.at_level(logging.WARNING):
        index = RepositoryIndex(corpus[name])
        report = index.build_blocking()
    assert report.files > 20
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Declarations are found by name and through imports on real code.
    with_definitions = sum(1 for p in index.paths() if (h := index.header(p)) and h.definitions)
    assert with_definitions > report.files // 2


async def test_an_inline_completion_answers_in_every_real_project(
    corpus: dict[str, Path], vllm: VllmEndpoint, tmp_path: Path
):
    options = {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {"temperature": 0.0, "max_tokens": 16, "multiline": "always"},
    }
    answered = {}
    # Two daemons at a time: each indexes its project (CPU) while the other waits on vLLM.
    two_at_a_time = asyncio.Semaphore(2)

    async def complete_in(project: Project) -> None:
        root = corpus[project.name]
        suffix = ".py" if project.language == "python" else ".ts"
        source = next(
            p
            for p in sorted(root.rglob(f"*{suffix}"))
            if "test" not in p.name and p.stat().st_size > 2000 and "node_modules" not in p.parts
        )
        text = source.read_text(encoding="utf-8")
        cut = text.index("\n", len(text) // 2) + 1  # mid-file, at a line start
        async with two_at_a_time, lsp_session(options, root) as client:
            uri = editor_uri(source)
            open_document(client, uri, text[:cut], project.language)
            result = await inline_completion(client, uri, end_position(text[:cut]))
            answered[project.name] = items_of(result)

    await asyncio.gather(*(complete_in(project) for project in PROJECTS))
    assert set(answered) == {project.name for project in PROJECTS}
    assert all(answered.values()), {k: v for k, v in answered.items() if not v}


async def test_indexing_shows_progress_in_the_editor(tmp_path: Path):
    """People expected indexing progress in the editor (issue 25): work-done progress per
    folder, begun when indexing starts and ended with what was indexed."""
    from lsprotocol import types

    from tests.support.polling import eventually

    workspace = tmp_path / AWKWARD
    make_shop(workspace)
    async with fake_server() as server:
        options = {"instruct": {"base_url": server.base_url}}
        async with lsp_session(options, workspace) as client:

            def ended() -> list[types.WorkDoneProgressEnd]:
                return [
                    report
                    for reports in client.progress_reports.values()
                    for report in reports
                    if isinstance(report, types.WorkDoneProgressEnd)
                ]

            await eventually(lambda: bool(ended()), 20, "indexing progress ended")
            begins = [
                report
                for reports in client.progress_reports.values()
                for report in reports
                if isinstance(report, types.WorkDoneProgressBegin)
            ]
    assert [b.title for b in begins] == ["iquest: indexing"]
    assert begins[0].message == workspace.name
    assert "3 files (3 parsed" in (ended()[0].message or "")  # __init__, models, main
