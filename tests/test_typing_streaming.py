"""Typing through a suggestion not yet shown (issue 28): a keystroke that types what the request
still streaming has produced waits for that request instead of cancelling it and asking again.
The stream is scripted (a fake server trickling its reply): random weights never produce what
a test types, and the real model's reuse rate is measured in bench/typing_reuse.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    change,
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
    stats,
)
from tests.support.polling import eventually

SOURCE = "def total(items):\n    "
REPLY = "result = compute(items)\n"


@pytest.mark.parametrize(
    ("typed", "enabled", "requests", "continued"),
    [
        ("re", True, 1, 1),  # what the stream produced: one request serves both keystrokes
        ("xy", True, 2, 0),  # something else: the stream is cancelled and a new one sent
        ("re", False, 2, 0),  # continue_streaming off: every keystroke asks again
    ],
)
async def test_a_keystroke_continuing_the_stream_is_answered_from_it(
    tmp_path: Path, typed: str, enabled: bool, requests: int, continued: int
):
    uri = (tmp_path / "sums.py").as_uri()
    async with fake_server() as fake:
        fake.mode, fake.reply = "trickle", REPLY
        options = {
            "instruct": {"base_url": fake.base_url},
            "completion": {
                "debounce_ms": 0,
                "timeout_s": 5,
                "multiline": "never",
                "continue_streaming": enabled,
            },
        }
        async with lsp_session(options, tmp_path) as client:
            open_document(client, uri, SOURCE)
            end = end_position(SOURCE)
            first = asyncio.ensure_future(inline_completion(client, uri, end, invoked=False))
            await eventually(lambda: fake.completion_requests, 5, "the first request")
            await asyncio.sleep(0.25)  # a few chunks in: "result = c"
            change(client, uri, 2, end, end, typed)
            second = items_of(
                await inline_completion(client, uri, end_position(SOURCE + typed), invoked=False)
            )
            first_items = items_of(await first)
            figures = await stats(client)
    assert len(fake.completion_requests) == requests
    assert figures["continued_streaming"] == continued
    if continued:
        assert [item.insert_text for item in second] == ["sult = compute(items)"]
        # The first keystroke's own answer is the whole suggestion (the editor may still
        # want it if it did not cancel).
        assert [item.insert_text for item in first_items] == ["result = compute(items)"]


async def test_a_keystroke_waiting_on_a_stream_that_a_newer_one_cancels_asks_nothing_more(
    tmp_path: Path,
):
    """Typing "re" joins the stream; typing "zz" after it does not continue it and cancels it:
    the keystroke left waiting must not ask afresh for its stale position (that request would
    cancel the newest keystroke's)."""
    uri = (tmp_path / "sums.py").as_uri()
    async with fake_server() as fake:
        fake.mode, fake.reply = "trickle", REPLY
        options = {
            "instruct": {"base_url": fake.base_url},
            "completion": {"debounce_ms": 0, "timeout_s": 5, "multiline": "never"},
        }
        async with lsp_session(options, tmp_path) as client:
            open_document(client, uri, SOURCE)
            end = end_position(SOURCE)
            first = asyncio.ensure_future(inline_completion(client, uri, end, invoked=False))
            await eventually(lambda: fake.completion_requests, 5, "the first request")
            await asyncio.sleep(0.25)
            change(client, uri, 2, end, end, "re")
            joined = asyncio.ensure_future(
                inline_completion(client, uri, end_position(SOURCE + "re"), invoked=False)
            )
            await asyncio.sleep(0.05)
            after = end_position(SOURCE + "re")
            change(client, uri, 3, after, after, "zz")
            newest = items_of(
                await inline_completion(client, uri, end_position(SOURCE + "rezz"), invoked=False)
            )
            stale = items_of(await joined)
            await first
            figures = await stats(client)
    assert len(fake.completion_requests) == 2  # the first, and the newest keystroke's
    assert stale == [] and figures["continued_streaming"] == 0
    assert [item.insert_text for item in newest] == [REPLY.rstrip("\n")]
