"""The parts of a vLLM server outside the OpenAI API: health, model list, tokenizer, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.backends.errors import BackendError, FailureKind
from engine.config import EndpointConfig

log = logging.getLogger(__name__)


# vLLM's /server_info collects the host's environment on its first call (4 s on two cores).
SERVER_INFO_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CacheConfig:
    prefix_caching: bool | None
    block_size: int | None
    # The KV cache's size in blocks, and the KV dtype ("auto" = the model's).
    num_blocks: int | None = None
    cache_dtype: str | None = None

    @property
    def kv_tokens(self) -> int | None:
        if self.num_blocks is None or self.block_size is None:
            return None
        return self.num_blocks * self.block_size


def vllm_request_fields(
    priority: int, cache_salt: str | None, queued_ahead: int = 0
) -> dict[str, object]:
    """vLLM's own request fields: ``priority`` (raised by the user's requests already at the
    server, engine.team.fair_share) and ``cache_salt``; only those that are set."""
    fields: dict[str, object] = {}
    if priority or queued_ahead:
        fields["priority"] = priority + queued_ahead
    if cache_salt:
        fields["cache_salt"] = cache_salt
    return fields


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_seqs: int | None
    policy: str | None  # "fcfs" or "priority"


def _positive(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else None  # type: ignore[return-value]


def _integer(label: str | None) -> int | None:
    return int(label) if label and label.isdigit() else None


def server_root(base_url: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000``: vLLM's extras live beside ``/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


class ServerInfo:
    def __init__(self, endpoint: EndpointConfig, timeout_s: float = 5.0) -> None:
        self.base_url = endpoint.base_url
        self.root = server_root(endpoint.base_url)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=endpoint.connect_timeout_s),
            headers={"Authorization": f"Bearer {endpoint.api_key()}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def healthy(self) -> bool:
        try:
            response = await self._client.get(f"{self.root}/health")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def served_models(self) -> list[str]:
        data = await self._get_json(f"{self.base_url.rstrip('/')}/models")
        try:
            return [str(item["id"]) for item in data["data"]]  # type: ignore[index]
        except (KeyError, TypeError) as exc:
            raise BackendError(
                self.base_url, FailureKind.MALFORMED, "model list without ids"
            ) from exc

    async def model_root(self, model: str) -> str | None:
        """Where the server loaded ``model`` from (vLLM's ``root`` in the model list)."""
        data = await self._get_json(f"{self.base_url.rstrip('/')}/models")
        items = data.get("data") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("id") == model:
                root = item.get("root")
                return root if isinstance(root, str) else None
        return None

    async def token_count(self, model: str, text: str) -> int:
        """How many tokens the served tokenizer makes of ``text`` (no BOS or other specials)."""
        body = {"model": model, "prompt": text, "add_special_tokens": False}
        data = await self._post_json(f"{self.root}/tokenize", body)
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise BackendError(self.root, FailureKind.MALFORMED, "/tokenize answer without tokens")
        return len(tokens)

    async def metrics(self) -> dict[str, float]:
        """Prometheus samples summed over labels, by sample name (``vllm:..._total``)."""
        text = await self._get_text(f"{self.root}/metrics")
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    async def router_replicas(self) -> list[str] | None:
        """The replicas a vllm-router sends to (its ``/list_workers``); None when it says none."""
        try:
            data = await self._get_json(f"{self.root}/list_workers")
        except BackendError:
            return None
        urls = data.get("urls") if isinstance(data, dict) else None
        if not isinstance(urls, list):
            return None
        return [url for url in urls if isinstance(url, str)]

    async def probe_completion(self, model: str, headers: dict[str, str]) -> None:
        """One tiny completion (a token), as the daemon sends it: for checks, not suggestions."""
        body = {"model": model, "prompt": "def", "max_tokens": 1}
        await self._request(
            "POST", f"{self.base_url.rstrip('/')}/completions", json=body, headers=headers
        )

    async def cache_config(self) -> CacheConfig:
        text = await self._get_text(f"{self.root}/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("vllm:cache_config_info"):
                    labels = sample.labels
                    prefix = labels.get("enable_prefix_caching")
                    return CacheConfig(
                        prefix_caching=None if prefix is None else prefix.lower() == "true",
                        block_size=_integer(labels.get("block_size")),
                        num_blocks=_integer(labels.get("num_gpu_blocks")),
                        cache_dtype=labels.get("cache_dtype"),
                    )
        return CacheConfig(prefix_caching=None, block_size=None)

    async def scheduler_config(self) -> SchedulerConfig | None:
        """The scheduler's settings from vLLM's ``/server_info``, which only a server in dev
        mode (``VLLM_SERVER_DEV_MODE=1``) has: None where it is missing. Raises BackendError
        when the server does not answer at all."""
        url = f"{self.root}/server_info"
        try:
            # Its first answer gathers the host's environment: seconds, once.
            response = await self._client.get(
                url, params={"config_format": "json"}, timeout=SERVER_INFO_TIMEOUT_S
            )
        except httpx.TimeoutException as exc:
            raise BackendError(url, FailureKind.TIMEOUT, "no answer in time") from exc
        except httpx.HTTPError as exc:
            raise BackendError(url, FailureKind.UNREACHABLE, str(exc) or "no answer") from exc
        if response.status_code != 200:
            return None
        try:
            scheduler = response.json()["vllm_config"]["scheduler_config"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(scheduler, dict):
            return None
        policy = scheduler.get("policy")
        return SchedulerConfig(
            max_num_seqs=_positive(scheduler.get("max_num_seqs")),
            policy=policy if isinstance(policy, str) else None,
        )

    async def takes_priority(self, model: str) -> bool | None:
        """Whether the server schedules by priority, asked with a one-token request carrying
        a non-zero ``priority`` (vLLM refuses one, HTTP 400 naming it, unless it runs
        ``--scheduling-policy priority``); None when the answer says neither."""
        url = f"{self.base_url.rstrip('/')}/completions"
        body = {"model": model, "prompt": "x", "max_tokens": 1, "priority": 1}
        try:
            await self._post_json(url, body)
        except BackendError as error:
            if error.status == 400 and "priority" in error.detail.lower():
                return False
            if error.status is not None and error.status < 500:
                return None
            raise
        return True

    async def max_num_seqs(self) -> int | None:
        config = await self.scheduler_config()
        return config.max_num_seqs if config is not None else None

    async def max_model_len(self, model: str) -> int | None:
        """The context the server allows ``model`` (vLLM's model list says it)."""
        data = await self._get_json(f"{self.base_url.rstrip('/')}/models")
        items = data.get("data") if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("id") == model:
                return _positive(item.get("max_model_len"))
        return None

    async def _get_json(self, url: str) -> object:
        response = await self._request("GET", url)
        return self._json(response)

    async def _post_json(self, url: str, body: dict[str, object]) -> object:
        response = await self._request("POST", url, json=body)
        return self._json(response)

    async def _get_text(self, url: str) -> str:
        return (await self._request("GET", url)).text

    async def _request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException as exc:
            raise BackendError(url, FailureKind.TIMEOUT, "no answer in time") from exc
        except httpx.HTTPError as exc:
            raise BackendError(
                url, FailureKind.UNREACHABLE, str(exc) or type(exc).__name__
            ) from exc
        if response.status_code >= 400:
            raise BackendError(
                url,
                FailureKind.HTTP_STATUS,
                f"HTTP {response.status_code}: {response.text[:200]}",
                status=response.status_code,
            )
        return response

    @staticmethod
    def _json(response: httpx.Response) -> object:
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(str(response.url), FailureKind.MALFORMED, "not JSON") from exc
