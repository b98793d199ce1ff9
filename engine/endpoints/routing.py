"""Which endpoint serves a request: documented rules from ``[routing]`` settings.

Defaults: inline completions -> instruct; explain, fix, find bugs, ask -> reasoning. Optional:
a short explanation goes to the instruct model (``short_explain_lines``). With ``fallback``,
a request whose endpoint is down goes to the other one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.backends.errors import BackendError, FailureKind
from engine.config import EndpointConfig, RoutingConfig, Settings
from engine.endpoints.replicas import replica_urls

EndpointName = Literal["instruct", "reasoning"]
# What is asked: "inline", or an action kind's value ("explain", "fix", "find_bugs", "ask").
Task = str

# How the user's messages name each task ("... use the instruct model meanwhile").
_TASK_NAMES = {
    "inline": "inline completions",
    "explain": "explanations",
    "fix": "fixes",
    "find_bugs": "bug searches",
    "ask": "questions",
}


@dataclass(frozen=True)
class Route:
    endpoint: EndpointName
    fallback: EndpointName | None
    reason: str
    # The task in the user's words, plural ("inline completions").
    task: str = "requests"


def other(name: EndpointName) -> EndpointName:
    return "reasoning" if name == "instruct" else "instruct"


class Router:
    def __init__(self, rules: RoutingConfig) -> None:
        self.rules = rules

    def route(self, task: Task, selected_lines: int = 0) -> Route:
        rules = self.rules
        if task == "inline":
            endpoint, reason = rules.inline, "inline completion"
        elif (
            task == "explain"
            and rules.short_explain_lines > 0
            and 0 < selected_lines <= rules.short_explain_lines
        ):
            endpoint = "instruct"
            reason = f"short explanation ({selected_lines} <= {rules.short_explain_lines} lines)"
        else:
            endpoint, reason = getattr(rules, task), f"{task} rule"
        return Route(
            endpoint,
            other(endpoint) if rules.fallback else None,
            reason,
            _TASK_NAMES.get(task, f"{task} requests"),
        )


def worth_falling_back(error: BackendError) -> bool:
    """Down, silent or failing inside: another endpoint may do better. A 4xx would fail there
    too (it is about the request)."""
    if error.kind in (FailureKind.UNREACHABLE, FailureKind.TIMEOUT):
        return True
    return error.status is not None and error.status >= 500


def endpoints_in_order(route: Route, settings: Settings) -> list[EndpointName]:
    """The route's endpoint, then its fallback when that is other servers (an unset reasoning
    endpoint is the instruct one: falling back to it would only ask the same servers twice)."""
    names: list[EndpointName] = [route.endpoint]
    if route.fallback is not None and set(
        replica_urls(endpoint_config(settings, route.fallback))
    ) != set(replica_urls(endpoint_config(settings, route.endpoint))):
        names.append(route.fallback)
    return names


def endpoint_label(settings: Settings, name: EndpointName) -> str:
    """The endpoint's server(s), for messages to the user."""
    return ", ".join(replica_urls(endpoint_config(settings, name)))


def endpoint_config(settings: Settings, name: EndpointName) -> EndpointConfig:
    endpoint: EndpointConfig = getattr(settings, name)
    return endpoint
