"""The endpoint layer on its own, without an HTTP server: failover order and notices,
skipping servers that just failed, the memory of refused request fields, the shared client
cache, and the action service running on an injected layer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from engine.actions.service import ActionService
from engine.actions.types import ActionError, ActionKind, ActionRequest
from engine.backends.chat import ChatBackend, ChatDelta, ChatParams
from engine.backends.errors import BackendError, FailureKind
from engine.config import EndpointConfig, RoutingConfig, Settings
from engine.definitions import RepositoryContext
from engine.endpoints import (
    EndpointClients,
    Endpoints,
    NoEndpointAnswered,
    Replica,
    send_without_refused,
)
from engine.notices import Notice
from engine.place import Place

INSTRUCT = ("http://instruct-a/v1", "http://instruct-b/v1")
REASONING = "http://reasoning/v1"


def settings(**routing: Any) -> Settings:
    return dataclasses.replace(
        Settings(),
        instruct=EndpointConfig(replicas=INSTRUCT, model="coder"),
        reasoning=EndpointConfig(base_url=REASONING, model="thinker"),
        routing=RoutingConfig(**routing),
    )


def down(url: str) -> BackendError:
    return BackendError(url, FailureKind.UNREACHABLE, "connection refused")


def refusing(url: str, field: str) -> BackendError:
    return BackendError(url, FailureKind.HTTP_STATUS, f"HTTP 400: {field} is not supported", 400)


class Script:
    """Answers per URL: an exception to raise, or a value to return; records each attempt."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.tried: list[str] = []

    async def __call__(self, replica: Replica) -> str:
        self.tried.append(replica.url)
        answer = self.answers.get(replica.url, "ok")
        if isinstance(answer, BaseException):
            raise answer
        return f"{answer} from {replica.endpoint}"


def layer(
    **routing: Any,
) -> tuple[Endpoints, list[Notice]]:
    notices: list[Notice] = []
    chosen = settings(**routing)
    return Endpoints(lambda: chosen, EndpointClients(), notices.append), notices


async def test_the_session_keeps_its_replica_and_fails_over_to_the_next():
    endpoints, notices = layer()
    route = endpoints.route("inline")
    order = [r.url for r in endpoints.replicas(route, "session-1", try_paused=False)]
    assert sorted(order[:2]) == sorted(INSTRUCT) and order[2] == REASONING
    assert order == [r.url for r in endpoints.replicas(route, "session-1", try_paused=False)]
    first, second = order[0], order[1]

    script = Script({first: down(first)})
    assert await endpoints.call(route, "session-1", script, try_paused=False) == (
        "ok from instruct"
    )
    assert script.tried == [first, second]
    # The other replica of the same endpoint took over: an outage notice, no fallback notice.
    assert [n.level for n in notices] == ["error"]


async def test_every_replica_down_falls_back_to_the_other_endpoint_and_says_so_once():
    endpoints, notices = layer()
    route = endpoints.route("inline")
    script = Script({url: down(url) for url in INSTRUCT})
    for _ in range(3):
        assert await endpoints.call(route, "s", script, try_paused=True) == "ok from reasoning"
    warnings = [n.message for n in notices if n.level == "warning"]
    assert len(warnings) == 1
    assert "inline completions use the reasoning model" in warnings[0]
    assert all(url in warnings[0] for url in INSTRUCT)
    # Each instruct server failed once and was then skipped... until tried again, paused last.
    assert script.tried[:3] == [*script.tried[:2], REASONING]


async def test_a_keystroke_skips_servers_that_just_failed_an_action_tries_them_last():
    endpoints, _ = layer(fallback=False)
    route = endpoints.route("inline")
    everything_down = Script({url: down(url) for url in INSTRUCT})
    with pytest.raises(NoEndpointAnswered):
        await endpoints.call(route, "s", everything_down, try_paused=False)
    assert len(everything_down.tried) == 2

    skipped = Script({})
    with pytest.raises(NoEndpointAnswered, match="failed a moment ago"):
        await endpoints.call(route, "s", skipped, try_paused=False)
    assert skipped.tried == []  # no waiting on a dead server

    asked = Script({})
    assert await endpoints.call(route, "s", asked, try_paused=True) == "ok from instruct"
    assert len(asked.tried) == 1


async def test_a_request_error_is_not_retried_elsewhere():
    endpoints, notices = layer()
    route = endpoints.route("fix")
    bad = BackendError(REASONING, FailureKind.HTTP_STATUS, "HTTP 422: bad request", 422)
    script = Script({REASONING: bad})
    with pytest.raises(BackendError, match="422"):
        await endpoints.call(route, "s", script, try_paused=True)
    assert script.tried == [REASONING]
    # No fallback, no outage: that request's error, told once as such.
    assert not [n for n in notices if "meanwhile" in n.message or n.level == "error"]
    assert [n.message for n in notices] == [
        "iquest: model server http://reasoning/v1 refused a request: HTTP 422: bad request"
    ]
    assert not endpoints.outages.should_skip(REASONING)


async def test_the_fallback_notice_comes_back_after_the_endpoint_recovered_and_failed_again():
    endpoints, notices = layer()
    route = endpoints.route("explain")
    failing = Script({REASONING: down(REASONING)})
    await endpoints.call(route, "s", failing, try_paused=True)
    endpoints.outages.RETRY_AFTER_S = 0.0  # type: ignore[misc]
    await endpoints.call(route, "s", Script({}), try_paused=True)  # reasoning answers again
    await endpoints.call(route, "s", failing, try_paused=True)
    warnings = [n.message for n in notices if n.level == "warning"]
    assert len(warnings) == 2
    assert all("explanations use the instruct model meanwhile" in w for w in warnings)


async def test_a_refused_field_is_dropped_remembered_and_shared_by_every_connection():
    clients = EndpointClients()
    sent: list[dict[str, object]] = []

    async def send(fields: dict[str, object]) -> str:
        sent.append(fields)
        if "priority" in fields:
            raise refusing(REASONING, "priority")
        return "answer"

    fields = {"priority": 5, "cache_salt": "user:a"}
    assert await send_without_refused(clients.refused(REASONING), fields, send) == "answer"
    assert sent == [fields, {"cache_salt": "user:a"}]
    # Another connection's request to the same server: never sent with it again.
    sent.clear()
    assert await send_without_refused(clients.refused(REASONING), fields, send) == "answer"
    assert sent == [{"cache_salt": "user:a"}]
    # Another server has its own memory.
    assert clients.refused("http://elsewhere/v1").names == set()


async def test_an_error_naming_no_field_sent_is_not_swallowed():
    clients = EndpointClients()

    async def send(fields: dict[str, object]) -> str:
        raise refusing(REASONING, "response_format")

    with pytest.raises(BackendError, match="response_format"):
        await send_without_refused(clients.refused(REASONING), {"priority": 1}, send)
    assert clients.refused(REASONING).names == set()


async def test_one_client_per_server_and_model_shared_by_completions_and_actions():
    clients = EndpointClients()
    endpoint = EndpointConfig(base_url=REASONING)
    try:
        assert clients.chat(endpoint, "m", 30.0) is clients.chat(endpoint, "m", 30.0)
        assert clients.chat(endpoint, "m", 30.0) is not clients.chat(endpoint, "other", 30.0)
        assert clients.info(endpoint) is clients.info(endpoint)
        assert await clients.model_name(EndpointConfig(model="named")) == "named"
    finally:
        await clients.aclose()


class ScriptedChat(ChatBackend):
    """A chat backend with scripted answers: no HTTP."""

    def __init__(self, url: str, outcome: BaseException | str, log: list[tuple[str, Any]]):
        self.url, self.model = url, "scripted"
        self._outcome = outcome
        self._log = log

    async def stream(self, params: ChatParams) -> AsyncGenerator[ChatDelta, None]:
        self._log.append((self.url, dict(params.extra_body)))
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        if "priority" in params.extra_body:
            raise refusing(self.url, "priority")
        yield ChatDelta(content=self._outcome, finish_reason="stop")

    async def aclose(self) -> None:
        pass


class ScriptedClients(EndpointClients):
    def __init__(self, outcomes: dict[str, BaseException | str]) -> None:
        super().__init__()
        self.log: list[tuple[str, Any]] = []
        self._outcomes = outcomes

    def chat(self, endpoint: EndpointConfig, model: str, timeout_s: float) -> ChatBackend:
        return ScriptedChat(endpoint.base_url, self._outcomes[endpoint.base_url], self.log)


async def test_the_action_service_runs_on_an_injected_endpoint_layer():
    clients = ScriptedClients(
        {REASONING: down(REASONING), INSTRUCT[0]: "It adds.", INSTRUCT[1]: "It adds."}
    )
    notices: list[Notice] = []
    config = settings()
    config = dataclasses.replace(config, actions=dataclasses.replace(config.actions, priority=3))
    endpoints = Endpoints(lambda: config, clients, notices.append)
    service = ActionService(lambda: config, endpoints, RepositoryContext(None))
    request = ActionRequest(
        ActionKind.EXPLAIN, Place("file:///a.py", session="s"), "python", "x = 1\n", 0, 0
    )
    explanation = await service.explain(request, lambda message, share: None)
    assert explanation.markdown == "It adds."
    urls = [url for url, _ in clients.log]
    # Reasoning down -> the instruct replica; its refusal of `priority` -> sent again without.
    assert urls[0] == REASONING and urls[1] == urls[2] != REASONING
    assert "priority" in clients.log[1][1] and "priority" not in clients.log[2][1]
    assert clients.refused(urls[1]).names == {"priority"}
    assert any("explanations use the instruct model" in n.message for n in notices)

    clients._outcomes = {url: down(url) for url in (REASONING, *INSTRUCT)}
    endpoints.outages.RETRY_AFTER_S = 0.0  # type: ignore[misc]
    with pytest.raises(ActionError, match=r"explain: .*unreachable"):
        await service.explain(request, lambda message, share: None)


def test_suggestions_pause_only_while_every_current_inline_server_is_down():
    """Found in the real VS Code: a URL the user corrected stayed "down" in the status item
    forever (any server ever down counted)."""
    current = [settings(fallback=False)]
    endpoints = Endpoints(lambda: current[0], EndpointClients(), lambda notice: None)
    endpoints.outages.failed(down(INSTRUCT[0]))
    assert not endpoints.suggestions_paused()  # the other replica answers
    endpoints.outages.failed(down(INSTRUCT[1]))
    assert endpoints.suggestions_paused()
    fixed = EndpointConfig(base_url="http://instruct-c/v1", model="coder")
    current[0] = dataclasses.replace(current[0], instruct=fixed)
    assert not endpoints.suggestions_paused()


async def test_a_failure_of_a_page_under_a_server_pauses_that_server():
    """Discovery's /tokenize failing carried that page's URL: the server was never skipped
    nor shown as down (the real VS Code's status item stayed "ready" on a dead server)."""
    endpoints, notices = layer(fallback=False)

    async def attempt(replica: Replica) -> str:
        raise down(replica.url.removesuffix("/v1") + "/tokenize")

    with pytest.raises(NoEndpointAnswered):
        await endpoints.call(endpoints.route("inline"), None, attempt, try_paused=False)
    assert endpoints.suggestions_paused()
    assert all(endpoints.outages.should_skip(url) for url in INSTRUCT)
    assert INSTRUCT[0] in notices[0].message and "/tokenize" not in notices[0].message
