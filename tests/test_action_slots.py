"""The budget of running actions per server (engine.endpoints.action_slots), without LSP or
HTTP: fair order across users, places in the queue, cancelling while queued, a burst."""

from __future__ import annotations

import asyncio

import pytest

from engine.endpoints.action_slots import UNKNOWN_LIMIT_BUDGET, ActionSlots, budget_for

SERVER = "http://gpu-1:8000/v1"


class Recorder:
    def __init__(self) -> None:
        self.figures: list[tuple[int, int]] = []
        self.waits: list[float] = []

    def slots_changed(self, running: int, queued: int) -> None:
        self.figures.append((running, queued))

    def waited(self, seconds: float) -> None:
        self.waits.append(seconds)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_budget_leaves_completions_a_slot_and_is_split_over_workers():
    assert budget_for(4) == 3
    assert budget_for(16) == 15
    assert budget_for(17) == 15  # ceil(17 / 16) = 2 slots kept free
    assert budget_for(256) == 240
    assert budget_for(1024) == 960
    assert budget_for(1) == 1  # a one-slot server: actions still run
    assert budget_for(None) == UNKNOWN_LIMIT_BUDGET
    assert budget_for(256, processes=4) == 60
    assert budget_for(4, processes=8) == 1


async def test_queued_actions_start_round_robin_by_user_then_in_arrival_order():
    slots = ActionSlots()
    started: list[str] = []
    places: dict[str, list[int]] = {}
    release = {name: asyncio.Event() for name in ("a1", "a2", "a3", "a4", "b1", "b2", "c1")}

    async def action(name: str, user: str) -> None:
        places[name] = []
        async with slots.hold(SERVER, 1, user, places[name].append):
            started.append(name)
            await release[name].wait()

    tasks = {}
    for name, user in [
        ("a1", "alice"),
        ("a2", "alice"),
        ("a3", "alice"),
        ("a4", "alice"),
        ("b1", "bob"),
        ("b2", "bob"),
        ("c1", "carol"),
    ]:
        tasks[name] = asyncio.create_task(action(name, user))
        await settle()
    assert started == ["a1"]
    assert slots.running(SERVER) == 1 and slots.queued(SERVER) == 6
    # a2 b1 c1 | a3 b2 | a4: what each was last told.
    assert {name: p[-1] for name, p in places.items() if p} == {
        "a2": 0,
        "b1": 1,
        "c1": 2,
        "a3": 3,
        "b2": 4,
        "a4": 5,
    }
    assert places["a3"] == [1, 2, 3]  # told again as bob's and carol's arrived ahead of it
    for name in ["a1", "a2", "b1", "c1", "a3", "b2", "a4"]:
        release[name].set()
        await settle()
    await asyncio.gather(*tasks.values())
    assert started == ["a1", "a2", "b1", "c1", "a3", "b2", "a4"]
    assert slots.running(SERVER) == 0 and slots.queued(SERVER) == 0


async def test_a_user_arriving_later_is_served_before_a_burst_finishes():
    slots = ActionSlots()
    started: list[str] = []
    gate = asyncio.Event()

    async def action(name: str, user: str) -> None:
        async with slots.hold(SERVER, 2, user, lambda ahead: None):
            started.append(name)
            await gate.wait()

    burst = [asyncio.create_task(action(f"a{n}", "alice")) for n in range(10)]
    await settle()
    late = asyncio.create_task(action("b0", "bob"))
    await settle()
    gate.set()
    await asyncio.gather(*burst, late)
    # Two ran at once; as they finished, alice's turn (she queued first) then bob's: his one
    # action was fourth, not eleventh.
    assert started.index("b0") == 3


async def test_cancelling_a_queued_action_removes_it_at_once_and_takes_no_slot():
    recorder = Recorder()
    slots = ActionSlots(recorder)
    release = asyncio.Event()
    order: list[str] = []
    told: dict[str, list[int]] = {"second": [], "third": []}

    async def action(name: str) -> None:
        async with slots.hold(SERVER, 1, "alice", told.setdefault(name, []).append):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(action("first"))
    await settle()
    second = asyncio.create_task(action("second"))
    third = asyncio.create_task(action("third"))
    await settle()
    assert slots.queued(SERVER) == 2 and told["third"] == [1]
    second.cancel()
    await settle()
    assert second.cancelled()
    assert slots.queued(SERVER) == 1 and slots.running(SERVER) == 1
    assert told["third"] == [1, 0]  # moved up as soon as the one ahead left
    release.set()
    await asyncio.gather(first, third)
    assert order == ["first", "third"]
    assert recorder.figures[-1] == (0, 0)
    assert len(recorder.waits) == 2  # first and third started; second never did


async def test_a_cancel_that_lands_as_the_slot_is_granted_gives_the_slot_back():
    slots = ActionSlots()
    holder_done = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(SERVER, 1, "alice", lambda ahead: None):
            await holder_done.wait()

    async def waiter() -> None:
        async with slots.hold(SERVER, 1, "bob", lambda ahead: None):
            raise AssertionError("a cancelled waiter must not run")

    first = asyncio.create_task(holder())
    await settle()
    second = asyncio.create_task(waiter())
    await settle()
    holder_done.set()
    await asyncio.sleep(0)  # the holder leaves and grants the slot to the waiter...
    second.cancel()  # ...which is cancelled before it wakes up
    await asyncio.gather(first, return_exceptions=True)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert slots.running(SERVER) == 0 and slots.queued(SERVER) == 0
    async with slots.hold(SERVER, 1, "carol", lambda ahead: None) as waited:
        assert waited < 0.1


async def test_a_burst_never_runs_more_than_the_budget_and_servers_are_separate():
    slots = ActionSlots()
    peak = {SERVER: 0, "http://gpu-2:8000/v1": 0}
    now = dict.fromkeys(peak, 0)

    async def action(server: str, user: str) -> None:
        async with slots.hold(server, 3, user, lambda ahead: None):
            now[server] += 1
            peak[server] = max(peak[server], now[server])
            await asyncio.sleep(0.002)
            now[server] -= 1

    await asyncio.gather(*(action(server, f"user{n % 4}") for n in range(40) for server in peak))
    assert peak == dict.fromkeys(peak, 3)


async def test_a_raised_budget_starts_waiting_actions():
    slots = ActionSlots()
    gate = asyncio.Event()
    started: list[str] = []

    async def action(name: str, budget: int) -> None:
        async with slots.hold(SERVER, budget, "alice", lambda ahead: None):
            started.append(name)
            await gate.wait()

    tasks = [asyncio.create_task(action(f"old{n}", 1)) for n in range(3)]
    await settle()
    assert started == ["old0"]
    # The settings changed: the next action brings the new budget, and the queue moves.
    tasks.append(asyncio.create_task(action("new", 4)))
    await settle()
    assert sorted(started) == ["new", "old0", "old1", "old2"]
    assert slots.running(SERVER) == 4 and slots.queued(SERVER) == 0
    gate.set()
    await asyncio.gather(*tasks)


def test_a_report_that_fails_does_not_break_the_queue(caplog: pytest.LogCaptureFixture):
    async def scenario() -> list[str]:
        slots = ActionSlots()
        gate = asyncio.Event()
        started: list[str] = []

        def broken(ahead: int) -> None:
            raise RuntimeError("the editor went away")

        async def action(name: str) -> None:
            async with slots.hold(SERVER, 1, "alice", broken):
                started.append(name)
                await gate.wait()

        tasks = [asyncio.create_task(action(f"a{n}")) for n in range(3)]
        await settle()
        gate.set()
        await asyncio.gather(*tasks)
        return started

    assert asyncio.run(scenario()) == ["a0", "a1", "a2"]
    assert "place in the queue failed" in caplog.text
