"""The action stages without LSP or a server: thinking split, fix proposals and their checks,
findings parsing and staleness, routing, and the prompts' shared prefix."""

from __future__ import annotations

import pytest

from engine.actions.findings import FindingsRejected, FindingsStore, read_findings
from engine.actions.fix import FixRejected, build_edit, read_proposal
from engine.actions.prompting import build_messages, excerpt_lines
from engine.actions.thinking import ThinkingSplitter
from engine.actions.types import ActionKind, ActionRequest, Finding
from engine.config import RoutingConfig
from engine.definitions.tier import ContextEntry
from engine.endpoints.routing import Router
from engine.place import Place

CODE = """import math


def area(radius):
    return math.pi * radius * radius


def mean(values):
    total = 0
    for value in values:
        total += value
    return total / len(values) - 1
"""


def split(reasoning: list[str], content: list[str]) -> tuple[str, str, bool]:
    splitter = ThinkingSplitter()
    for r, c in zip(reasoning + [""] * len(content), content + [""] * len(reasoning), strict=False):
        splitter.feed(r, c)
    return splitter.split()


@pytest.mark.parametrize(
    ("reasoning", "content", "expected"),
    [
        (["let me ", "think"], ["The ", "answer"], ("let me think", "The answer", True)),
        ([], ["<think>", "hmm", "</think>", "\n\nDone."], ("hmm", "Done.", True)),
        ([], ["hmm, no opening tag", "</think>", "Done."], ("hmm, no opening tag", "Done.", True)),
        ([], ["<think>never closed"], ("never closed", "", False)),
        ([], ["Just an answer."], ("", "Just an answer.", True)),
        ([], [], ("", "", True)),
    ],
)
def test_thinking_is_split_from_the_answer(reasoning, content, expected):
    assert split(reasoning, content) == expected


def test_thinking_phase_follows_the_tags():
    splitter = ThinkingSplitter()
    splitter.feed("", "<think>step one")
    assert splitter.thinking_now
    splitter.feed("", "</think>the answer")
    assert not splitter.thinking_now


def selection_of(text: str, needle: str) -> tuple[int, int]:
    start = text.index(needle)
    return start, start + len(needle)


def test_a_replacement_is_re_indented_and_checked():
    body = "    return total / len(values) - 1\n"
    start, end = selection_of(CODE, body)
    answer = "Here you go:\n```python\nreturn total / len(values)\n```\nThe -1 was wrong."
    edit = build_edit(read_proposal(answer), CODE, start, end, "stats.py", "python")
    assert (edit.start, edit.end) == (start, end)
    assert edit.new_text == "    return total / len(values)\n"


def test_a_diff_with_wrong_line_numbers_applies_by_content():
    answer = """```diff
--- a/stats.py
+++ b/stats.py
@@ -40,3 +40,3 @@
     for value in values:
         total += value
-    return total / len(values) - 1
+    return total / len(values)
```"""
    edit = build_edit(read_proposal(answer), CODE, 0, 0, "stats.py", "python")
    fixed = CODE[: edit.start] + edit.new_text + CODE[edit.end :]
    assert fixed == CODE.replace(" - 1\n", "\n")
    # One small edit, not the whole file rewritten (undo stays one step, cursors stay put).
    assert len(edit.new_text) < 10


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("I think the code is fine.", "no code block"),
        ("```python\nreturn total / len(values)\n", "never closed"),
    ],
)
def test_answers_without_a_usable_block_are_rejected(answer, reason):
    with pytest.raises(FixRejected, match=reason):
        read_proposal(answer)


def test_a_diff_that_does_not_apply_is_rejected():
    answer = """```diff
@@ -1,2 +1,2 @@
-    return something_else()
+    return 1
```"""
    with pytest.raises(FixRejected, match="does not apply"):
        build_edit(read_proposal(answer), CODE, 0, 0, "stats.py", "python")


def test_a_fix_that_breaks_the_syntax_is_rejected():
    body = "    return total / len(values) - 1\n"
    start, end = selection_of(CODE, body)
    answer = "```python\n    return (total / len(values)\n```"
    with pytest.raises(FixRejected, match="does not parse"):
        build_edit(read_proposal(answer), CODE, start, end, "stats.py", "python")


def test_a_fix_that_changes_nothing_is_rejected():
    body = "    return total / len(values) - 1\n"
    start, end = selection_of(CODE, body)
    with pytest.raises(FixRejected, match="same"):
        build_edit(read_proposal(f"```\n{body}```"), CODE, start, end, "stats.py", "python")


def test_findings_are_read_from_json_in_any_wrapping():
    payload = '{"findings": [{"line": 12, "severity": "error", "message": "off by one"}]}'
    for answer in (payload, f"```json\n{payload}\n```", f"Sure. Here:\n{payload}\nThat's all."):
        assert read_findings(answer, 0, 12, 13) == [Finding(11, 11, "error", "off by one")]


def test_findings_outside_the_asked_lines_are_dropped_and_ranges_clamped():
    answer = (
        '{"findings": [{"line": 2, "message": "outside"},'
        ' {"line": 9, "end_line": 40, "severity": "hint", "message": "clamped"}]}'
    )
    assert read_findings(answer, 7, 11, 13) == [Finding(8, 11, "hint", "clamped")]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("no json here", "no JSON"),
        ('{"findings": [{"line": 3, "severity": "fatal", "message": "x"}]}', "schema"),
        ('{"findings": [{"line": 0, "message": "x"}]}', "schema"),
        ('{"result": []}', "schema"),
        ('{"findings": [{"line": 3, "message": "cut', "cut short"),
    ],
)
def test_malformed_findings_are_rejected_with_a_reason(answer, reason):
    with pytest.raises(FindingsRejected, match=reason):
        read_findings(answer, 0, 12, 13)


def test_findings_follow_edits_above_and_go_stale_when_their_lines_change():
    store = FindingsStore()
    store.publish(
        "file:///s.py",
        CODE,
        [Finding(11, 11, "error", "off by one"), Finding(4, 4, "hint", "use math.pow")],
        replace=True,
    )
    moved = "# a new comment line\n" + CODE
    assert store.reconcile("file:///s.py", moved)
    assert [f.start_line for f in store.get("file:///s.py")] == [12, 5]
    edited = moved.replace(" - 1\n", "\n")
    assert store.reconcile("file:///s.py", edited)
    assert [f.message for f in store.get("file:///s.py")] == ["use math.pow"]
    assert not store.reconcile("file:///s.py", edited)


def test_routing_rules_defaults_short_explanations_and_fallback():
    router = Router(RoutingConfig())
    assert router.route("inline").endpoint == "instruct"
    assert router.route(ActionKind.FIX).endpoint == "reasoning"
    assert router.route(ActionKind.FIX).fallback == "instruct"
    short = Router(RoutingConfig(short_explain_lines=5))
    assert short.route(ActionKind.EXPLAIN, 3).endpoint == "instruct"
    assert short.route(ActionKind.EXPLAIN, 30).endpoint == "reasoning"
    assert short.route(ActionKind.EXPLAIN, 0).endpoint == "reasoning"  # whole file
    assert Router(RoutingConfig(fallback=False)).route(ActionKind.ASK).fallback is None


def test_every_action_shares_the_prompt_prefix_up_to_its_instruction():
    entries = (ContextEntry("pkg/util.py", "def helper(x): ..."),)
    start, end = selection_of(CODE, "    return total / len(values) - 1\n")
    users = []
    for kind in ActionKind:
        request = ActionRequest(
            kind,
            Place("file:///w/stats.py", relative_path="stats.py"),
            "python",
            CODE,
            start,
            end,
            "why?",
        )
        system, user = build_messages(request, "w", entries, 4000)
        users.append(user.content)
        assert system.role == "system" and user.role == "user"
        assert user.content.index("pkg/util.py") < user.content.index("Current file stats.py")
        assert "   12|     return total / len(values) - 1" in user.content
    shared = min(users)
    common = len(shared)
    for other in users:
        common = min(
            common,
            next(
                (i for i, (a, b) in enumerate(zip(shared, other, strict=False)) if a != b), common
            ),
        )
    # Everything up to the end of the current file is the same text for every action.
    assert common >= users[0].index("```\n", users[0].index("Current file")) + 4


def test_the_excerpt_keeps_the_selection_and_grows_around_it():
    lines = [f"line {n}" for n in range(1000)]
    low, high = excerpt_lines(lines, 500, 510, 400)
    assert low <= 500 and high >= 510
    assert 10 < high - low < 40
    assert excerpt_lines(lines[:5], 1, 2, 10_000) == (0, 4)
