"""Behind a router: do one session's requests reach one replica?

Read from the replicas' own vLLM counters (finished requests), before and after a few tiny
requests that carry one session's headers; the router's ``/list_workers`` (vllm-router) names
the replicas. Any other way of finding them is the router's own: then the check is skipped."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from dataclasses import dataclass

from engine.backends.errors import BackendError
from engine.backends.vllm_extras import ServerInfo
from engine.config import EndpointConfig
from engine.endpoints.replicas import routing_headers

FINISHED = "vllm:request_success_total"
# A router may list many replicas; reading a bounded number keeps the check quick.
MAX_REPLICAS = 16


@dataclass(frozen=True)
class AffinityCheck:
    ok: bool | None  # None: could not tell
    detail: str


def replica_endpoint(endpoint: EndpointConfig, url: str) -> EndpointConfig:
    """One replica behind ``endpoint``'s router, as an endpoint of its own."""
    return dataclasses.replace(endpoint, base_url=url.rstrip("/") + "/v1", router=False)


async def session_affinity(
    router: ServerInfo,
    endpoint: EndpointConfig,
    model: str,
    replicas: list[str] | None,
    probes: int = 3,
) -> AffinityCheck:
    """``replicas``: what the router listed (:meth:`ServerInfo.router_replicas`)."""
    if not replicas:
        return AffinityCheck(
            None, "skipped: the router does not list its replicas (vllm-router's /list_workers)"
        )
    replicas = replicas[:MAX_REPLICAS]
    infos = [ServerInfo(replica_endpoint(endpoint, url)) for url in replicas]
    try:
        before = await _finished(infos)
        if before is None:
            return AffinityCheck(None, "skipped: a replica's /metrics is not reachable from here")
        session = f"iquest-doctor-{secrets.token_hex(6)}"
        for _ in range(probes):
            await router.probe_completion(model, routing_headers(session, None))
        after = await _finished(infos)
    except BackendError as error:
        return AffinityCheck(None, f"skipped: {error}")
    finally:
        await asyncio.gather(*(info.aclose() for info in infos))
    if after is None:
        return AffinityCheck(None, "skipped: a replica's /metrics stopped answering")
    moved = {url: a - b for url, a, b in zip(replicas, after, before, strict=True) if a > b}
    spread = ", ".join(f"{url} +{count:g}" for url, count in moved.items()) or "none counted"
    detail = f"{probes} requests of one session reached {len(moved)} of {len(replicas)} replicas"
    if not moved:
        return AffinityCheck(
            None, f"{detail}: their counters did not move (are they the router's replicas?)"
        )
    if len(moved) == 1:
        return AffinityCheck(True, f"{detail} ({spread})")
    if max(moved.values()) >= probes:
        # One took them all and others moved too: other traffic, so no verdict.
        return AffinityCheck(None, f"{detail} ({spread}): other traffic, inconclusive")
    return AffinityCheck(
        False,
        f"{detail} ({spread}): the router does not keep a session on one replica "
        "(vllm-router --policy consistent_hash; the production stack: routingLogic session, "
        "sessionKey x-session-id)",
    )


async def _finished(infos: list[ServerInfo]) -> list[float] | None:
    try:
        samples = await asyncio.gather(*(info.metrics() for info in infos))
    except BackendError:
        return None
    return [sample.get(FINISHED, 0.0) for sample in samples]
