"""Code actions against the real vLLM CPU server. Its text is random, so these check structure:
progress begins and ends, cancelling aborts the stream inside vLLM, a fix becomes an applied
edit, findings become diagnostics, and actions on a file share one cached prompt prefix."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import VllmEndpoint
from tests.support.actions_client import (
    act_like_an_editor,
    action_progress,
    execute,
    field,
    line_range,
)
from tests.support.lsp_session import lsp_session, open_document
from tests.support.vllm_metrics import vllm_samples

CODE = "".join(
    f"def step_{n}(values):\n    total = sum(values)\n    return total / (len(values) - {n})\n\n"
    for n in range(40)
)


def options(vllm: VllmEndpoint, **actions: object) -> dict[str, object]:
    endpoint = {"base_url": vllm.base_url, "model": vllm.model}
    return {
        "instruct": endpoint,
        "reasoning": endpoint,
        "actions": {"max_tokens": 64, "timeout_s": 120, **actions},
        "log_level": "DEBUG",
    }


def progress_of(client) -> list[list[object]]:
    return list(action_progress(client).values())


async def until(condition, root_url: str, timeout_s: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await vllm_samples(root_url)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("vLLM metrics never met the condition")
        await asyncio.sleep(0.02)


async def test_explain_then_find_bugs_share_the_cached_prefix(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "steps.py").as_uri()
    async with lsp_session(options(vllm), tmp_path) as client:
        record = act_like_an_editor(client, {uri: CODE})
        open_document(client, uri, CODE)
        explained = await execute(client, "iquest.explain", {"uri": uri, "range": line_range(4, 7)})
        before = await vllm_samples(vllm.root_url)
        try:
            await execute(client, "iquest.findBugs", {"uri": uri, "range": line_range(4, 7)})
        except JsonRpcException as error:  # random findings may be cut: the cache is the point
            assert "find bugs" in str(error)
        after = await vllm_samples(vllm.root_url)
    assert field(explained, "markdown").strip()
    assert len(record["explanations"]) == 1
    [reports, *_] = progress_of(client)
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "done"
    # The second action's prompt reuses the first's: system, repository context, the file.
    queried = after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"]
    hits = after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
    assert queried > 500
    assert hits / queried > 0.8


@pytest.mark.parametrize("how", ["cancelRequest", "progressCancel"])
async def test_cancelling_an_action_aborts_it_inside_vllm(
    vllm: VllmEndpoint, tmp_path: Path, how: str
):
    uri = (tmp_path / "steps.py").as_uri()
    # Greedy: at temperature 1 a random model samples an end-of-text token within ~1,400 tokens.
    async with lsp_session(options(vllm, max_tokens=20000, temperature=0.0), tmp_path) as client:
        open_document(client, uri, CODE)
        before = await vllm_samples(vllm.root_url)
        request_id = f"explain-to-cancel-{how}"
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(command="iquest.explain", arguments=[{"uri": uri}]),
                msg_id=request_id,
            )
        )
        # Streaming, seen from the daemon's own progress reports (vLLM's /metrics can lag
        # behind a CPU server that streams a thousand tokens a second).
        deadline = time.monotonic() + 30
        while not any(
            sum(isinstance(r, types.WorkDoneProgressReport) for r in reports) >= 2
            for reports in client.progress_reports.values()
        ):
            assert time.monotonic() < deadline, "the action never started streaming"
            await asyncio.sleep(0.005)
        if how == "cancelRequest":
            client.protocol.notify("$/cancelRequest", types.CancelParams(id=request_id))
        else:
            [token] = action_progress(client)
            client.protocol.notify(
                types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token)
            )
        with pytest.raises(JsonRpcException):
            await pending
        stopped = await until(
            lambda s: s.get("vllm:num_requests_running", 0) == 0, vllm.root_url, 5
        )
        await asyncio.sleep(1.0)
        settled = await vllm_samples(vllm.root_url)
    generated = stopped["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert 0 < generated < 20000
    assert settled["vllm:generation_tokens_total"] == stopped["vllm:generation_tokens_total"]
    [reports] = progress_of(client)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "cancelled"


async def test_a_fix_from_vllm_becomes_an_applied_edit(vllm: VllmEndpoint, tmp_path: Path):
    # Plain text: no grammar to refuse random text. structured_fix: vLLM's JSON grammar makes
    # even a random model answer in the fix's shape.
    uri = (tmp_path / "notes.txt").as_uri()
    text = "first line stays\nthis line gets fixed\nlast line stays\n"
    texts = {uri: text}
    async with lsp_session(options(vllm, structured_fix=True, max_tokens=600), tmp_path) as client:
        record = act_like_an_editor(client, texts)
        open_document(client, uri, text, language="plaintext")
        result = await execute(client, "iquest.fix", {"uri": uri, "range": line_range(1, 2)})
    assert field(result, "applied") is True, field(result, "reason")
    assert len(record["edits"]) == 1
    assert texts[uri].startswith("first line stays\n")
    assert texts[uri].endswith("last line stays\n")
    assert "this line gets fixed" not in texts[uri]


async def test_findings_from_vllm_become_diagnostics(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "steps.py").as_uri()
    line_count = CODE.count("\n")
    async with lsp_session(options(vllm, max_tokens=3000), tmp_path) as client:
        open_document(client, uri, CODE)
        result = await execute(client, "iquest.findBugs", {"uri": uri})
        await asyncio.sleep(0.3)
        published = client.diagnostics.get(uri, [])
    assert len(published) == field(result, "findings")
    assert all(d.source == "iquest" and 0 <= d.range.start.line < line_count for d in published)


async def test_an_action_prompt_fits_the_servers_context(vllm: VllmEndpoint, tmp_path: Path):
    """Explaining two lines of a big file sent more than the served model's context (issue
    25: HTTP 400 on the embedded model): the prompt is fitted to max_model_len less
    max_tokens, trimming the repository context and the far lines first. Here 20,000 tokens
    of budget and 12,000 to answer against a 24,576-token server."""
    uri = (tmp_path / "big.py").as_uri()
    big = CODE * 60  # ~60,000 tokens
    settings = options(vllm, max_tokens=12000, temperature=0.0, prompt_token_budget=20000)
    async with lsp_session(settings, tmp_path) as client:
        open_document(client, uri, big)
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(
                    command="iquest.explain",
                    arguments=[{"uri": uri, "range": line_range(1200, 1202)}],
                ),
                msg_id="explain-big",
            )
        )
        deadline = time.monotonic() + 60
        while not any(
            sum(isinstance(r, types.WorkDoneProgressReport) for r in reports) >= 2
            for reports in client.progress_reports.values()
        ):
            if pending.done():
                pending.result()  # the server's refusal, as the editor got it
            assert time.monotonic() < deadline, "the action never started streaming"
            await asyncio.sleep(0.01)
        client.protocol.notify("$/cancelRequest", types.CancelParams(id="explain-big"))
        with pytest.raises(JsonRpcException):
            await pending


async def test_a_refused_request_is_that_requests_error_not_an_outage(
    vllm: VllmEndpoint, tmp_path: Path
):
    """A 400 (here a prompt over the server's context) paused every suggestion for the next
    seconds with "Suggestions pause until it answers again" (issue 25)."""
    from tests.support.lsp_session import end_position, inline_completion, stats

    big, small = (tmp_path / "big.py").as_uri(), (tmp_path / "small.py").as_uri()
    settings = {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {"debounce_ms": 0, "prompt_token_budget": 200000, "max_tokens": 8},
    }
    async with lsp_session(settings, tmp_path) as client:
        open_document(client, big, CODE * 200)
        open_document(client, small, "def total(values):\n    return ")
        await inline_completion(client, big, end_position(CODE * 200))
        await inline_completion(client, small, end_position("def total(values):\n    return "))
        figures = await stats(client)
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert figures["backend_requests"] == 2, figures  # the second went to the server
    assert figures["failures"] == 1, str({k: v for k, v in figures.items() if "ms" not in k})
    assert not any("pause" in m for m in errors)
    assert any("refused a request" in w and "400" in w for w in warnings), client.messages
