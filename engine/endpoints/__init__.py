"""The model servers as the engine sees them: routing rules, replicas, health, failover, the
request fields each server refused, and one shared cache of clients."""

from engine.endpoints.action_slots import ActionSlots, budget_for
from engine.endpoints.clients import EndpointClients
from engine.endpoints.failover import Endpoints, NoEndpointAnswered, Replica
from engine.endpoints.health import OutageTracker
from engine.endpoints.refusals import RefusedFields, send_without_refused
from engine.endpoints.replicas import (
    SESSION_HEADER,
    USER_HEADER,
    routing_headers,
)
from engine.endpoints.routing import EndpointName, Route, Router

__all__ = [
    "SESSION_HEADER",
    "USER_HEADER",
    "ActionSlots",
    "EndpointClients",
    "EndpointName",
    "Endpoints",
    "NoEndpointAnswered",
    "OutageTracker",
    "RefusedFields",
    "Replica",
    "Route",
    "Router",
    "budget_for",
    "routing_headers",
    "send_without_refused",
]
