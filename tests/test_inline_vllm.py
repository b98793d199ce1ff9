"""End to end: the real language server over stdio against a real vLLM serving a tiny model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import VllmEndpoint
from tests.support.lsp_session import (
    change,
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
    stats,
)
from tests.support.vllm_metrics import requests_started, vllm_samples

SOURCE = "import os\n\n\ndef read_config(path):\n    "


def endpoint_options(vllm: VllmEndpoint, **completion: object) -> dict[str, object]:
    return {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        # One candidate unless a test asks: explicit requests then stay greedy and comparable.
        "completion": {"temperature": 0.0, "candidates": 1, **completion},
    }


async def test_inline_completion_carries_the_servers_text(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "config_reader.py").as_uri()
    async with lsp_session(endpoint_options(vllm, multiline="always"), tmp_path) as client:
        open_document(client, uri, SOURCE)
        items = items_of(await inline_completion(client, uri, end_position(SOURCE)))
        info = await stats(client)

    assert len(items) == 1
    suggestion = items[0].insert_text
    assert isinstance(suggestion, str) and suggestion.strip()
    assert items[0].range == types.Range(start=end_position(SOURCE), end=end_position(SOURCE))
    assert info["template"] == "qwen"
    # vLLM loaded the model from a folder this machine can read: its tokenizer counts here,
    # after agreeing with /tokenize on a probe.
    assert "counting tokens locally" in (tmp_path / "iquest.log").read_text()

    # The same prompt sent straight to vLLM at temperature 0 produces the text we were shown.
    prompt = (
        f"<|repo_name|>{tmp_path.name}\n<|file_sep|>config_reader.py\n"
        "<|fim_prefix|>import os\n\n\ndef read_config(path):\n<|fim_suffix|><|fim_middle|>    "
    )
    async with httpx.AsyncClient(timeout=30) as http:
        answer = (
            await http.post(
                f"{vllm.base_url}/completions",
                json={
                    "model": vllm.model,
                    "prompt": prompt,
                    "max_tokens": 128,
                    "temperature": 0.0,
                },
            )
        ).json()
    assert suggestion in answer["choices"][0]["text"]


async def test_cancel_request_aborts_generation_inside_vllm(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "long.py").as_uri()
    options = endpoint_options(vllm, multiline="always", max_tokens=20000, timeout_s=120)
    options["log_level"] = "DEBUG"
    async with lsp_session(options, tmp_path) as client:
        open_document(client, uri, SOURCE)
        before = await vllm_samples(vllm.root_url)
        request_id = "inline-to-cancel"
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=end_position(SOURCE),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=request_id
            )
        )
        # Streaming, seen from the daemon (vLLM's /metrics can lag a CPU server that streams a
        # thousand tokens a second): its request is out, and a moment later we cancel.
        deadline = time.monotonic() + 30
        while (await stats(client))["backend_requests"] < 1:
            assert time.monotonic() < deadline, "the request never left the daemon"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        client.protocol.notify("$/cancelRequest", types.CancelParams(id=request_id))
        with pytest.raises(JsonRpcException):
            await pending
        after = await _until(lambda s: s.get("vllm:num_requests_running", 0) == 0, vllm, 5)

        await asyncio.sleep(1.0)
        settled = await vllm_samples(vllm.root_url)

    # This vLLM counts no finished_reason for aborts: the evidence is that the request left the
    # running set long before its 20,000 tokens, without finishing, and generation stayed stopped.
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert 0 < generated < 20000
    assert settled["vllm:generation_tokens_total"] == after["vllm:generation_tokens_total"]
    assert requests_started(settled) == requests_started(before)


async def test_keystroke_burst_reaches_vllm_at_most_twice(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "burst.py").as_uri()
    async with lsp_session(endpoint_options(vllm, debounce_ms=75), tmp_path) as client:
        open_document(client, uri, SOURCE)
        before = requests_started(await vllm_samples(vllm.root_url))
        text, pending = SOURCE, []
        for version, char in enumerate("return obj", start=2):
            position = end_position(text)
            change(client, uri, version, position, position, char)
            text += char
            pending.append(
                asyncio.ensure_future(
                    inline_completion(client, uri, end_position(text), invoked=False)
                )
            )
            await asyncio.sleep(0.02)
        results = await asyncio.gather(*pending)
        info = await stats(client)
        await asyncio.sleep(0.3)  # let vLLM count the last request as finished
        after = requests_started(await vllm_samples(vllm.root_url))

    assert len(pending) == 10
    assert after - before <= 2
    assert info["backend_requests"] <= 2
    # Superseded keystrokes get empty answers; the last one gets the suggestion.
    assert all(items_of(r) == [] for r in results[:-1])
    assert len(items_of(results[-1])) == 1


async def test_typing_through_a_suggestion_makes_no_request(vllm: VllmEndpoint, tmp_path: Path):
    uri = (tmp_path / "through.py").as_uri()
    async with lsp_session(endpoint_options(vllm, multiline="always"), tmp_path) as client:
        open_document(client, uri, SOURCE)
        first = items_of(await inline_completion(client, uri, end_position(SOURCE)))[0]
        shown = str(first.insert_text)
        assert len(shown) >= 3
        before_vllm = requests_started(await vllm_samples(vllm.root_url))
        before = await stats(client)

        typed = shown[:2]
        change(client, uri, 2, end_position(SOURCE), end_position(SOURCE), typed)
        rest = items_of(await inline_completion(client, uri, end_position(SOURCE + typed)))
        after = await stats(client)
        after_vllm = requests_started(await vllm_samples(vllm.root_url))

    assert [item.insert_text for item in rest] == [shown[2:]]
    assert after["backend_requests"] == before["backend_requests"]
    assert after["served_from_memory"] == before["served_from_memory"] + 1
    assert after_vllm == before_vllm


async def test_position_outside_the_document_is_an_error_and_serving_goes_on(
    vllm: VllmEndpoint, tmp_path: Path
):
    uri = (tmp_path / "bounds.py").as_uri()
    async with lsp_session(endpoint_options(vllm, multiline="always"), tmp_path) as client:
        open_document(client, uri, SOURCE)
        with pytest.raises(JsonRpcException) as error:
            await inline_completion(client, uri, types.Position(line=99, character=0))
        assert "outside" in str(error.value)
        with pytest.raises(JsonRpcException):
            await inline_completion(
                client, (tmp_path / "never-opened.py").as_uri(), types.Position(line=0, character=0)
            )
        items = items_of(await inline_completion(client, uri, end_position(SOURCE)))
    assert len(items) == 1


async def test_completion_request_returns_one_item_with_the_whole_text(
    vllm: VllmEndpoint, tmp_path: Path
):
    uri = (tmp_path / "legacy.py").as_uri()
    source = SOURCE + "ret"
    async with lsp_session(endpoint_options(vllm, multiline="always"), tmp_path) as client:
        open_document(client, uri, source)
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=end_position(source),
                context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
            )
        )
    assert isinstance(result, types.CompletionList)
    assert len(result.items) == 1
    edit = result.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    # The edit replaces the word being typed ("ret") and carries it plus the suggestion.
    assert edit.new_text.startswith("ret") and len(edit.new_text) > 3
    assert edit.range.start.character == end_position(source).character - 3


async def _until(condition, vllm: VllmEndpoint, timeout_s: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await vllm_samples(vllm.root_url)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"vLLM metrics never met the condition: {samples}")
        await asyncio.sleep(0.02)


async def test_shutdown_right_after_initialize_answers_null(vllm: VllmEndpoint, tmp_path: Path):
    """A session closed at once (an editor opened and closed): ``shutdown`` arrives while the
    ``initialized`` handler still waits on the editor's settings. pygls iterated its live table
    of handlers while cancelling them, our upkeep of that table changed it underneath, and
    ``shutdown`` answered an internal error instead of null."""
    for _ in range(3):
        # Leaving the session sends shutdown (raising if it is answered with an error) and exit.
        async with lsp_session({"instruct": {"base_url": vllm.base_url}}, tmp_path):
            pass


async def test_an_explicit_request_gets_distinct_candidates_from_one_vllm_request(
    vllm: VllmEndpoint, tmp_path: Path
):
    uri = (tmp_path / "cycle.py").as_uri()
    options = endpoint_options(vllm, candidates=3, candidates_temperature=1.0, max_tokens=12)
    async with lsp_session(options, tmp_path) as client:
        open_document(client, uri, SOURCE)
        before = await vllm_samples(vllm.root_url)
        explicit = items_of(await inline_completion(client, uri, end_position(SOURCE)))
        after = await vllm_samples(vllm.root_url)
        automatic = items_of(
            await inline_completion(client, uri, end_position(SOURCE), invoked=False)
        )
        # Accepting the second candidate runs its command: the daemon counts it by place.
        command = explicit[1].command
        assert command is not None
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
        )
        counted = await stats(client)
        server_stats = await stats(client)
    texts = [item.insert_text for item in explicit]
    assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts), texts
    # The as-you-type request at the same place is served by the memory of the one shown.
    assert [item.insert_text for item in automatic] == texts[:1]
    moved = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    # One API request with n = 3 (vLLM runs a child per choice, and counts them finished).
    assert moved["vllm:request_params_n_count"] == 1
    assert moved["vllm:request_params_n_sum"] == 3
    assert moved["vllm:request_success_total"] == 3
    # The prompt is computed once: the other choices read its full blocks from the cache
    # (only the last, partial block is computed again for each).
    prompt = moved["vllm:prompt_tokens_total"] / 3
    computed = moved["vllm:prompt_tokens_total"] - moved["vllm:prompt_tokens_cached_total"]
    assert computed < 2 * prompt, moved
    assert counted["accepted_by_index"][:3] == [0, 1, 0] and counted["accepted"] == 1
    assert server_stats["backend_requests"] == 1 and server_stats["served_from_memory"] == 1


async def test_an_empty_prompt_is_never_sent(vllm: VllmEndpoint, tmp_path: Path):
    """Typing then deleting a character in an empty file sent an empty prompt with a
    prefix-only template: HTTP 400, then "Suggestions pause" (issue 25)."""
    from tests.support.lsp_session import stats

    uri = (tmp_path / "empty.py").as_uri()
    settings = {
        "instruct": {"base_url": vllm.base_url, "model": vllm.model},
        "completion": {"debounce_ms": 0, "template": "prefix-only"},
    }
    async with lsp_session(settings, tmp_path) as client:
        open_document(client, uri, "")
        answer = await inline_completion(client, uri, types.Position(line=0, character=0))
        figures = await stats(client)
    assert items_of(answer) == []
    assert figures["backend_requests"] == 0 and figures["failures"] == 0
    assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_every_prompt_token_is_counted_in_team_metrics(vllm: VllmEndpoint, tmp_path: Path):
    """iquest_prompt_tokens_total stayed 0 after six completions (issue 25): a single-line
    suggestion ends at its line's end, where the daemon closes the stream, before vLLM's final
    usage chunk. Every chunk now carries the prompt's size; a request's counts reach /metrics
    when it ends."""
    from types import SimpleNamespace

    from tests.support.polling import eventually
    from tests.support.team import editor, team_daemon

    server = SimpleNamespace(base_url=vllm.base_url)
    uri = (tmp_path / "proj" / "geometry.py").as_uri()
    async with team_daemon(tmp_path, server) as (daemon, team):  # type: ignore[arg-type]
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        async with editor(url, team["tokens"]["alice"], tmp_path, team["cert"]) as client:
            before = await vllm_samples(vllm.root_url)
            open_document(client, uri, SOURCE)
            text = SOURCE
            for n in range(6):
                text += f"\nvalue_{n} = "
                open_document(client, uri.replace(".py", f"{n}.py"), text)
                # As typed (one candidate: vLLM counts an n=3 prompt three times).
                await inline_completion(
                    client, uri.replace(".py", f"{n}.py"), end_position(text), invoked=False
                )
            after = await vllm_samples(vllm.root_url)
            sent = after["vllm:prompt_tokens_total"] - before["vllm:prompt_tokens_total"]
            await eventually(lambda: daemon.metrics.prompt_tokens._value.get() >= sent, 5)
            counted = daemon.metrics.prompt_tokens._value.get()
    assert sent > 0
    assert counted == sent


async def test_bench_fixed_lengths_decode_each_request_to_its_drawn_length(
    vllm: VllmEndpoint, tmp_path: Path
):
    """completion.bench_fixed_lengths (bench/capacity.py): vLLM decodes exactly the drawn
    number of tokens (min_tokens = max_tokens, ignore_eos), the daemon reads to the end and
    still shows one line; without it, single-line requests are cut at the first line."""
    from engine.completion.generation.sampling import BENCH_MULTI_LINE, BENCH_SINGLE_LINE

    options = endpoint_options(
        vllm, bench_fixed_lengths=True, temperature=1.0, debounce_ms=0, multiline="never"
    )
    before = await vllm_samples(vllm.root_url)
    async with lsp_session(options, tmp_path) as client:
        for number in range(4):
            uri = (tmp_path / f"lengths{number}.py").as_uri()
            open_document(client, uri, SOURCE)
            items = items_of(await inline_completion(client, uri, end_position(SOURCE)))
            for item in items:
                assert "\n" not in str(item.insert_text)  # a single-line request shows one line
    after = await vllm_samples(vllm.root_url)
    finished = after["vllm:request_success_total"] - before["vllm:request_success_total"]
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert finished == 4
    # Every request ran to its length ("length" is vLLM's reason for max_tokens reached).
    assert (
        after.get("vllm:request_success_total{length}", 0)
        - before.get("vllm:request_success_total{length}", 0)
        == 4
    )
    low, high = BENCH_SINGLE_LINE
    assert low * 4 <= generated <= high * 4
    assert BENCH_MULTI_LINE[0] > high  # the two kinds stay apart
