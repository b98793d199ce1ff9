"""A backend that is down, hangs, fails or sends garbage: empty answers, one message per outage,
and the session goes on. These faults come from a small fake server (a real vLLM won't produce
them on demand); refused connections need no server at all."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types

from engine.local.vllm_process import free_port
from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
    stats,
)
from tests.support.polling import eventually

SOURCE = "def answer():\n    return "


def options(base_url: str, **completion: object) -> dict[str, object]:
    return {
        "instruct": {"base_url": base_url, "connect_timeout_s": 1.0},
        "completion": {"debounce_ms": 0, "timeout_s": 1.5, **completion},
    }


def error_messages(client) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


async def test_refused_connection_gives_empty_answers_and_one_message(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    uri = (tmp_path / "a.py").as_uri()
    async with lsp_session(options(url), tmp_path) as client:
        open_document(client, uri, SOURCE)
        started = time.perf_counter()
        results = [await inline_completion(client, uri, end_position(SOURCE)) for _ in range(4)]
        elapsed = time.perf_counter() - started
        await eventually(lambda: error_messages(client), 5, "the outage message")
        messages = error_messages(client)
        figures = await stats(client)
    assert all(items_of(r) == [] for r in results)
    assert elapsed < 3.0
    assert len(messages) == 1
    assert url in messages[0] and "unreachable" in messages[0]
    assert figures["backend_down"] is True  # the editor plugins show "down" from this


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("hang", "timed out"),
        ("http500", "HTTP 500"),
        ("malformed", "malformed"),
        ("cut", "malformed"),
        ("stray_choice", "malformed"),
    ],
)
async def test_backend_faults_give_an_empty_answer_and_a_clear_message(
    tmp_path: Path, mode: str, reason: str
):
    uri = (tmp_path / "a.py").as_uri()
    async with fake_server() as fake:
        fake.mode = mode
        async with lsp_session(options(fake.base_url), tmp_path) as client:
            open_document(client, uri, SOURCE)
            started = time.perf_counter()
            result = await inline_completion(client, uri, end_position(SOURCE))
            elapsed = time.perf_counter() - started
            await eventually(lambda: error_messages(client), 5, "the outage message")
            messages = error_messages(client)

            # The same server recovering: suggestions come back and the user is told.
            fake.mode = "ok"
            await asyncio.sleep(2.1)  # past the retry pause after a failure
            recovered = items_of(await inline_completion(client, uri, end_position(SOURCE)))
            info = await stats(client)
    assert items_of(result) == []
    assert elapsed < 4.0
    assert len(messages) == 1 and reason in messages[0] and fake.base_url in messages[0]
    assert [i.insert_text for i in recovered] == ["42"] or [i.insert_text for i in recovered] == [
        "value = 42"
    ]
    assert info["failures"] == 1


async def test_incremental_edits_with_emoji_and_cjk_keep_the_document_exact(tmp_path: Path):
    uri = (tmp_path / "unicode.py").as_uri()
    text = 'greeting = "héllo 😀 世界"\nname = "🎉"\n'
    # (range in UTF-16 units, new text) applied in order, with the expected text after each.
    # (range in UTF-16 units, new text): astral characters count 2 units, CJK 1.
    edits = [
        ((0, 20, 0, 20), "👋"),  # right after 😀
        ((0, 24, 0, 25), "世间"),  # replace 界, after two astral characters
        ((1, 8, 1, 10), "🎂🎂"),  # replace 🎉
        ((2, 0, 2, 0), "x = 1"),  # on the empty last line
    ]
    expected = text
    for (sl, sc, el, ec), new in edits:
        expected = _splice_utf16(expected, sl, sc, el, ec, new)
    assert expected == 'greeting = "héllo 😀👋 世世间"\nname = "🎂🎂"\nx = 1'
    async with fake_server() as fake:
        async with lsp_session(options(fake.base_url), tmp_path) as client:
            open_document(client, uri, text)
            for version, ((sl, sc, el, ec), new) in enumerate(edits, start=2):
                client.text_document_did_change(
                    types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(
                            uri=uri, version=version
                        ),
                        content_changes=[
                            types.TextDocumentContentChangePartial(
                                range=types.Range(
                                    start=types.Position(line=sl, character=sc),
                                    end=types.Position(line=el, character=ec),
                                ),
                                text=new,
                            )
                        ],
                    )
                )
            # Cursor after "🎂🎂" on line 1: 8 + 4 UTF-16 units.
            await inline_completion(client, uri, types.Position(line=1, character=12))
    prompt = fake.prompts[-1]
    prefix = prompt.split("<|fim_prefix|>")[1].split("<|fim_suffix|>")[0]
    suffix = prompt.split("<|fim_suffix|>")[1].split("<|fim_middle|>")[0]
    line_prefix = prompt.split("<|fim_middle|>")[1]
    assert prefix + line_prefix + suffix == expected
    assert line_prefix == 'name = "🎂🎂'
    assert prefix == 'greeting = "héllo 😀👋 世世间"\n'


def _splice_utf16(text: str, sl: int, sc: int, el: int, ec: int, new: str) -> str:
    """An independent reference: edit the UTF-16 encoding directly."""
    lines = text.split("\n")
    units = [line.encode("utf-16-le") for line in lines]
    start = sum(len(u) + 2 for u in units[:sl]) + 2 * sc
    end = sum(len(u) + 2 for u in units[:el]) + 2 * ec
    encoded = "\n".join(lines).encode("utf-16-le")
    return (encoded[:start] + new.encode("utf-16-le") + encoded[end:]).decode("utf-16-le")


async def test_inline_completions_fall_back_to_the_other_endpoint_and_say_so_once(
    tmp_path: Path,
):
    uri = (tmp_path / "a.py").as_uri()
    down = f"http://127.0.0.1:{free_port()}/v1"
    async with fake_server() as fake:
        settings = {
            "instruct": {"base_url": down, "connect_timeout_s": 1.0},
            "reasoning": {"base_url": fake.base_url},
            "completion": {"debounce_ms": 0, "timeout_s": 1.5},
        }
        async with lsp_session(settings, tmp_path) as client:
            open_document(client, uri, SOURCE)
            results = [await inline_completion(client, uri, end_position(SOURCE)) for _ in range(3)]
            await eventually(lambda: error_messages(client), 5, "the outage message")
    assert all(items_of(r)[0].insert_text == fake.reply for r in results)
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert len([w for w in warnings if "inline completions use the reasoning model" in w]) == 1
    assert len(error_messages(client)) == 1  # the outage itself, once


async def test_finished_streams_leave_their_connection_for_the_next_request():
    """Reading a stream to its end (past [DONE]) returns the connection to the pool: a new
    TCP connection per keystroke cost two connects' worth of system calls each."""
    from engine.backends.openai_compatible import CompletionBackend, GenerationParams
    from engine.config import EndpointConfig

    async with fake_server() as fake:
        backend = CompletionBackend(EndpointConfig(base_url=fake.base_url), "fake", 5.0)
        params = GenerationParams(prompt="x = ", max_tokens=8, temperature=0.0, top_p=1.0)
        try:
            for _ in range(3):
                texts = [chunk.text async for chunk in backend.stream(params)]
                assert "".join(texts) == fake.reply
        finally:
            await backend.aclose()
    assert len(fake.peers) == 3
    assert len(set(fake.peers)) == 1, fake.peers


async def test_a_single_line_request_asks_for_fewer_tokens(tmp_path: Path):
    """A runaway line (a long string, a minified blob) cannot hold a sequence slot for the
    whole max_tokens: single-line requests ask for max_tokens_single_line."""
    uri = (tmp_path / "a.py").as_uri()
    async with fake_server() as fake:
        settings = options(fake.base_url, max_tokens=128, max_tokens_single_line=20)
        async with lsp_session(settings, tmp_path) as client:
            single = "total = price * "  # code on the line: a single-line suggestion
            open_document(client, uri, single)
            await inline_completion(client, uri, end_position(single))
            block = "def answer():\n"  # a block opener: several lines may come
            uri2 = (tmp_path / "b.py").as_uri()
            open_document(client, uri2, block)
            await inline_completion(client, uri2, end_position(block))
    assert [r["max_tokens"] for r in fake.completion_requests] == [20, 128]
