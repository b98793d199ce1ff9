"""Settings: one dataclass tree, filled from layers with a fixed precedence.

Precedence, lowest to highest (a later layer overrides a key of an earlier one):
  1. built-in defaults
  2. the TOML file (``$IQUEST_CONFIG`` or ``<user config dir>/iquest-lsp/config.toml``)
  3. environment variables (``IQUEST_*``, table ``ENVIRONMENT_KEYS``)
  4. the editor's ``initializationOptions``
  5. the editor's settings (``workspace/configuration`` section ``iquest``), re-read on
     ``workspace/didChangeConfiguration``
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

APP_NAME = "iquest-lsp"
# The most suggestions one explicit request may ask for (completion.candidates).
MAX_CANDIDATES = 8
_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EndpointConfig:
    __pydantic_config__ = _STRICT

    base_url: str = "http://127.0.0.1:8000/v1"
    # None: use the first model the server lists.
    model: str | None = None
    # The key itself never lives in a file: only the name of the variable holding it.
    api_key_env: str = "IQUEST_API_KEY"
    connect_timeout_s: float = 2.0
    timeout_s: float = 30.0
    # Equivalent replicas of this endpoint (replacing base_url when set): each session sticks
    # to one by rendezvous hashing and fails over to the next (engine/endpoints/replicas.py).
    replicas: tuple[str, ...] = ()
    # base_url is a router (vllm-router, the production stack's): everything goes there and the
    # router picks the replica (X-Session-ID); no replica choice or pause on the daemon's side.
    router: bool = False
    # The server's --max-num-seqs (each replica's), when known: the actions' budget leaves
    # completions a free slot under it. Unset: asked of the server where it says (vLLM in
    # dev mode), else a conservative budget (engine/endpoints/action_slots.py).
    max_num_seqs: Annotated[int, Field(ge=1)] | None = None

    def __post_init__(self) -> None:
        if self.router and self.replicas:
            raise ValueError(
                "router = true sends everything to base_url (the router picks the replica); "
                "drop replicas, or drop router to let the daemon pick among them"
            )

    def api_key(self) -> str:
        # The openai client insists on a key; vLLM without --api-key accepts any.
        return os.environ.get(self.api_key_env) or "EMPTY"


@dataclass(frozen=True)
class CompletionConfig:
    __pydantic_config__ = _STRICT

    debounce_ms: int = 75
    max_tokens: int = 128
    # A single-line suggestion stops at the line's end anyway; this caps a runaway line (a long
    # string, a minified blob) so it cannot hold a sequence slot for the whole max_tokens.
    max_tokens_single_line: Annotated[int, Field(ge=1)] = 64
    temperature: float = 0.2
    top_p: float = 0.95
    # Tokens of prompt; the context stage trims the window to fit.
    prompt_token_budget: int = 2048
    # "auto" detects from the served model's name and the server's tokenizer.
    template: str = "auto"
    multiline: Literal["auto", "always", "never"] = "auto"
    # vLLM priority (lower runs first); sent only when the server schedules by priority.
    priority: int = 0
    # An explicit request (the editor's "trigger suggestion", cycling) asks for this many
    # suggestions in one request (vLLM's n: one prompt, cached once); automatic ones for one.
    candidates: Annotated[int, Field(ge=1, le=MAX_CANDIDATES)] = 3
    # Sampling temperature when several are asked: at a low one they come out the same.
    candidates_temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.8
    # "stable" keeps the prompt's start fixed for vLLM's prefix cache; "naive" re-orders context
    # per request and slides the window per line (most assistants' layout: a benchmark baseline).
    layout: Literal["stable", "naive"] = "stable"
    # Where the cursor's line goes: after the FIM middle marker (typing along a line only
    # appends to the prompt) or at the end of the prefix (plain PSM).
    cursor_line: Literal["middle", "prefix"] = "middle"
    # vLLM cache_salt: only requests with the same salt share cached blocks (tenant isolation).
    cache_salt: str | None = None
    # Inline completions are latency-bound: give up on a slow backend sooner than actions do.
    timeout_s: float = 10.0
    # Typing what a request still streaming has produced so far waits for that request (its
    # answer holds the rest) instead of cancelling it and sending another.
    continue_streaming: bool = True
    # Benchmarks only (bench/capacity.py): every request decodes a fixed number of tokens
    # (vLLM's min_tokens = max_tokens, ignore_eos, no stop strings; single-line 8-24, multi-line
    # 40-128, drawn per request) and is read to its end, so random weights do not decide how
    # long a suggestion is. Never for users: it wastes the GPU on tokens nobody sees.
    bench_fixed_lengths: bool = False


@dataclass(frozen=True)
class ActionsConfig:
    """Explain, fix, find bugs, ask: long answers from the reasoning model."""

    __pydantic_config__ = _STRICT

    # The IQuest Thinking model's recommended sampling.
    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 4096
    # Tokens of prompt for the code around the selection (the repository context is extra).
    prompt_token_budget: int = 6144
    # Show the model's reasoning (in explanations, and in a fix's report); never in an edit.
    show_thinking: bool = False
    # vLLM priority of actions (lower runs first): inline completions (0) go before them.
    priority: int = 10
    # Find bugs: ask the server for schema-constrained JSON (vLLM structured outputs).
    structured_outputs: bool = True
    # Fix: ask for {"replacement": "..."} under a JSON grammar instead of a fenced block. Sure
    # to parse, at some cost in quality; useful for small models that wander off the format.
    structured_fix: bool = False
    timeout_s: float = 300.0
    # Actions running at once on one server, for the whole daemon (split over --workers);
    # more wait in the daemon, round robin by user. 0: derived from the server's sequence
    # limit, leaving completions a free slot.
    max_running: Annotated[int, Field(ge=0)] = 0


@dataclass(frozen=True)
class LaunchProfile:
    """How ``iquest-lsp vllm`` sizes a server (``prompts/vllm/profiles.toml``; a config file
    adds its own under ``[profiles.NAME]``)."""

    __pydantic_config__ = _STRICT

    description: str = ""
    max_model_len: Annotated[int, Field(ge=256)] = 8192
    max_num_seqs: Annotated[int, Field(ge=1)] = 32
    # The least the plan may lower max_num_seqs to (KV room) before it takes more GPUs.
    min_num_seqs: Annotated[int, Field(ge=1)] = 1
    max_num_batched_tokens: Annotated[int, Field(ge=256)] = 8192
    gpu_memory_utilization: Annotated[float, Field(gt=0.05, le=0.99)] = 0.90


@dataclass(frozen=True)
class RoutingConfig:
    """Which endpoint serves what. Defaults: inline -> instruct, actions -> reasoning."""

    __pydantic_config__ = _STRICT

    inline: Literal["instruct", "reasoning"] = "instruct"
    explain: Literal["instruct", "reasoning"] = "reasoning"
    fix: Literal["instruct", "reasoning"] = "reasoning"
    find_bugs: Literal["instruct", "reasoning"] = "reasoning"
    ask: Literal["instruct", "reasoning"] = "reasoning"
    # An explanation of at most this many lines goes to the instruct model (0: never).
    short_explain_lines: int = 0
    # When the chosen endpoint is down, try the other one (and say so once).
    fallback: bool = True


@dataclass(frozen=True)
class IndexConfig:
    __pydantic_config__ = _STRICT

    enabled: bool = True
    # Extra glob patterns of files never indexed nor completed in (secrets), beside the
    # built-in list (.env, keys, certificates, credentials, ...).
    exclude: tuple[str, ...] = ()
    # Default: the user cache directory.
    cache_dir: str | None = None


@dataclass(frozen=True)
class Settings:
    __pydantic_config__ = _STRICT

    instruct: EndpointConfig = field(default_factory=EndpointConfig)
    reasoning: EndpointConfig = field(default_factory=EndpointConfig)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    # Launch profiles beside the built-in ones (``iquest-lsp vllm --profile NAME``).
    profiles: dict[str, LaunchProfile] = field(default_factory=dict)
    log_file: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


_SETTINGS_ADAPTER = TypeAdapter(Settings)

# Environment variable -> dotted settings key.
ENVIRONMENT_KEYS: dict[str, str] = {
    "IQUEST_INSTRUCT_URL": "instruct.base_url",
    "IQUEST_INSTRUCT_MODEL": "instruct.model",
    "IQUEST_INSTRUCT_API_KEY_ENV": "instruct.api_key_env",
    "IQUEST_REASONING_URL": "reasoning.base_url",
    "IQUEST_REASONING_MODEL": "reasoning.model",
    "IQUEST_REASONING_API_KEY_ENV": "reasoning.api_key_env",
    "IQUEST_TEMPLATE": "completion.template",
    "IQUEST_DEBOUNCE_MS": "completion.debounce_ms",
    "IQUEST_MAX_TOKENS": "completion.max_tokens",
    "IQUEST_PROMPT_TOKEN_BUDGET": "completion.prompt_token_budget",
    "IQUEST_LOG_FILE": "log_file",
    "IQUEST_LOG_LEVEL": "log_level",
}


class SettingsError(ValueError):
    """A layer of configuration that cannot be used; the message says which key and why."""


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_log_path() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME)) / "iquest-lsp.log"


def config_path_from_environment() -> Path:
    override = os.environ.get("IQUEST_CONFIG")
    return Path(override).expanduser() if override else default_config_path()


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML layer; a missing file is an empty layer, a broken one an error."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc


def environment_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for variable, dotted in ENVIRONMENT_KEYS.items():
        if variable in environ:
            _set_dotted(layer, dotted, environ[variable])
    return layer


def merge_layers(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            _deep_merge(merged, layer)
    return merged


def build_settings(merged: Mapping[str, Any]) -> Settings:
    merged = dict(merged)
    copied = "reasoning" not in merged and "instruct" in merged
    if copied:
        # One deployment serving both: actions go where completions go unless told otherwise.
        merged["reasoning"] = merged["instruct"]
    try:
        return _SETTINGS_ADAPTER.validate_python(merged)
    except ValidationError as exc:
        problems = [
            _problem(error["loc"], error["type"], error["msg"])
            for error in exc.errors()
            # The copy of [instruct] is not something the user wrote: its errors are
            # [instruct]'s, said once.
            if not (copied and error["loc"][:1] == ("reasoning",))
        ]
        raise SettingsError(f"invalid settings: {'; '.join(problems)}") from exc


def _problem(location: tuple[Any, ...], kind: str, message: str) -> str:
    dotted = ".".join(str(part) for part in location)
    if kind != "unexpected_keyword_argument":
        return f"{dotted}: {message}"
    # A misspelled key: say so, and which key was probably meant.
    known = _known_keys(location[:-1])
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{dotted}: not a setting{hint}"


def _known_keys(table: tuple[Any, ...]) -> list[str]:
    """The keys of the settings table at ``table`` (a dotted path), if it is one."""
    model: Any = Settings
    for part in table:
        field = getattr(model, "__dataclass_fields__", {}).get(part) or getattr(
            model, "model_fields", {}
        ).get(part)
        if field is None:
            return []
        model = getattr(field, "type", None) or getattr(field, "annotation", None)
        if isinstance(model, str):
            model = _resolve_annotation(model)
    fields = getattr(model, "__dataclass_fields__", None) or getattr(model, "model_fields", {})
    return list(fields)


def _resolve_annotation(name: str) -> Any:
    return globals().get(name.split("|")[0].strip())


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _deep_merge(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = {}
            _deep_merge(target[key], value)
        else:
            target[key] = value
