"""Health checks of the configured endpoints, as a report a person can read."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.backends.errors import BackendError, FailureKind
from engine.backends.vllm_extras import CacheConfig, ServerInfo
from engine.completion.templating.selection import choose_template, split_markers
from engine.config import EndpointConfig, LaunchProfile, Settings
from engine.definitions.repository import REPOSITORY_SHARE
from engine.deploy.editors import editors_served, sequences_for
from engine.endpoints.affinity import replica_endpoint, session_affinity
from engine.endpoints.replicas import routing_mode


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


async def diagnose(
    settings: Settings,
    profile: tuple[str, LaunchProfile] | None = None,
    editors: int | None = None,
) -> list[EndpointReport]:
    """Each endpoint's checks; with ``profile`` (name, profile), also how the running server
    compares with what that launch profile sets up; with ``editors``, whether the inline
    server runs enough sequences for them."""
    reports = [
        await _diagnose_endpoint(
            "instruct", settings.instruct, settings, profile, fim=True, editors=editors
        )
    ]
    if settings.reasoning != settings.instruct:
        reports.append(
            await _diagnose_endpoint("reasoning", settings.reasoning, settings, profile, fim=False)
        )
    return reports


async def _diagnose_endpoint(
    role: str,
    endpoint: EndpointConfig,
    settings: Settings,
    profile: tuple[str, LaunchProfile] | None,
    fim: bool,
    editors: int | None = None,
) -> EndpointReport:
    report = EndpointReport(role, endpoint.base_url)
    report.checks.append(Check("routing", True, routing_mode(endpoint)))
    info = ServerInfo(endpoint)
    # vLLM's own metrics and /server_info: behind a router, from a replica it names.
    server = info
    listed = await info.router_replicas() if endpoint.router else None
    if listed:
        server = ServerInfo(replica_endpoint(endpoint, listed[0]))
    try:
        model, cache = await _run_checks(report, info, server, endpoint, settings, fim)
        if model is not None and endpoint.router:
            affinity = await session_affinity(info, endpoint, model, listed)
            report.checks.append(Check("one session, one replica", affinity.ok, affinity.detail))
        if model is not None:
            needed = (
                settings.completion.prompt_token_budget + settings.completion.max_tokens
                if fim
                else settings.actions.prompt_token_budget
                + int(settings.completion.prompt_token_budget * REPOSITORY_SHARE)
                + settings.actions.max_tokens
            )
            await _server_checks(
                report, info, server, endpoint, model, cache, needed, profile, editors
            )
    finally:
        await info.aclose()
        if server is not info:
            await server.aclose()
    return report


async def _run_checks(
    report: EndpointReport,
    info: ServerInfo,
    server: ServerInfo,
    endpoint: EndpointConfig,
    settings: Settings,
    fim: bool,
) -> tuple[str | None, CacheConfig | None]:
    """The basic checks; the served model's name when it is served, and the server's cache
    config when its metrics say it (``server``: where vLLM's metrics are, a replica behind a
    router)."""
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
        add(Check("model list", False, f"{error}; {_next_step(error)}"))
        return None, None
    model = endpoint.model or (models[0] if models else None)
    served = model is not None and model in models
    add(Check("model served", served, f"{model} (served: {', '.join(models) or 'none'})"))
    if not served or model is None:
        return None, None
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
        cache = await server.cache_config()
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
        return model, None
    return model, cache


async def _server_checks(
    report: EndpointReport,
    info: ServerInfo,
    server: ServerInfo,
    endpoint: EndpointConfig,
    model: str,
    cache: CacheConfig | None,
    needed: int,
    profile: tuple[str, LaunchProfile] | None,
    editors: int | None = None,
) -> None:
    """What the server runs with, beside the daemon's prompts and the launch profile."""
    add = report.checks.append
    wanted = profile[1] if profile else None
    named = f"profile {profile[0]}" if profile else ""
    try:
        context = await info.max_model_len(model)
    except BackendError:
        context = None
    if context is not None:
        short = [f"the daemon's prompts need {needed:,}"] if context < needed else []
        if wanted and context < wanted.max_model_len:
            short.append(f"{named} wants {wanted.max_model_len:,}")
        add(
            Check(
                "context length",
                not short,
                f"{context:,} tokens"
                + (f": {'; '.join(short)} (--max-model-len)" if short else ""),
            )
        )
    try:
        scheduler = await server.scheduler_config()
    except BackendError:
        scheduler = None
    if scheduler is None or scheduler.policy is None:
        # /server_info is dev mode only: ask with one token that carries a priority instead.
        try:
            takes = await server.takes_priority(model)
        except BackendError:
            takes = None
        add(
            Check(
                "priority scheduling",
                takes,
                "on (a request with a priority was taken)"
                if takes
                else (
                    "off: start vLLM with --scheduling-policy priority, or completions wait "
                    "behind actions"
                    if takes is False
                    else "unknown: the server does not say; start it with "
                    "--scheduling-policy priority"
                ),
            )
        )
    else:
        add(
            Check(
                "priority scheduling",
                scheduler.policy == "priority",
                scheduler.policy
                + (
                    ""
                    if scheduler.policy == "priority"
                    else ": start vLLM with --scheduling-policy priority, or completions wait "
                    "behind actions"
                ),
            )
        )
    if scheduler is not None and scheduler.max_num_seqs is not None:
        told = endpoint.max_num_seqs
        mismatch = told is not None and told != scheduler.max_num_seqs
        add(
            Check(
                "sequence limit",
                not mismatch,
                f"--max-num-seqs {scheduler.max_num_seqs}"
                + (f" ({named}: {wanted.max_num_seqs})" if wanted else "")
                + (
                    f"; the daemon's max_num_seqs says {told}: set it to {scheduler.max_num_seqs}"
                    if mismatch
                    else ""
                ),
            )
        )
    if editors is not None:
        running = scheduler.max_num_seqs if scheduler is not None else None
        add(_editors_check(editors, running or endpoint.max_num_seqs, told_only=running is None))
    if cache is None:
        return
    if cache.kv_tokens is not None:
        detail = f"{cache.kv_tokens:,} tokens ({cache.num_blocks:,} blocks of {cache.block_size})"
        enough: bool | None = True
        if wanted:
            full = cache.kv_tokens // wanted.max_model_len
            detail += f" = {full} full {wanted.max_model_len:,}-token requests"
            if full < wanted.max_num_seqs:
                enough = None
                detail += (
                    f", fewer than {named}'s {wanted.max_num_seqs}: long requests will be "
                    "preempted (more GPU memory, TP or --kv-cache-dtype fp8)"
                )
        add(Check("KV cache", enough, detail))
    if cache.cache_dtype is not None:
        add(Check("KV cache dtype", True, cache.cache_dtype))


def _editors_check(editors: int, max_num_seqs: int | None, told_only: bool) -> Check:
    """Whether ``max_num_seqs`` sequences serve ``editors`` editors (engine.deploy.editors)."""
    needed = sequences_for(editors).max_num_seqs
    if max_num_seqs is None:
        return Check(
            "sequences for editors",
            None,
            f"{editors} editors need --max-num-seqs {needed}; the server does not say its "
            "limit (set max_num_seqs in the endpoint's settings to what vLLM runs with)",
        )
    source = "the daemon's max_num_seqs" if told_only else "--max-num-seqs"
    served = editors_served(max_num_seqs)
    if max_num_seqs >= needed:
        return Check(
            "sequences for editors", True, f"{source} {max_num_seqs} serves ~{served} editors"
        )
    return Check(
        "sequences for editors",
        False,
        f"{source} {max_num_seqs} serves ~{served} editors, fewer than {editors}: their "
        f"requests will queue at vLLM; restart it with `iquest-lsp vllm --editors {editors}` "
        f"(--max-num-seqs {needed}) or add a replica",
    )


def _next_step(error: BackendError) -> str:
    """What to do about a server that cannot list its models."""
    if error.status == 404:
        return "is base_url right? vLLM's ends in /v1 (http://HOST:8000/v1)"
    if error.status in (401, 403):
        return "the server wants a key: set api_key_env to the variable that holds it"
    if error.kind in (FailureKind.UNREACHABLE, FailureKind.TIMEOUT):
        return (
            "is vLLM running there? start it with `iquest-lsp vllm --model MODEL`, "
            "or set base_url to where it runs"
        )
    return "see the server's own log"
