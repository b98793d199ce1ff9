"""Behind a real router: vllm-router in front of two vLLM CPU servers serving the tiny model.

With ``router = true`` the daemon sends everything to the router; the router's consistent hash
on X-Session-ID keeps one session on one replica (its prefix cache), and different sessions can
land on different replicas. Where each request went is read from the replicas' own counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.config import build_settings
from engine.doctor import diagnose
from engine.team.identity import session_id, user_id
from tests.conftest import VllmEndpoint
from tests.support.fake_server import fake_server
from tests.support.lsp_session import (
    change,
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
)
from tests.support.router import router_command, vllm_router
from tests.support.vllm_metrics import vllm_samples

pytestmark = pytest.mark.skipif(router_command() is None, reason="vllm-router not installed")

FINISHED = "vllm:request_success_total"
CACHE_QUERIES = "vllm:prefix_cache_queries_total"
CACHE_HITS = "vllm:prefix_cache_hits_total"
SOURCE = (
    "import os\n\n\ndef list_python_files(folder):\n"
    '    """The .py files under folder, sorted."""\n'
    "    found = []\n    for name in sorted(os.listdir(folder)):\n        "
)
TYPED = "if name.endswith('.py'):\n            found.append(name)\n        "


async def counters(replicas: list[VllmEndpoint]) -> list[dict[str, float]]:
    return list(await asyncio.gather(*(vllm_samples(r.root_url) for r in replicas)))


def moved(before: list[dict[str, float]], after: list[dict[str, float]], name: str) -> list[float]:
    return [a.get(name, 0.0) - b.get(name, 0.0) for a, b in zip(after, before, strict=True)]


async def test_one_session_stays_on_one_replica_and_sessions_spread(
    vllm: VllmEndpoint, vllm_second: VllmEndpoint, tmp_path: Path
):
    replicas = [vllm, vllm_second]
    folders = [tmp_path / f"project-{n}" for n in range(12)]
    for folder in folders:
        folder.mkdir()
    async with vllm_router(
        [r.root_url for r in replicas], "consistent_hash", tmp_path / "router.log"
    ) as router:
        settings = {
            "instruct": {"base_url": f"{router}/v1", "router": True, "model": vllm.model},
            # One candidate: each suggestion is one request on one replica.
            "completion": {"debounce_ms": 0, "max_tokens": 8, "timeout_s": 60, "candidates": 1},
        }
        async with lsp_session(settings, tmp_path, folders=folders) as client:
            files = iter(range(1000))

            async def complete_in(folder: Path) -> list[float]:
                """One suggestion from a new file in ``folder`` (no typing-through memory);
                the finished requests it added on each replica."""
                uri = (folder / f"module_{next(files)}.py").as_uri()
                open_document(client, uri, SOURCE)
                before = await counters(replicas)
                items = items_of(await inline_completion(client, uri, end_position(SOURCE)))
                after = await counters(replicas)
                assert items, "the router answered nothing"
                return moved(before, after, FINISHED)

            async def type_on(uri: str, text: str, version: int) -> list[float]:
                """The user types a line at the end of ``uri``; a suggestion there."""
                change(client, uri, version, end_position(text), end_position(text), TYPED)
                text += TYPED
                before = await counters(replicas)
                items = items_of(await inline_completion(client, uri, end_position(text)))
                after = await counters(replicas)
                assert items, "the router answered nothing"
                return moved(before, after, FINISHED)

            # One session (one folder), typing in one file: every request on the same replica,
            # whose prefix cache serves the prompt's unchanged start; the other sees nothing.
            uri = (folders[0] / "walk.py").as_uri()
            open_document(client, uri, SOURCE)
            first = await counters(replicas)
            placements = [await type_on(uri, SOURCE + TYPED * n, n + 2) for n in range(4)]
            last = await counters(replicas)
            homes = {counts.index(1.0) for counts in placements}
            assert all(sorted(counts) == [0.0, 1.0] for counts in placements), placements
            assert len(homes) == 1, placements
            home = homes.pop()
            away = 1 - home
            assert moved(first, last, CACHE_QUERIES)[away] == 0
            assert moved(first, last, CACHE_HITS)[home] > 0

            # Other sessions (other folders) spread over both replicas.
            used = {home}
            for folder in folders[1:]:
                counts = await complete_in(folder)
                assert sorted(counts) == [0.0, 1.0], counts
                used.add(counts.index(1.0))
    assert used == {0, 1}


async def test_doctor_sees_routing_mode_and_session_affinity(
    vllm: VllmEndpoint, vllm_second: VllmEndpoint, tmp_path: Path
):
    workers = [vllm.root_url, vllm_second.root_url]
    reports = {}
    for policy in ("consistent_hash", "round_robin"):
        async with vllm_router(workers, policy, tmp_path / f"{policy}.log") as router:
            settings = build_settings(
                {"instruct": {"base_url": f"{router}/v1", "router": True, "model": vllm.model}}
            )
            (report,) = await diagnose(settings)
            reports[policy] = {check.name: check for check in report.checks}
    sticky, scattered = reports["consistent_hash"], reports["round_robin"]
    assert sticky["routing"].detail.startswith("router at ")
    assert sticky["one session, one replica"].ok is True
    assert "reached 1 of 2 replicas" in sticky["one session, one replica"].detail
    assert scattered["one session, one replica"].ok is False
    assert "reached 2 of 2 replicas" in scattered["one session, one replica"].detail
    # vLLM's own metrics are read from a replica, not from the router's /metrics.
    assert sticky["prefix caching"].ok is True


async def test_a_router_gets_stable_session_and_user_headers_and_is_never_paused(tmp_path: Path):
    async with fake_server() as router:
        settings = {
            "instruct": {"base_url": router.base_url, "router": True, "connect_timeout_s": 1.0},
            "completion": {"debounce_ms": 0, "timeout_s": 2.0},
        }
        folders = [tmp_path / "alpha", tmp_path / "beta"]
        for folder in folders:
            folder.mkdir()
        async with lsp_session(settings, tmp_path, folders=folders) as client:
            files = iter(range(100))

            async def complete(folder: Path) -> list[object]:
                uri = (folder / f"f{next(files)}.py").as_uri()
                open_document(client, uri, "def answer():\n    return ")
                return items_of(
                    await inline_completion(client, uri, end_position("def answer():\n    return "))
                )

            assert await complete(folders[0])
            assert await complete(folders[0])
            assert await complete(folders[1])
            router.mode = "http500"  # one replica behind the router fails this request
            assert not await complete(folders[0])
            router.mode = "ok"
            # A server the daemon picks itself would be skipped for a moment now; a router
            # is asked again at once.
            assert await complete(folders[0])
    sessions, users = router.session_headers, router.user_headers
    assert sessions[0] == sessions[1] == sessions[3] == sessions[4] != sessions[2]
    assert len(set(users)) == 1 and users[0] not in sessions
    # Opaque: the folder's and user's names are not in them; stable: computed the same.
    assert sessions[0] == session_id(None, "alpha") and users[0] == user_id(None)


def test_router_and_replicas_together_are_refused():
    from engine.config import SettingsError

    with pytest.raises(SettingsError, match="router = true sends everything to base_url"):
        build_settings({"instruct": {"router": True, "replicas": ["http://a:8000/v1"]}})


async def test_doctor_skips_the_affinity_check_when_the_router_lists_no_replicas():
    async with fake_server() as router:
        settings = build_settings({"instruct": {"base_url": router.base_url, "router": True}})
        (report,) = await diagnose(settings)
    checks = {check.name: check for check in report.checks}
    affinity = checks["one session, one replica"]
    assert affinity.ok is None and "does not list its replicas" in affinity.detail
    assert checks["routing"].ok is True and checks["routing"].detail.startswith("router at")
    # Nothing was sent to find out (doctor's one-token priority-scheduling probe aside).
    assert all(r.get("priority") == 1 for r in router.completion_requests)
    assert len(router.completion_requests) <= 1
