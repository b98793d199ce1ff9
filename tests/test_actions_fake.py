"""Code actions against a fake server's well-formed and malformed answers: each malformed one
gives a clear message and changes no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.support.actions_client import (
    act_like_an_editor,
    action_progress,
    execute,
    field,
    fix_code_action_structuring,
    line_range,
)
from tests.support.fake_server import fake_server
from tests.support.lsp_session import lsp_session, open_document
from tests.support.polling import eventually

CODE = """def mean(values):
    total = 0
    for value in values:
        total += value
    return total / len(values) - 1
"""
BUGGY_LINE = 4


def options(base_url: str, **actions: object) -> dict[str, object]:
    return {
        "instruct": {"base_url": base_url},
        "reasoning": {"base_url": base_url},
        "completion": {"debounce_ms": 0},
        "actions": {"timeout_s": 5, **actions},
    }


def messages_of(client, kind: types.MessageType) -> list[str]:
    return [m.message for m in client.messages if m.type == kind]


async def test_code_actions_are_offered_on_a_selection_and_at_a_diagnostic(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fix_code_action_structuring(client)
        open_document(client, uri, CODE)
        selected = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(
                    start=types.Position(line=1, character=0),
                    end=types.Position(line=4, character=0),
                ),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        diagnostic = types.Diagnostic(
            range=types.Range(
                start=types.Position(line=BUGGY_LINE, character=4),
                end=types.Position(line=BUGGY_LINE, character=10),
            ),
            message="result is off by one",
            source="iquest",
        )
        at_diagnostic = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=diagnostic.range,
                context=types.CodeActionContext(diagnostics=[diagnostic]),
            )
        )
    titles = [a.title for a in selected or []]
    assert titles[:3] == [
        "iquest: Explain selection",
        "iquest: Fix selection",
        "iquest: Find bugs in selection",
    ]
    assert "iquest: Find bugs in this file" in titles
    quick_fix = (at_diagnostic or [])[0]
    assert isinstance(quick_fix, types.CodeAction)
    assert quick_fix.kind == types.CodeActionKind.QuickFix and quick_fix.is_preferred
    assert quick_fix.command is not None and quick_fix.command.command == "iquest.fix"
    argument = quick_fix.command.arguments[0]
    assert argument["problem"] == "result is off by one"
    assert argument["range"] == line_range(BUGGY_LINE, BUGGY_LINE + 1)


async def test_explain_separates_thinking_and_reports_progress(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_reasoning = "The user wants an explanation. " * 10
        fake.chat_reply = "## Mean\nIt averages the values, **minus one**."
        record = act_like_an_editor(client, {uri: CODE})
        open_document(client, uri, CODE)
        result = await execute(client, "iquest.explain", {"uri": uri, "range": line_range(0, 5)})
        await eventually(
            lambda: record["explanations"] and client.shown_documents, 5, "the explanation shown"
        )
    markdown = field(result, "markdown")
    assert markdown == fake.chat_reply
    assert "user wants" not in markdown  # thinking stays out unless asked for
    [explanation] = record["explanations"]
    assert field(explanation, "markdown") == fake.chat_reply
    # Plain clients get a read-only markdown document.
    [shown] = client.shown_documents
    shown_path = Path(shown.uri.removeprefix("file://"))
    assert shown_path.read_text() == fake.chat_reply  # noqa: ASYNC240
    assert not shown_path.stat().st_mode & 0o222  # noqa: ASYNC240
    [reports] = action_progress(client).values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "done"
    # The request carried the action priority and the shared system prompt.
    body = fake.chat_requests[-1]
    assert body["priority"] == 10
    assert body["messages"][0]["role"] == "system"


async def test_thinking_is_shown_when_the_setting_asks(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    settings = options("", show_thinking=True)
    async with fake_server() as fake:
        settings["reasoning"] = settings["instruct"] = {"base_url": fake.base_url}
        async with lsp_session(settings, tmp_path) as client:
            fake.chat_reply = "<think>weighing the loop</think>It sums and divides."
            open_document(client, uri, CODE)
            result = await execute(client, "iquest.explain", {"uri": uri})
    markdown = field(result, "markdown")
    assert markdown.endswith("It sums and divides.")
    assert "weighing the loop" in markdown and "<think>" not in markdown


async def test_a_fix_becomes_an_applied_edit(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_reply = "```python\nreturn total / len(values)\n```"
        texts = {uri: CODE}
        record = act_like_an_editor(client, texts)
        open_document(client, uri, CODE)
        result = await execute(
            client,
            "iquest.fix",
            {"uri": uri, "range": line_range(BUGGY_LINE, BUGGY_LINE + 1), "problem": "off by one"},
        )
    assert field(result, "applied") is True
    assert texts[uri] == CODE.replace(" - 1\n", "\n")
    assert len(record["edits"]) == 1
    assert "reported problem: off by one" in fake.chat_requests[-1]["messages"][-1]["content"]


async def test_a_bad_fix_is_retried_once_with_the_error_then_applied(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_replies = [
            "```python\n    return (total / len(values)\n```",
            "```python\n    return total / len(values)\n```",
        ]
        texts = {uri: CODE}
        act_like_an_editor(client, texts)
        open_document(client, uri, CODE)
        result = await execute(
            client, "iquest.fix", {"uri": uri, "range": line_range(BUGGY_LINE, BUGGY_LINE + 1)}
        )
    assert field(result, "applied") is True and field(result, "attempts") == 2
    retry = fake.chat_requests[-1]["messages"]
    assert [m["role"] for m in retry[-2:]] == ["assistant", "user"]
    assert "does not parse" in retry[-1]["content"]
    assert texts[uri] == CODE.replace(" - 1\n", "\n")


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        (["I cannot help with that."] * 2, "no code block"),
        (["```diff\n@@ -1 +1 @@\n-nothing like this\n+x\n```"] * 2, "does not apply"),
        (["```python\n    return total / len(values) - 1\n```"] * 2, "same as the current code"),
        (["```python\n    return (total\n```"] * 2, "does not parse"),
    ],
)
async def test_a_malformed_fix_changes_nothing_and_says_why(
    tmp_path: Path, replies: list[str], reason: str
):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_replies = list(replies)
        record = act_like_an_editor(client, {uri: CODE})
        open_document(client, uri, CODE)
        result = await execute(
            client, "iquest.fix", {"uri": uri, "range": line_range(BUGGY_LINE, BUGGY_LINE + 1)}
        )
        await eventually(lambda: messages_of(client, types.MessageType.Warning), 5)
    assert field(result, "applied") is False
    assert reason in field(result, "reason")
    assert record["edits"] == []
    assert any(reason in m for m in messages_of(client, types.MessageType.Warning))


@pytest.mark.parametrize(
    ("reply", "reasoning", "reason"),
    [
        ("", "", "empty answer"),
        ("<think>still thinking when the answer ended", "", "inside its reasoning"),
        ("", "only thoughts, no answer", "empty answer"),
    ],
)
async def test_missing_answers_fail_clearly(tmp_path: Path, reply, reasoning, reason):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_reply, fake.chat_reasoning = reply, reasoning
        record = act_like_an_editor(client, {uri: CODE})
        open_document(client, uri, CODE)
        with pytest.raises(JsonRpcException, match=reason):
            await execute(client, "iquest.fix", {"uri": uri, "range": line_range(0, 2)})
        await eventually(lambda: messages_of(client, types.MessageType.Error), 5)
    assert record["edits"] == []
    assert any(reason in m for m in messages_of(client, types.MessageType.Error))


async def test_findings_become_diagnostics_and_go_stale_when_their_code_changes(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    findings = {
        "findings": [
            {"line": 5, "severity": "error", "message": "subtracting 1 skews the mean"},
            {"line": 1, "severity": "warning", "message": "empty input divides by zero"},
        ]
    }
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_reply = json.dumps(findings)
        open_document(client, uri, CODE)
        result = await execute(client, "iquest.findBugs", {"uri": uri})
        await eventually(lambda: len(client.diagnostics.get(uri, [])) == 2, 5, "two findings")
        published = list(client.diagnostics[uri])
        schema = fake.chat_requests[-1]["response_format"]["json_schema"]["schema"]

        # Edit the line of the first finding: it goes; the other stays, moved by nothing.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=BUGGY_LINE, character=29),
                            end=types.Position(line=BUGGY_LINE, character=33),
                        ),
                        text="",
                    )
                ],
            )
        )
        await eventually(lambda: len(client.diagnostics[uri]) == 1, 5, "one finding left")
        after_edit = list(client.diagnostics[uri])
    assert field(result, "findings") == 2
    assert sorted(d.message for d in published) == sorted(
        f["message"] for f in findings["findings"]
    )
    first = next(d for d in published if d.range.start.line == BUGGY_LINE)
    assert first.source == "iquest" and first.severity == types.DiagnosticSeverity.Error
    assert first.range.end == types.Position(line=BUGGY_LINE, character=len(CODE.splitlines()[4]))
    assert "findings" in schema["properties"]
    assert [d.message for d in after_edit] == ["empty input divides by zero"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I found nothing worth reporting.", "no JSON"),
        ('{"findings": [{"line": 2, "severity": "catastrophic", "message": "x"}]}', "schema"),
        ('{"findings": [{"line": 2, "message": "cut', "cut short"),
        ("", "empty answer"),
    ],
)
async def test_malformed_findings_publish_nothing_and_say_why(tmp_path: Path, reply, reason):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.chat_reply = reply
        open_document(client, uri, CODE)
        with pytest.raises(JsonRpcException, match=reason):
            await execute(client, "iquest.findBugs", {"uri": uri})
        await eventually(lambda: messages_of(client, types.MessageType.Error), 5)
    assert uri not in client.diagnostics
    assert any(reason in m for m in messages_of(client, types.MessageType.Error))


async def test_refused_fields_are_dropped_and_the_action_goes_on(tmp_path: Path):
    uri = (tmp_path / "stats.py").as_uri()
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        fake.refused_fields = {"priority", "response_format"}
        fake.chat_reply = '{"findings": []}'
        open_document(client, uri, CODE)
        result = await execute(client, "iquest.findBugs", {"uri": uri})
        again = await execute(client, "iquest.findBugs", {"uri": uri})
    assert field(result, "findings") == 0 and field(again, "findings") == 0
    # Learned once: the second action goes straight through without the refused fields.
    bodies = fake.chat_requests
    assert "priority" not in bodies[-1] and "response_format" not in bodies[-1]
    assert len(bodies) == 4  # 2 refusals, then 1 request per action


async def test_a_down_reasoning_endpoint_falls_back_to_instruct_and_says_so_once(
    tmp_path: Path,
):
    from engine.local.vllm_process import free_port

    uri = (tmp_path / "stats.py").as_uri()
    down = f"http://127.0.0.1:{free_port()}/v1"
    async with fake_server() as fake:
        settings = options(fake.base_url)
        settings["reasoning"] = {"base_url": down, "connect_timeout_s": 1.0}
        async with lsp_session(settings, tmp_path) as client:
            fake.chat_reply = "It averages."
            open_document(client, uri, CODE)
            first = await execute(client, "iquest.explain", {"uri": uri})
            second = await execute(client, "iquest.explain", {"uri": uri})
            await eventually(lambda: messages_of(client, types.MessageType.Warning), 5)
    assert field(first, "markdown") == field(second, "markdown") == "It averages."
    warnings = [
        m
        for m in messages_of(client, types.MessageType.Warning)
        if "instead" in m or "meanwhile" in m
    ]
    assert len(warnings) == 1 and down in warnings[0]


@pytest.mark.parametrize(
    ("command", "extra", "reason"),
    [
        ("iquest.ask", {"question": "why? " * 1_200_000}, "the question is 6,000,000 characters"),
        ("iquest.fix", {"problem": "x" * 6_000_000}, "the problem description is 6,000,000"),
        ("iquest.explain", {"range": line_range(0, 200_001)}, "select less"),
    ],
)
async def test_client_text_past_the_prompt_budget_is_refused_before_vllm(
    tmp_path: Path, command: str, extra: dict[str, object], reason: str
):
    """A 6 MB question was sent to vLLM three times (issue 23): every client-supplied text is
    bounded by the action's prompt budget, and refused with what to do."""
    uri = (tmp_path / "stats.py").as_uri()
    big = CODE * 40_000  # 200,000 lines, 6 MB
    async with fake_server() as fake, lsp_session(options(fake.base_url), tmp_path) as client:
        open_document(client, uri, big)
        arguments = {"uri": uri, "range": line_range(0, 2), **extra}
        with pytest.raises(JsonRpcException, match=reason):
            await execute(client, command, arguments)
    assert fake.chat_requests == []
