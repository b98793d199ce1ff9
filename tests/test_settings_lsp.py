"""Settings from the editor: initializationOptions, then workspace/configuration on top, re-read
on didChangeConfiguration. Fake servers show which endpoint the prompts reach."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
)

SOURCE = "def answer():\n    return "


async def test_editor_settings_override_initialization_options_and_follow_changes(
    tmp_path: Path,
):
    uri = (tmp_path / "a.py").as_uri()
    async with fake_server() as first, fake_server() as second:
        first.reply, second.reply = "1", "2"
        init_options = {"instruct": {"base_url": first.base_url}, "completion": {"debounce_ms": 0}}
        async with lsp_session(init_options, tmp_path) as client:
            # Answer workspace/configuration like an editor whose user set another endpoint.
            client.set_configuration({"instruct": {"base_url": second.base_url}}, section="iquest")
            client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings=None)
            )
            await asyncio.sleep(0.5)
            open_document(client, uri, SOURCE)
            via_editor = items_of(await inline_completion(client, uri, end_position(SOURCE)))

            # A broken value is refused with a message naming it; the last good settings stay.
            client.set_configuration({"completion": {"debounce_ms": "soon"}}, section="iquest")
            client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings=None)
            )
            await asyncio.sleep(0.5)
            errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
            still = items_of(await inline_completion(client, uri, end_position(SOURCE)))

    assert [i.insert_text for i in via_editor] == ["2"]
    assert len(second.prompts) >= 1 and first.prompts == []
    assert any("completion.debounce_ms" in e for e in errors)
    assert [i.insert_text for i in still] == ["2"]
