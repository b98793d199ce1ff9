"""Health checks of the configured endpoints, as a report a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.backends.errors import BackendError
from engine.backends.vllm_extras import ServerInfo
from engine.completion.templating.selection import choose_template, split_markers
from engine.config import EndpointConfig, Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: could not tell
    detail: str


@dataclass
class EndpointReport:
    role: str
    url: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok is not False for check in self.checks)


async def diagnose(settings: Settings) -> list[EndpointReport]:
    reports = [await _diagnose_endpoint("instruct", settings.instruct, settings, fim=True)]
    if settings.reasoning != settings.instruct:
        reports.append(
            await _diagnose_endpoint("reasoning", settings.reasoning, settings, fim=False)
        )
    return reports


async def _diagnose_endpoint(
    role: str, endpoint: EndpointConfig, settings: Settings, fim: bool
) -> EndpointReport:
    report = EndpointReport(role, endpoint.base_url)
    info = ServerInfo(endpoint)
    try:
        await _run_checks(report, info, endpoint, settings, fim)
    finally:
        await info.aclose()
    return report


async def _run_checks(
    report: EndpointReport,
    info: ServerInfo,
    endpoint: EndpointConfig,
    settings: Settings,
    fim: bool,
) -> None:
    add = report.checks.append
    healthy = await info.healthy()
    add(
        Check(
            "server answers /health",
            healthy,
            info.root if healthy else f"no healthy answer from {info.root}/health",
        )
    )
    try:
        models = await info.served_models()
    except BackendError as error:
        add(Check("model list", False, str(error)))
        return
    model = endpoint.model or (models[0] if models else None)
    served = model is not None and model in models
    add(Check("model served", served, f"{model} (served: {', '.join(models) or 'none'})"))
    if not served or model is None:
        return
    try:
        await info.token_count(model, "x")
        can_tokenize = True
    except BackendError:
        can_tokenize = False
    add(
        Check(
            "tokenizer endpoint /tokenize",
            can_tokenize or None,
            "available" if can_tokenize else "absent (not vLLM?): FIM markers unchecked",
        )
    )

    async def count(text: str) -> int:
        return await info.token_count(model, text)

    if fim:
        choice = await choose_template(
            model, settings.completion.template, count if can_tokenize else None
        )
        add(
            Check(
                "prompt template",
                choice.warning is None,
                f"{choice.template.name} ({choice.reason})"
                + (f"; {choice.warning}" if choice.warning else ""),
            )
        )
        if choice.template.is_fim and can_tokenize:
            broken = await split_markers(choice.template, count)
            add(
                Check(
                    "FIM markers are single tokens",
                    not broken,
                    "yes" if not broken else f"split: {', '.join(broken)}",
                )
            )
    try:
        cache = await info.cache_config()
        add(
            Check(
                "prefix caching",
                cache.prefix_caching,
                "unknown (no vllm:cache_config_info metric)"
                if cache.prefix_caching is None
                else (
                    "on" if cache.prefix_caching else "OFF: start vLLM with --enable-prefix-caching"
                )
                + (f", block size {cache.block_size}" if cache.block_size else ""),
            )
        )
    except BackendError as error:
        add(Check("prefix caching", None, f"metrics unavailable: {error}"))
