"""The prompt's layout: stable from one keystroke to the next, deterministic, secret-free."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.completion.context import ContextBuilder, CursorContext, TokenCounts
from engine.completion.context.builder import tier_room
from engine.completion.context.window import CHUNK_LINES, WindowAnchors, anchored_window
from engine.completion.templating.templates import template_named
from engine.completion.types import CompletionRequest
from engine.definitions import RepositoryContext
from engine.definitions.repository import FileAt
from engine.definitions.tier import RepositoryTier, Snippet
from engine.place import Place
from engine.workspace import Workspace

QWEN = template_named("qwen")


def words_counter() -> TokenCounts:
    async def count(text: str) -> int:
        return len(text.split()) + text.count("\n")

    return TokenCounts(count)


def numbered_lines(count: int) -> str:
    return "".join(f"value_{i} = compute({i}, 'x')\n" for i in range(count))


def test_window_start_stays_put_while_typing_and_moves_in_whole_chunks():
    counts = TokenCounts(None)  # estimates: deterministic
    anchors = WindowAnchors()
    text = numbered_lines(400)
    starts = []
    for line in range(100, 400):
        cursor = sum(len(f"value_{i} = compute({i}, 'x')\n") for i in range(line))
        window = anchored_window(
            text, cursor, anchors, counts, prefix_budget=600, suffix_budget=150
        )
        starts.append(window.start_line)
        assert window.start_line % CHUNK_LINES == 0
        assert window.prefix.endswith("\n") and text[:cursor].endswith(window.prefix)
    moves = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    # A sliding window would move on all 299 line changes; this one moves a handful of times.
    assert moves <= 20, moves


def test_tier_appends_new_snippets_and_rebuilds_only_when_the_top_ones_do_not_fit():
    snippets = {
        f"pkg/m{i}.py": Snippet(f"pkg/m{i}.py", f"pkg/m{i}.py", f"def f{i}(): ...\n" * 5)
        for i in range(20)
    }
    counts, tier = TokenCounts(None), RepositoryTier()

    def cost(snippet: Snippet) -> int:
        return counts.count(snippet.text)

    def ranked(*names: str) -> list[Snippet]:
        return [snippets[f"pkg/{name}.py"] for name in names]

    first = tier.entries(ranked("m3", "m1", "m5"), cost, budget=10_000)
    # The same file, a new use (or a file needing what the tier holds, and one more thing).
    second = tier.entries(ranked("m7", "m1", "m3", "m5"), cost, budget=10_000)
    assert [e.path for e in first] == ["pkg/m3.py", "pkg/m1.py", "pkg/m5.py"]
    # Appended after what was there: the earlier entries (and their cache blocks) stay first.
    assert [e.path for e in second] == ["pkg/m3.py", "pkg/m1.py", "pkg/m5.py", "pkg/m7.py"]
    assert tier.rebuilds == 0
    small = RepositoryTier()
    small.entries(ranked("m1", "m2"), cost, budget=60)
    after = small.entries(ranked("m9", "m8"), cost, budget=60)
    # The new file's top snippet did not fit: rebuilt with it first.
    assert small.rebuilds == 1 and after[0].path == "pkg/m9.py"


async def _prompt_for(root: Path, cache: Path, text: str, cursor: int) -> str:
    workspace = Workspace(cache)
    workspace.add_folder(root, watch=False)
    await workspace.ready()
    uri = (root / "app" / "main.py").as_uri()
    workspace.documents.opened(uri, "app/main.py", "python", text)
    builder = ContextBuilder(RepositoryContext(workspace), words_counter())
    request = CompletionRequest(Place(uri, path=root / "app" / "main.py"), "python", text, cursor)
    builder.build(request, 2048)
    await builder.counts.settle()  # real counts in, as on a warm daemon
    context = builder.build(request, 2048)
    assert context is not None
    await workspace.aclose()
    return QWEN.render(context)


def make_repo(root: Path) -> None:
    (root / "app").mkdir(parents=True)
    (root / "app" / "models.py").write_text(
        "class User:\n    def name(self) -> str:\n        return 'x'\n"
    )
    (root / "app" / "util.py").write_text(
        "import os\n\ndef slug(s: str) -> str:\n    return s.lower()\n"
    )
    (root / ".env").write_text("API_TOKEN=supersecretvalue123\n")
    (root / "app" / "settings.py").write_text('password = "hunter2hunter2"\nDEBUG = True\n')


async def test_identical_state_gives_byte_identical_prompts_with_imports_first(tmp_path: Path):
    make_repo(tmp_path / "repo")
    text = "from app.models import User\nfrom app import util\n\ndef run(u: User):\n    "
    first = await _prompt_for(tmp_path / "repo", tmp_path / "c1", text, len(text))
    second = await _prompt_for(tmp_path / "repo", tmp_path / "c2", text, len(text))
    assert first == second
    assert first.startswith("<|repo_name|>repo\n<|file_sep|>app/models.py\nclass User:")
    assert (
        first.index("app/models.py")
        < first.index("app/util.py")
        < first.index("<|file_sep|>app/main.py")
    )
    # Secrets stay out: the .env file is never indexed, credential values are masked.
    assert "supersecretvalue123" not in first and "hunter2hunter2" not in first


async def test_a_secrets_file_gets_no_context_at_all(tmp_path: Path):
    make_repo(tmp_path / "repo")
    workspace = Workspace(tmp_path / "cache")
    workspace.add_folder(tmp_path / "repo", watch=False)
    await workspace.ready()
    builder = ContextBuilder(RepositoryContext(workspace), TokenCounts(None))
    env = tmp_path / "repo" / ".env"
    request = CompletionRequest(Place(env.as_uri(), path=env), "dotenv", "API_TOKEN=", 10)
    assert builder.build(request, 2048) is None
    await workspace.aclose()


async def test_the_naive_layout_changes_the_prompt_start_between_keystrokes(tmp_path: Path):
    make_repo(tmp_path / "repo")
    workspace = Workspace(tmp_path / "cache")
    workspace.add_folder(tmp_path / "repo", watch=False)
    await workspace.ready()
    path = tmp_path / "repo" / "app" / "main.py"
    text = "from app.models import User\nfrom app import util\n\n" + numbered_lines(300)
    workspace.documents.opened(path.as_uri(), "app/main.py", "python", text)
    prompts = {}
    for layout in ("stable", "naive"):
        builder = ContextBuilder(RepositoryContext(workspace), TokenCounts(None), layout=layout)  # type: ignore[arg-type]
        rendered = []
        for cursor in (len(text) - 40, len(text) - 39, len(text)):
            context = builder.build(
                CompletionRequest(Place(path.as_uri(), path=path), "python", text, cursor), 1024
            )
            assert context is not None
            rendered.append(QWEN.render(context))
        prompts[layout] = rendered
    stable, naive = prompts["stable"], prompts["naive"]
    common = min(len(p) for p in stable)
    assert stable[0][: common - 200] == stable[2][: common - 200]
    assert naive[0][:200] != naive[2][:200] or naive[0][200:400] != naive[2][200:400]
    await workspace.aclose()


async def test_token_counts_are_served_from_cache_after_the_first_sight():
    calls: list[str] = []

    async def count(text: str) -> int:
        calls.append(text)
        return 7

    counts = TokenCounts(count)
    assert counts.count("hello world") == len("hello world") // 3 + 1  # estimate first
    await counts.settle()
    assert counts.count("hello world") == 7 and calls == ["hello world"]
    await asyncio.sleep(0)
    assert counts.count("hello world") == 7 and calls == ["hello world"]


def _lettered() -> tuple[RepositoryTier, Callable[[Snippet], int], Callable[[str], list[Snippet]]]:
    """A tier, a cost (21 tokens a snippet) and snippets named by letters ("pkg/a.py", ...)."""
    snippets = {n: Snippet(n, f"pkg/{n}.py", "x" * 60) for n in "abcdefgh"}
    counts = TokenCounts(None)

    def cost(snippet: Snippet) -> int:
        return counts.count(snippet.text)

    def ranked(names: str) -> list[Snippet]:
        return [snippets[n] for n in names]

    return RepositoryTier(), cost, ranked


def test_a_new_must_have_evicts_from_the_tail_and_keeps_the_head():
    tier, cost, ranked = _lettered()
    first = tier.entries(ranked("abcd"), cost, budget=100)
    assert [e.path for e in first] == ["pkg/a.py", "pkg/b.py", "pkg/c.py", "pkg/d.py"]
    # The file now needs 'g' most (a new use near the cursor): the tail makes room for it.
    second = tier.entries(ranked("gabcd"), cost, budget=100)
    assert [e.path for e in second][:3] == ["pkg/a.py", "pkg/b.py", "pkg/c.py"]
    assert "pkg/g.py" in [e.path for e in second] and tier.rebuilds == 0 and tier.evictions >= 1


def test_a_tail_no_ranking_holds_gives_way_to_what_the_file_needs_after_its_must_haves():
    """Another file's declarations at the tier's tail, while this file's lesser needs (past
    the must-have share) would not fit: the stale tail goes, the head stays (its cache)."""
    tier, cost, ranked = _lettered()
    tier.entries(ranked("abcd"), cost, budget=120)  # the last file: a, b, c, d (84 of 108)
    # This file's must-haves (half the budget: two) are held; its other needs e, f did not
    # fit beside the last file's c and d.
    after = [e.path for e in tier.entries(ranked("abef"), cost, budget=120)]
    assert after[:2] == ["pkg/a.py", "pkg/b.py"]
    assert "pkg/e.py" in after and "pkg/f.py" in after and "pkg/d.py" not in after
    assert tier.rebuilds == 0
    # Nothing changes on the next keystroke.
    assert [e.path for e in tier.entries(ranked("abef"), cost, budget=120)] == after


async def test_a_short_file_gives_its_unused_share_to_the_tier_in_steps_that_only_shrink(
    tmp_path: Path,
):
    """A short file uses little of the window's and header's shares: the tier takes that room
    (more of the definitions the file uses reach the prompt); typing changes its size only when
    the file outgrows a step, and then by cutting the tail (the head stays cached)."""
    helpers = await _HelpersRepository.open(tmp_path)
    workspace, path, head, builder = helpers.workspace, helpers.path, helpers.head, helpers.builder
    share = 1024

    async def tier_at(text: str) -> tuple[list[str], int]:
        return await helpers.tier_at(text, len(text))

    short, short_tokens = await tier_at(head + "    ")
    # The index ranks more than either tier holds; the short file's tier holds more of it.
    assert short_tokens > share
    # (Calls, not `x = Helper1(`: a class the file holds an instance of is shown differently.)
    typed, _ = await tier_at(head + "    Helper1(")
    assert typed == short  # a keystroke within a step: the same tier, byte for byte
    # An action asks without a room: it gets the last completion's, so the same tier leads.
    text = head + "    Helper1("
    _, action = builder.repository.entries(
        FileAt(Place(path.as_uri(), path=path), text, len(text)), share, builder.counts
    )
    assert [entry.text for entry in action] == short
    sizes = [short_tokens]
    lines = ""
    for count in range(1, 100):
        lines += f"    consume(Helper{count % 30}(), {count}, value_{count})\n"
        texts, tokens = await tier_at(head + lines + "    ")
        if helpers.window_start():
            break  # the window moved down: the next test's subject
        assert texts == short[: len(texts)]  # the tail cut, the head as it was
        sizes.append(tokens)
    # Shrinks in a few steps as the file grows, never grows back while the window rests.
    assert all(b <= a for a, b in itertools.pairwise(sizes)), sizes
    assert 1 < len(set(sizes)) <= 10, sizes
    await workspace.aclose()


async def test_a_window_below_the_top_gives_its_unused_share_to_the_tier_until_it_moves(
    tmp_path: Path,
):
    """Below the top of a long file the window is cut with headroom to grow (its prefix fills
    part of its share): the tier takes what the window leaves unused, shrinks in steps as
    typing fills the window, and gets the room back only when the window moves (the prompt
    after the tier changes then anyway)."""
    helpers = await _HelpersRepository.open(tmp_path)
    head = helpers.head
    below = "".join(f"    consume(Helper{n % 30}(), {n}, value_{n})\n" for n in range(400))
    top_of_window = head + below
    sizes: list[tuple[str, int]] = []  # (the window's first line, the tier's tokens)
    tiers: list[list[str]] = []
    typed = ""
    for count in range(160):
        text = top_of_window + typed + "    "
        texts, tokens = await helpers.tier_at(text + "\n" + below, len(text))
        sizes.append((helpers.window_start(), tokens))
        tiers.append(texts)
        typed += f"    consume(Helper{count % 30}(), {count}, value_{count})\n"
    starts = [start for start, _ in sizes]
    assert starts[0]  # below the top
    moves = [i for i in range(1, len(sizes)) if starts[i] != starts[i - 1]]
    assert moves, starts  # the typed lines outgrew the window: it moved at least once
    for first, last in itertools.pairwise([0, *moves, len(sizes)]):
        rest = [tokens for _, tokens in sizes[first:last]]
        # While the window rests, the tier only shrinks, in a few steps, from its tail.
        assert all(b <= a for a, b in itertools.pairwise(rest)), rest
        assert len(set(rest)) <= 4, rest
        assert all(tier == tiers[first][: len(tier)] for tier in tiers[first:last])
    # Filled, the window leaves the tier less room than it had; moved, the room comes back.
    assert sizes[moves[0] - 1][1] < sizes[0][1], sizes
    assert any(sizes[i][1] > sizes[i - 1][1] for i in moves), sizes
    await helpers.workspace.aclose()


def test_the_room_held_back_for_typing_is_a_step_or_two_of_tokens_whatever_the_budget():
    """The lines typed before the tier gives back a step do not grow with the budget: at 4,096
    and 8,192 tokens the tier keeps one or two 128-token steps free, as at 2,048 (1/16 of a
    budget, 512 tokens at 8,192, left that much of the prompt empty); a small budget's steps
    stay 1/16 of it. Typing within a step changes nothing; the room only shrinks while the
    window rests, and is counted afresh once it moves."""
    for budget, step in ((1024, 64), (2048, 128), (4096, 128), (8192, 128)):
        shares = budget // 2
        anchors = WindowAnchors()
        room = tier_room(anchors, budget, shares, used=shares // 3)
        held = shares - room
        assert step < held - shares // 3 <= 2 * step, budget
        # Typed up to a step short of what is held: the same room; a token more: less room.
        assert tier_room(anchors, budget, shares, used=held - step) == room
        assert tier_room(anchors, budget, shares, used=shares // 4) == room  # deleted lines
        fuller = tier_room(anchors, budget, shares, used=held - step + 1)
        assert fuller < room
        anchors.start_chunk += 1  # the window moved: what it uses now counts
        assert tier_room(anchors, budget, shares, used=shares // 3) == room > fuller


async def test_the_top_of_a_long_file_gives_its_unused_prefix_share_to_the_tier(tmp_path: Path):
    """At the top of a long file the window's prefix holds a few lines and cannot grow upward:
    its share and the header's (no header is shown above the first line) go to the tier."""
    helpers = await _HelpersRepository.open(tmp_path)
    below = "".join(f"    consume(Helper{n % 30}(), {n}, value_{n})\n" for n in range(400))
    _, top = await helpers.tier_at(helpers.head + "    \n" + below, len(helpers.head) + 4)
    assert not helpers.window_start() and top > 1024
    await helpers.workspace.aclose()


@dataclass
class _HelpersRepository:
    """A repository whose ``app/lib.py`` declares thirty classes and whose ``app/main.py``
    (``head``) uses each: more than a tier's share ranks for it."""

    workspace: Workspace
    path: Path
    head: str
    builder: ContextBuilder
    budget: int = 2048
    last: CursorContext | None = None

    @classmethod
    async def open(cls, tmp_path: Path) -> _HelpersRepository:
        root = tmp_path / "repo"
        (root / "app").mkdir(parents=True)
        methods = "".join(f"    def step_{n}(self, v):\n        return v + {n}\n" for n in range(8))
        (root / "app" / "lib.py").write_text(
            "".join(f'class Helper{i}:\n    """Helper {i}."""\n{methods}\n' for i in range(30))
        )
        uses = "".join(f"    Helper{i}()\n" for i in range(30))
        workspace = Workspace(tmp_path / "cache")
        workspace.add_folder(root, watch=False)
        await workspace.ready()
        builder = ContextBuilder(RepositoryContext(workspace), words_counter())
        head = "from app.lib import *\n\n\ndef run(a, b):\n" + uses
        return cls(workspace, root / "app" / "main.py", head, builder)

    def window_start(self) -> str:
        """The first line of main.py's window in the last prompt ('' at the file's top)."""
        assert self.last is not None
        first = self.last.prefix.split("\n", 1)[0]
        return "" if self.head.startswith(first + "\n") else first

    async def tier_at(self, text: str, cursor: int) -> tuple[list[str], int]:
        """The tier's texts and tokens for ``text`` as main.py at ``cursor``, counts settled;
        the whole prompt checked against the budget."""
        uri = self.path.as_uri()
        self.workspace.documents.opened(uri, "app/main.py", "python", text)
        request = CompletionRequest(Place(uri, path=self.path), "python", text, cursor)
        self.builder.build(request, self.budget)
        await self.builder.counts.settle()
        context = self.builder.build(request, self.budget)
        assert context is not None
        self.last = context
        prompt = QWEN.render(context)
        self.builder.counts.count(prompt)
        await self.builder.counts.settle()
        assert self.builder.counts.count(prompt) <= self.budget
        texts = [entry.text for entry in context.repository]
        return texts, sum(self.builder.counts.count(t) for t in texts)
