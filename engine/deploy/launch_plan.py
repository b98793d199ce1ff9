"""From what the user asked (model, role, profile, devices) to the servers to start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from engine.config import LaunchProfile
from engine.deploy.command import ServerLaunch
from engine.deploy.editors import sequences_for
from engine.deploy.hardware import Gpu, Hardware, choose_hardware
from engine.deploy.model_shape import read_shape, resolve_model
from engine.deploy.profiles import profile_named
from engine.deploy.sizing import SizingError, plan_server

Role = Literal["instruct", "reasoning", "both"]
DEFAULT_PROFILE = {"instruct": "completion", "reasoning": "agent"}


@dataclass(frozen=True)
class LaunchRequest:
    model: str
    role: Role = "instruct"
    # --role both: the reasoning (Thinking) model beside ``model`` (the instruct one).
    reasoning_model: str | None = None
    # None: completion for the instruct server, agent for the reasoning one.
    profile: str | None = None
    tp: int | None = None  # None: the smallest that fits
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    gpus: tuple[int, ...] | None = None
    gpu_memory_gib: float | None = None
    device: Literal["auto", "cuda", "cpu"] = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    extra_args: tuple[str, ...] = ()
    # The editors the instruct server is for: its --max-num-seqs is sized from them.
    editors: int | None = None


def plan_launch(
    request: LaunchRequest, listed: list[Gpu], profiles: Mapping[str, LaunchProfile]
) -> list[ServerLaunch]:
    hardware = choose_hardware(listed, request.device, request.gpus, request.gpu_memory_gib)
    if request.role != "both":
        return [
            _server(request, request.role, request.model, hardware, 1.0, request.port, profiles)
        ]
    if request.reasoning_model is None:
        raise SizingError("--role both needs --reasoning-model (the Thinking model's folder)")
    if hardware.cpu or len(hardware.gpus) == 1:
        # One device: each server takes half of its memory.
        halves, share = (hardware, hardware), 0.5
    else:
        halves, share = hardware.split(), 1.0
    return [
        _server(request, "instruct", request.model, halves[0], share, request.port, profiles),
        _server(
            request,
            "reasoning",
            request.reasoning_model,
            halves[1],
            share,
            request.port + 1,
            profiles,
        ),
    ]


def _server(
    request: LaunchRequest,
    role: Literal["instruct", "reasoning"],
    model_spec: str,
    hardware: Hardware,
    share: float,
    port: int,
    profiles: Mapping[str, LaunchProfile],
) -> ServerLaunch:
    model = resolve_model(model_spec)
    shape = read_shape(model.folder)
    profile = profile_named(request.profile or DEFAULT_PROFILE[role], profiles)
    sizing = sequences_for(request.editors) if request.editors and role == "instruct" else None
    if sizing is not None:
        profile = replace(
            profile,
            max_num_seqs=sizing.max_num_seqs,
            min_num_seqs=min(profile.min_num_seqs, sizing.max_num_seqs),
        )
    plan = plan_server(
        shape,
        hardware,
        profile,
        tp=request.tp,
        quantization=request.quantization,
        kv_cache_dtype=request.kv_cache_dtype,
        memory_share=share,
    )
    if sizing is not None:
        plan = replace(plan, reasons=(sizing.reason(), *plan.reasons))
    return ServerLaunch(
        role=role,
        model=model,
        shape=shape,
        hardware=hardware,
        plan=plan,
        host=request.host,
        port=port,
        extra_args=request.extra_args,
    )
