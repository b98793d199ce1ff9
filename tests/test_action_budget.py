"""The budget of running actions against the real vLLM CPU server: a burst never has more
actions at the server than the budget, a queued action says how many are ahead and cancelling
it never reaches vLLM, and a team daemon serves two users' queued actions in fair turns."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from engine.config import EndpointConfig, Settings
from engine.endpoints import ActionSlots, EndpointClients, Endpoints, Replica
from tests.conftest import VllmEndpoint
from tests.support.actions_client import execute
from tests.support.fake_server import fake_server
from tests.support.lsp_session import lsp_session, open_document
from tests.support.team import editor, team_daemon
from tests.support.vllm_metrics import vllm_samples

CODE = "".join(f"def step_{n}(values):\n    return sum(values) / {n + 1}\n\n" for n in range(20))


def options(vllm: VllmEndpoint, **actions: object) -> dict[str, object]:
    endpoint = {"base_url": vllm.base_url, "model": vllm.model}
    return {
        "instruct": endpoint,
        "reasoning": endpoint,
        # Greedy: a random model then never stops before max_tokens.
        "actions": {"max_tokens": 400, "temperature": 0.0, "timeout_s": 120, **actions},
    }


def messages(client: LanguageClient) -> list[list[str]]:
    """Each progress bar's report messages, in order."""
    return [
        [r.message or "" for r in reports if isinstance(r, types.WorkDoneProgressReport)]
        for reports in client.progress_reports.values()
    ]


async def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_the_budget_comes_from_the_servers_sequence_limit(vllm: VllmEndpoint):
    """The test server runs in vLLM's dev mode with --max-num-seqs 64 and says so at
    /server_info; a server without that page (the fake) leaves the budget to the default."""
    clients = EndpointClients()
    settings = Settings()
    try:
        endpoints = Endpoints(
            lambda: settings, clients, lambda notice: None, action_slots=ActionSlots(processes=2)
        )
        config = EndpointConfig(base_url=vllm.base_url)
        assert await clients.max_num_seqs(config) == 64
        assert await endpoints.action_budget(Replica("reasoning", config)) == 60 // 2
        told = EndpointConfig(base_url=vllm.base_url, max_num_seqs=8)
        assert await endpoints.action_budget(Replica("reasoning", told)) == 7 // 2
        async with fake_server() as fake:
            silent = EndpointConfig(base_url=fake.base_url)
            assert await clients.max_num_seqs(silent) is None
            assert await endpoints.action_budget(Replica("reasoning", silent)) == 16 // 2
        down = EndpointConfig(base_url="http://127.0.0.1:9/v1", connect_timeout_s=0.5)
        assert await clients.max_num_seqs(down) is None
    finally:
        await clients.aclose()


async def test_a_burst_of_actions_never_runs_more_than_the_budget_at_vllm(
    vllm: VllmEndpoint, tmp_path: Path
):
    uri = (tmp_path / "steps.py").as_uri()
    async with lsp_session(options(vllm, max_running=2, max_tokens=600), tmp_path) as client:
        open_document(client, uri, CODE)
        before = await vllm_samples(vllm.root_url)
        started = time.monotonic()
        burst = asyncio.gather(*(execute(client, "iquest.explain", {"uri": uri}) for _ in range(6)))
        peak_running = peak_waiting = 0
        while not burst.done():
            samples = await vllm_samples(vllm.root_url)
            peak_running = max(peak_running, int(samples.get("vllm:num_requests_running", 0)))
            peak_waiting = max(peak_waiting, int(samples.get("vllm:num_requests_waiting", 0)))
            await asyncio.sleep(0.02)
        results = await burst
        wall = time.monotonic() - started
        after = await vllm_samples(vllm.root_url)
    # Every action ran whole at vLLM (greedy, to max_tokens).
    assert after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"] == 6 * 600
    assert len(results) == 6
    # vLLM's CPU build refreshes its running gauge in steps (a poll may see 0 throughout): the
    # requests' own time at vLLM says how many ran at once on average. Two at a time: their
    # times add up to about twice the burst's; six at once would make it near six.
    busy = (
        after["vllm:e2e_request_latency_seconds_sum"]
        - before["vllm:e2e_request_latency_seconds_sum"]
    )
    assert 1.1 * wall <= busy <= 2.3 * wall, (busy, wall)
    assert peak_running <= 2, peak_running
    assert peak_waiting == 0  # the rest waited in the daemon, not in vLLM's queue
    queued = [m for bar in messages(client) for m in bar if m.startswith("queued")]
    assert queued, messages(client)
    assert any(m.endswith("ahead") for m in queued)  # "queued, 2 ahead" and so on


async def test_cancelling_a_queued_action_ends_it_at_once_and_vllm_never_sees_it(
    vllm: VllmEndpoint, tmp_path: Path
):
    uri = (tmp_path / "steps.py").as_uri()
    async with lsp_session(options(vllm, max_running=1, max_tokens=20000), tmp_path) as client:
        open_document(client, uri, CODE)
        running = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(command="iquest.explain", arguments=[{"uri": uri}]),
                msg_id="long-running",
            )
        )
        await wait_for(
            lambda: any(any("tokens" in m for m in bar) for bar in messages(client)),
            60,
            "the first action never streamed",
        )
        queued = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.WORKSPACE_EXECUTE_COMMAND,
                types.ExecuteCommandParams(command="iquest.explain", arguments=[{"uri": uri}]),
                msg_id="queued",
            )
        )
        await wait_for(
            lambda: any("queued, next" in bar for bar in messages(client)),
            10,
            "the second action never said it was queued",
        )
        before = await vllm_samples(vllm.root_url)
        client.protocol.notify("$/cancelRequest", types.CancelParams(id="queued"))
        cancelled_at = time.monotonic()
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(queued, 5)
        answered_in = time.monotonic() - cancelled_at
        assert not running.done()  # still streaming: the cancel did not wait for a slot
        after = await vllm_samples(vllm.root_url)
        client.protocol.notify("$/cancelRequest", types.CancelParams(id="long-running"))
        with pytest.raises(JsonRpcException):
            await running
    assert answered_in < 2.0
    # vLLM was only ever asked for the first action.
    assert after["vllm:num_requests_running"] == 1
    assert after.get("vllm:num_requests_waiting", 0) == 0
    assert after["vllm:prompt_tokens_total"] == before["vllm:prompt_tokens_total"]
    ends = [
        reports[-1].message
        for reports in client.progress_reports.values()
        if reports and isinstance(reports[-1], types.WorkDoneProgressEnd)
    ]
    assert ends.count("cancelled") == 2


async def test_a_team_daemon_serves_two_users_queued_actions_in_fair_turns(
    vllm: VllmEndpoint, tmp_path: Path
):
    """One slot for the whole daemon: alice queues two more actions behind her running one,
    then bob queues one; bob's starts before alice's third."""
    reasoning = (
        f'[reasoning]\nbase_url = "{vllm.base_url}"\nmodel = "{vllm.model}"\n'
        "[actions]\nmax_running = 1\nmax_tokens = 800\ntemperature = 0.0\ntimeout_s = 120\n"
    )
    finished: list[str] = []
    async with (
        fake_server() as fake,
        team_daemon(tmp_path, fake, config_extra=reasoning) as (
            daemon,
            team,
        ),
    ):
        url = f"tls://127.0.0.1:{daemon.bound['tcp']}"
        tokens, cert = team["tokens"], team["cert"]
        async with (
            editor(url, tokens["alice"], tmp_path, cert) as alice,
            editor(url, tokens["bob"], tmp_path, cert) as bob,
        ):
            uri = (tmp_path / "proj" / "steps.py").as_uri()
            open_document(alice, uri, CODE)
            open_document(bob, uri, CODE)

            async def act(client: LanguageClient, name: str) -> None:
                await execute(client, "iquest.explain", {"uri": uri})
                finished.append(name)

            tasks = [asyncio.create_task(act(alice, "alice-1"))]
            await wait_for(
                lambda: any(any("tokens" in m for m in bar) for bar in messages(alice)),
                60,
                "alice's first action never streamed",
            )
            for name in ("alice-2", "alice-3"):
                tasks.append(asyncio.create_task(act(alice, name)))
                await wait_for(
                    lambda: daemon.action_slots.queued(vllm.base_url) == len(tasks) - 1,
                    10,
                    f"{name} was not queued",
                )
            tasks.append(asyncio.create_task(act(bob, "bob-1")))
            await wait_for(
                lambda: daemon.action_slots.queued(vllm.base_url) == 3, 10, "bob's not queued"
            )
            await wait_for(
                lambda: any("queued, 1 ahead" in bar for bar in messages(bob)),
                10,
                "bob was not told his place",
            )
            verify = ssl.create_default_context(cafile=str(cert))
            async with httpx.AsyncClient(verify=verify) as http:
                scrape = (await http.get(f"https://127.0.0.1:{daemon.bound['ws']}/metrics")).text
            await asyncio.gather(*tasks)
    assert finished == ["alice-1", "alice-2", "bob-1", "alice-3"]
    assert "iquest_actions_queued 3.0" in scrape
    assert "iquest_actions_running 1.0" in scrape
    assert "iquest_action_queue_wait_seconds_count 1.0" in scrape  # alice-1 only, so far
