"""The team daemon's Prometheus metrics. Labels are fixed by the daemon (never a value a
client sent), and with worker processes every worker's values are summed at scrape time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from engine.metrics import CompletionStats


@dataclass
class DaemonMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # livesum: with worker processes, the sum over the live ones (a user connected to two
        # workers counts twice).
        self.connections = Gauge(
            "iquest_connections",
            "open editor connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sockets = Gauge(
            "iquest_open_sockets",
            "sockets holding a connection slot (authenticated or not yet)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.users = Gauge(
            "iquest_users", "distinct users connected", registry=r, multiprocess_mode="livesum"
        )
        self.refused = Counter(
            "iquest_refused_connections_total", "connections refused", ["reason"], registry=r
        )
        self.requests = Counter(
            "iquest_completion_requests_total", "inline completion requests", registry=r
        )
        self.prompt_tokens = Counter(
            "iquest_prompt_tokens_total", "prompt tokens sent to vLLM", registry=r
        )
        self.overhead = Histogram(
            "iquest_request_overhead_seconds",
            "the daemon's own time per backend request (context, prompt, budget)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=r,
        )
        self.latency = Histogram(
            "iquest_completion_latency_seconds",
            "inline suggestion latency, request to answer",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0),
            registry=r,
        )
        self.cancelled = Counter(
            "iquest_cancelled_requests_total",
            "inline requests cancelled or superseded",
            registry=r,
        )
        self.limited = Counter(
            "iquest_limited_messages_total",
            "messages refused by a per-user limit",
            ["method"],
            registry=r,
        )
        self.cached_tokens = Counter(
            "iquest_cached_prompt_tokens_total",
            "prompt tokens vLLM served from its cache",
            registry=r,
        )

        # Actions held back by the budget that leaves completions a free slot (all servers).
        self.actions_running = Gauge(
            "iquest_actions_running",
            "actions running at the model servers",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.actions_queued = Gauge(
            "iquest_actions_queued",
            "actions waiting in the daemon for a slot",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.action_queue_wait = Histogram(
            "iquest_action_queue_wait_seconds",
            "time an action waited in the daemon before it was sent",
            buckets=(0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=r,
        )

    # engine.endpoints.action_slots.SlotObserver
    def slots_changed(self, running: int, queued: int) -> None:
        self.actions_running.set(running)
        self.actions_queued.set(queued)

    def waited(self, seconds: float) -> None:
        self.action_queue_wait.observe(seconds)

    def scrape(self) -> bytes:
        return generate_latest(_scrape_registry(self.registry))


class StatsAccount:
    """Folds one connection's completion counters into the daemon's metrics, as they grow."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics
        self._seen = (0, 0, 0, 0, 0, 0)

    def fold(self, stats: CompletionStats) -> None:
        now = (
            stats.requests,
            stats.prompt_tokens,
            stats.cached_tokens,
            stats.backend_requests,
            stats.suggestions,
            stats.cancelled + stats.superseded,
        )
        seen, metrics = self._seen, self._metrics
        metrics.requests.inc(now[0] - seen[0])
        metrics.prompt_tokens.inc(now[1] - seen[1])
        metrics.cached_tokens.inc(now[2] - seen[2])
        metrics.cancelled.inc(now[5] - seen[5])
        for sample in stats.overheads_ms.newest(now[3] - seen[3]):
            metrics.overhead.observe(sample / 1000)
        for sample in stats.latencies_ms.newest(now[4] - seen[4]):
            metrics.latency.observe(sample / 1000)
        self._seen = now


def _scrape_registry(own: CollectorRegistry) -> CollectorRegistry:
    """This process's metrics, or with worker processes every worker's, summed (prometheus
    multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return own
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
