"""Read a vLLM server's Prometheus counters, keeping the labels tests care about."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def vllm_samples(root_url: str) -> dict[str, float]:
    """``name`` and ``name{finished_reason=...}`` -> value, summed over the other labels."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{root_url}/metrics")).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            keys = [sample.name]
            if "finished_reason" in sample.labels:
                keys.append(f"{sample.name}{{{sample.labels['finished_reason']}}}")
            for key in keys:
                samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def requests_started(samples: dict[str, float]) -> float:
    """Requests that reached the engine: each is counted once it finishes, however it ends."""
    return samples.get("vllm:request_success_total", 0.0)
