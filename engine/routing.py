"""Which endpoint serves a request: documented rules from ``[routing]`` settings.

Defaults: inline completions -> instruct; explain, fix, find bugs, ask -> reasoning. Optional:
a short explanation goes to the instruct model (``short_explain_lines``). With ``fallback``,
a request whose endpoint is down goes to the other one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.actions.types import ActionKind
from engine.backends.errors import BackendError, FailureKind
from engine.config import EndpointConfig, RoutingConfig, Settings
from engine.replicas import replica_urls

EndpointName = Literal["instruct", "reasoning"]


@dataclass(frozen=True)
class Route:
    endpoint: EndpointName
    fallback: EndpointName | None
    reason: str


def other(name: EndpointName) -> EndpointName:
    return "reasoning" if name == "instruct" else "instruct"


class Router:
    def __init__(self, rules: RoutingConfig) -> None:
        self.rules = rules

    def route(self, kind: ActionKind | Literal["inline"], selected_lines: int = 0) -> Route:
        rules = self.rules
        if kind == "inline":
            endpoint, reason = rules.inline, "inline completion"
        elif (
            kind is ActionKind.EXPLAIN
            and rules.short_explain_lines > 0
            and 0 < selected_lines <= rules.short_explain_lines
        ):
            endpoint = "instruct"
            reason = f"short explanation ({selected_lines} <= {rules.short_explain_lines} lines)"
        else:
            endpoint, reason = getattr(rules, kind.value), f"{kind.value} rule"
        return Route(endpoint, other(endpoint) if rules.fallback else None, reason)


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
    if route.fallback is not None and set(replica_urls(_config(settings, route.fallback))) != set(
        replica_urls(_config(settings, route.endpoint))
    ):
        names.append(route.fallback)
    return names


def endpoint_label(settings: Settings, name: EndpointName) -> str:
    """The endpoint's server(s), for messages to the user."""
    return ", ".join(replica_urls(_config(settings, name)))


def _config(settings: Settings, name: EndpointName) -> EndpointConfig:
    endpoint: EndpointConfig = getattr(settings, name)
    return endpoint
