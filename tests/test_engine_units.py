"""The engine's stages on their own: no LSP, no server."""

from __future__ import annotations

import asyncio

import pytest

from engine.completion.context import build_cursor_context
from engine.completion.context.builder import PREFIX_SHARE
from engine.completion.generation import LatestWins
from engine.completion.postprocessing import (
    LineMode,
    StreamCutter,
    block_indent,
    choose_line_mode,
    finalize,
)
from engine.completion.templating.selection import choose_template
from engine.completion.templating.templates import load_templates, template_named
from engine.completion.types import CompletionRequest
from engine.completion.typing_through import TypingThroughMemory
from engine.config import SettingsError, build_settings, environment_layer, merge_layers
from engine.place import Place


def context_at(text: str, marker: str = "█", **kwargs):
    cursor = text.index(marker)
    request = CompletionRequest(
        Place("file:///x.py", **kwargs), "python", text.replace(marker, ""), cursor
    )
    return build_cursor_context(request, token_budget=2048)


# --- configuration -----------------------------------------------------------------------------


def test_layers_override_in_documented_order():
    file_layer = {"completion": {"debounce_ms": 10, "max_tokens": 50}, "instruct": {"model": "a"}}
    env_layer = environment_layer({"IQUEST_DEBOUNCE_MS": "20", "IQUEST_INSTRUCT_MODEL": "b"})
    editor = {"completion": {"debounce_ms": 30}}
    settings = build_settings(merge_layers(file_layer, env_layer, editor))
    assert settings.completion.debounce_ms == 30  # editor beats environment
    assert settings.instruct.model == "b"  # environment beats file
    assert settings.completion.max_tokens == 50  # file beats defaults
    assert settings.completion.prompt_token_budget == 2048  # default


def test_unknown_or_ill_typed_settings_are_refused_with_the_key_named():
    with pytest.raises(SettingsError, match=r"completion\.debounce_msec"):
        build_settings({"completion": {"debounce_msec": 5}})
    with pytest.raises(SettingsError, match=r"completion\.debounce_ms"):
        build_settings({"completion": {"debounce_ms": "soon"}})


# --- templates ---------------------------------------------------------------------------------


def test_every_family_has_a_template_and_renders_prefix_and_suffix_in_its_order():
    names = {t.name for t in load_templates()}
    assert {
        "qwen",
        "starcoder2",
        "deepseek-coder",
        "codellama",
        "codestral",
        "prefix-only",
    } <= names
    context = context_at("def f(x):\n    return █\n\nprint(f(2))\n")
    qwen = template_named("qwen").render(context)
    # The cursor's line goes after the middle marker: typing along it only appends.
    assert qwen == (
        "<|fim_prefix|>def f(x):\n<|fim_suffix|>\n\nprint(f(2))\n<|fim_middle|>    return "
    )
    codestral = template_named("codestral").render(context)
    assert codestral.index("[SUFFIX]") < codestral.index("[PREFIX]")  # suffix first
    assert codestral.endswith("[PREFIX]def f(x):\n    return ")
    assert template_named("prefix-only").render(context) == "def f(x):\n    return "


def test_repo_headers_come_first_and_braces_in_code_survive():
    context = context_at("x = {'a': 1}█", relative_path="pkg/mod.py", workspace_name="proj")
    prompt = template_named("qwen").render(context)
    assert prompt == (
        "<|repo_name|>proj\n<|file_sep|>pkg/mod.py\n<|fim_prefix|><|fim_suffix|><|fim_middle|>"
        "x = {'a': 1}"
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("IQuestLab/IQuest-Coder-V1-40B-Instruct", "qwen"),
        ("Qwen/Qwen2.5-Coder-7B", "qwen"),
        ("bigcode/starcoder2-15b", "starcoder2"),
        ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder"),
        ("codellama/CodeLlama-13b-hf", "codellama"),
        ("mistralai/Codestral-22B-v0.1", "codestral"),
    ],
)
async def test_template_detected_from_the_model_name(model: str, expected: str):
    async def single_tokens(text: str) -> int:
        return 1

    choice = await choose_template(model, "auto", single_tokens)
    assert choice.template.name == expected and choice.warning is None


async def test_split_fim_markers_fall_back_to_prefix_only_with_a_warning():
    async def characters(text: str) -> int:
        return len(text)

    choice = await choose_template("IQuest-Coder-V1-7B-Instruct", "auto", characters)
    assert choice.template.name == "prefix-only"
    assert choice.warning is not None and "<|fim_prefix|>" in choice.warning


async def test_unknown_model_is_probed_for_fim_tokens():
    async def starcoder_vocab(text: str) -> int:
        return 1 if text in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>") else len(text)

    choice = await choose_template("my-finetune", "auto", starcoder_vocab)
    assert choice.template.name == "starcoder2"
    choice = await choose_template("my-finetune", "auto", None)
    assert choice.template.name == "prefix-only"


# --- context -----------------------------------------------------------------------------------


def test_context_window_cuts_at_line_starts_and_keeps_the_cursor_line():
    lines = [f"line_{i} = {i}" for i in range(2000)]
    text = "\n".join(lines) + "\nlast = █"
    cursor = text.index("█")
    request = CompletionRequest(Place("file:///x.py"), "python", text.replace("█", ""), cursor)
    context = build_cursor_context(request, token_budget=1000)
    assert context.line_prefix == "last = "
    # Whole lines only, ending right before the cursor's line, within the prefix's budget.
    assert context.prefix.startswith("line_") and context.prefix.endswith("line_1999 = 1999\n")
    assert 0 < len(context.prefix) <= 1000 * PREFIX_SHARE * 3


# --- post-processing ---------------------------------------------------------------------------


def test_line_mode_follows_the_cursor():
    assert choose_line_mode(context_at("x = foo(█)\n"), "auto") is LineMode.SINGLE
    assert choose_line_mode(context_at("def f():\n    █"), "auto") is LineMode.MULTI
    assert choose_line_mode(context_at("if x:█"), "auto") is LineMode.MULTI
    assert choose_line_mode(context_at("total = a +█"), "auto") is LineMode.SINGLE
    assert choose_line_mode(context_at("total = a +█"), "always") is LineMode.MULTI


def test_stream_cutter_stops_single_line_at_the_newline_and_at_stop_strings():
    cutter = StreamCutter(("<|file_sep|>",), LineMode.SINGLE)
    for piece in ("retu", "rn x", " + 1\n    ", "more"):
        cutter.feed(piece)
    assert cutter.done and cutter.text == "return x + 1"
    cutter = StreamCutter(("<|file_sep|>",), LineMode.MULTI)
    cutter.feed("a\nb<|file")
    assert not cutter.done
    cutter.feed("_sep|>c")
    assert cutter.done and cutter.text == "a\nb"


def test_finalize_drops_text_already_after_the_cursor():
    context = context_at("print(█)\n")
    assert finalize("'hi')", context, ()) == "'hi'"
    context = context_at("def f():\n    █\n    return y\n")
    assert finalize("y = 1\n    return y\n", context, ()) == "y = 1"


def test_finalize_never_returns_empty_or_whitespace():
    context = context_at("x = █")
    assert finalize("   \n  ", context, ()) is None
    assert finalize("<|endoftext|>", context, ("<|endoftext|>",)) is None


# --- typing through, single flight ----------------------------------------------------------------


def test_typing_through_serves_the_rest_only_while_the_typing_matches():
    memory = TypingThroughMemory()
    memory.remember("u", "x = ", "", "compute(1)")
    assert memory.recall("u", "x = comp", "") == "ute(1)"
    assert memory.recall("u", "x = cop", "") is None
    assert memory.recall("u", "x = comp", ")") is None  # the suffix changed
    assert memory.recall("u", "x = compute(1)", "") is None  # nothing left
    assert memory.recall("other", "x = comp", "") is None


async def test_latest_wins_cancels_the_older_call_and_returns_none_to_it():
    latest = LatestWins()
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "slow"

    async def fast() -> str:
        return "fast"

    older = asyncio.ensure_future(latest.run("doc", slow))
    await started.wait()
    assert await latest.run("doc", fast) == "fast"
    assert await older is None


async def test_latest_wins_propagates_the_callers_own_cancellation():
    latest = LatestWins(grace_s=0.05)
    call = asyncio.ensure_future(latest.run("doc", lambda: asyncio.sleep(10)))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The work outlives its caller by the grace period (a newer call may join it), no longer.
    assert latest.in_flight() == 1
    await asyncio.sleep(0.1)
    assert latest.in_flight() == 0


async def test_a_call_joining_within_the_grace_period_keeps_the_work_and_gets_its_answer():
    latest = LatestWins(grace_s=0.05)
    release = asyncio.Event()

    async def streaming() -> str:
        await release.wait()
        return "answer"

    first = asyncio.ensure_future(latest.run("doc", streaming))
    await asyncio.sleep(0.01)
    first.cancel()  # the editor cancels the older request before asking again
    with pytest.raises(asyncio.CancelledError):
        await first
    joined = asyncio.ensure_future(latest.join("doc"))
    await asyncio.sleep(0.1)  # past the grace period: the joiner keeps the work alive
    assert latest.running("doc")
    release.set()
    assert await joined == "answer"
    assert latest.in_flight() == 0 and not latest.running("doc")
    assert await latest.join("doc") is None  # nothing running: nothing to join


def test_multi_line_text_stops_where_the_cursors_block_ends():
    context = context_at('def f(n):\n    """Doc."""\n    █')
    cutter = StreamCutter((), LineMode.MULTI, block_indent=block_indent(context))
    for piece in ("if n < 2:\n        return False\n    return True\n", "\ndef g():\n", "    pass"):
        cutter.feed(piece)
    assert cutter.done
    assert cutter.text == "if n < 2:\n        return False\n    return True\n"
    top_level = context_at("import os\n█")
    assert block_indent(top_level) is None
    opener = context_at("    if x:█")
    assert block_indent(opener) == 5  # the body must be deeper than the opener's line


def test_repeated_indentation_on_an_indented_blank_line_is_dropped():
    context = context_at("def f():\n    █")
    assert finalize("    return 1\n", context, ()) == "return 1"
    assert finalize("return 1", context, ()) == "return 1"
    assert finalize("\n    if x:\n        y()", context, ()) == "if x:\n        y()"
    assert finalize("  x = 1", context_at("y = █"), ()) == "  x = 1"  # not a blank line


def test_handled_notifications_leave_no_futures_behind():
    """pygls 2.1.1 kept one future per notification for the whole session (a leak per
    keystroke); the protocol forgets each once it is done."""
    import asyncio

    from lsprotocol import types as lsp_types

    from lsp.server import build_server

    async def run() -> int:
        server = build_server()
        protocol = server.protocol

        class Sink:
            def write(self, data: bytes) -> None:
                pass

            def close(self) -> None:
                pass

        protocol.set_writer(Sink())
        protocol.handle_message(
            protocol.structure_message(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": lsp_types.INITIALIZE,
                    "params": {"capabilities": {}, "processId": None},
                }
            )
        )
        await asyncio.sleep(0.05)
        uri = "file:///tmp/leak.py"
        protocol.handle_message(
            protocol.structure_message(
                {
                    "jsonrpc": "2.0",
                    "method": lsp_types.TEXT_DOCUMENT_DID_OPEN,
                    "params": {
                        "textDocument": {
                            "uri": uri,
                            "languageId": "python",
                            "version": 1,
                            "text": "",
                        }
                    },
                }
            )
        )
        for version in range(2, 202):
            change = {
                "jsonrpc": "2.0",
                "method": lsp_types.TEXT_DOCUMENT_DID_CHANGE,
                "params": {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [
                        {
                            "range": {
                                "start": {"line": 0, "character": 0},
                                "end": {"line": 0, "character": 0},
                            },
                            "text": "x",
                        }
                    ],
                },
            }
            protocol.handle_message(protocol.structure_message(change))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert server.workspace.get_text_document(uri).source == "x" * 200
        return len(protocol._request_futures)

    assert asyncio.run(run()) <= 2


def test_token_counts_stay_within_their_text_budget():
    from engine.definitions.tokens import TokenCounts

    counts = TokenCounts(None, local=len, max_chars=1_000)
    for n in range(500):
        assert counts.count(f"chunk {n:04d} " * 10) == 110
    held = sum(len(text) for text in counts._counts)
    assert held <= 1_000 and held == counts._chars
    assert len(counts._counts) == 1_000 // 110


def test_recent_samples_keep_the_newest_in_order() -> None:
    from engine.metrics import RecentSamples

    samples = RecentSamples(size=4)
    assert samples.newest(3) == [] and list(samples) == []
    for value in range(1, 4):
        samples.append(float(value))
    assert list(samples) == [1.0, 2.0, 3.0]
    assert samples.newest(2) == [3.0, 2.0]
    for value in range(4, 11):
        samples.append(float(value))
    assert len(samples) == 4
    assert list(samples) == [7.0, 8.0, 9.0, 10.0]
    assert samples.newest(3) == [10.0, 9.0, 8.0]
    assert samples.newest(99) == [10.0, 9.0, 8.0, 7.0]
    assert samples.newest(0) == []
