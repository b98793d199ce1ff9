"""The server's numbers, computed from the model's shape, the devices and the profile.

vLLM gives each GPU ``gpu_memory_utilization`` of its memory; weights (split over tensor
parallel ranks), activations and CUDA's own memory come out of it and the rest is KV cache.
The plan takes the smallest tensor parallel size that holds the weights *and* the profile's
full batch of full-length requests, and shows every step of the arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import LaunchProfile
from engine.deploy.hardware import GIB, Hardware
from engine.deploy.model_shape import ModelShape

# CUDA context, NCCL buffers, CUDA graphs and the allocator's slack per GPU: what vLLM finds
# used beyond weights and activations (about 1-2 GiB on H100/H200; more with NCCL).
CUDA_OVERHEAD_BYTES = int(1.5 * GIB)
NCCL_OVERHEAD_BYTES = int(0.5 * GIB)


class SizingError(ValueError):
    """The model does not fit, or a number asked for cannot work; the message names it."""


@dataclass(frozen=True)
class Plan:
    tp: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    weight_bytes: int  # the whole model
    overhead_bytes: int  # per GPU
    kv_bytes_per_token: int  # the whole model's, all ranks
    kv_tokens: int  # the server's KV cache, in tokens
    quantization: str | None
    kv_cache_dtype: str
    cpu: bool
    # Why each number is what it is, and what to watch (one line each).
    reasons: tuple[str, ...]

    @property
    def full_requests(self) -> int:
        return self.kv_tokens // self.max_model_len

    def prompts_of(self, tokens: int) -> int:
        return self.kv_tokens // max(1, tokens)


def tp_candidates(shape: ModelShape, devices: int) -> list[int]:
    """Sizes vLLM can split this model over: they divide the query and the KV heads."""
    return [
        tp for tp in range(1, devices + 1) if shape.heads % tp == 0 and shape.kv_heads % tp == 0
    ]


def overhead_bytes(shape: ModelShape, tp: int, batched_tokens: int, seqs: int) -> int:
    """Per GPU, beside weights and KV: the peak of one prefill chunk's activations (residual,
    attention and MLP intermediates of ``batched_tokens`` tokens, this rank's share of the
    MLP), the sampler's float32 logits for every running request, and CUDA's own."""
    activations = batched_tokens * (4 * shape.hidden + 2 * shape.intermediate // tp) * 2
    logits = seqs * shape.vocab * 4 * 2
    return activations + logits + CUDA_OVERHEAD_BYTES + (NCCL_OVERHEAD_BYTES if tp > 1 else 0)


def plan_server(
    shape: ModelShape,
    hardware: Hardware,
    profile: LaunchProfile,
    tp: int | None = None,
    quantization: str | None = None,
    kv_cache_dtype: str = "auto",
    memory_share: float = 1.0,
) -> Plan:
    """``memory_share``: this server's part of each GPU when two share it (``--role both``
    on one GPU)."""
    _check_quantization(shape, quantization)
    reasons: list[str] = []
    context = profile.max_model_len
    if shape.max_position_embeddings and context > shape.max_position_embeddings:
        reasons.append(
            f"context {context:,} is past the model's {shape.max_position_embeddings:,} "
            "positions: lowered to it"
        )
        context = shape.max_position_embeddings
    weights = shape.weight_bytes(quantization if quantization == "fp8" else None)
    kv_per_token = shape.kv_bytes_per_token(kv_cache_dtype)
    utilization = round(profile.gpu_memory_utilization * memory_share, 3)
    if hardware.cpu:
        return _cpu_plan(profile, context, weights, kv_per_token, hardware, kv_cache_dtype)

    candidates = tp_candidates(shape, len(hardware.gpus))
    if tp is not None:
        if tp not in tp_candidates(shape, tp):
            raise SizingError(
                f"--tp {tp} does not divide the model's {shape.heads} attention heads and "
                f"{shape.kv_heads} KV heads: choose one of {_divisors(shape)}"
            )
        if tp > len(hardware.gpus):
            raise SizingError(f"--tp {tp} needs {tp} GPUs; {len(hardware.gpus)} are given")
        candidates = [tp]
    if not candidates:
        raise SizingError(f"no tensor parallel size fits {len(hardware.gpus)} GPU(s)")

    budget = int(hardware.memory_bytes * utilization)
    wanted = profile.max_num_seqs * context
    least = profile.min_num_seqs * context
    fitted: list[tuple[int, int, int]] = []  # (tp, kv tokens, overhead)
    for size in candidates:
        overhead = overhead_bytes(shape, size, profile.max_num_batched_tokens, profile.max_num_seqs)
        room = budget - weights // size - overhead
        kv_tokens = max(0, room) * size // kv_per_token
        fitted.append((size, kv_tokens, overhead))
        if kv_tokens >= wanted:
            break
    size, kv_tokens, overhead = fitted[-1]
    if kv_tokens < least:
        largest = candidates[-1]
        raise SizingError(
            f"the model does not fit even at TP={largest}: weights {_gb(weights)} "
            f"({_gb(weights // largest)} per GPU) and {_gb(overhead)} of overhead leave "
            f"{_gb(max(0, kv_tokens * kv_per_token // largest))} per GPU for KV, "
            f"{kv_tokens:,} tokens, below {profile.min_num_seqs} x {context:,}-token requests "
            f"({least:,}); use more or larger GPUs, --quantization fp8 or --kv-cache-dtype fp8"
        )
    seqs = profile.max_num_seqs
    if kv_tokens < wanted:
        seqs = max(profile.min_num_seqs, kv_tokens // context)
        reasons.append(
            f"KV holds {kv_tokens:,} tokens, not {profile.max_num_seqs} full {context:,}-token "
            f"requests: --max-num-seqs lowered to {seqs} (more GPUs would allow "
            f"{profile.max_num_seqs})"
        )
        reasons.append(f"TP={size}: the largest these GPUs allow")
    elif len(fitted) > 1:
        reasons.append(
            f"TP={size}: at TP={fitted[-2][0]} the KV left ({fitted[-2][1]:,} tokens) "
            f"is below {profile.max_num_seqs} x {context:,}"
        )
    else:
        reasons.append(f"TP={size}: the smallest that holds weights plus the full batch")
    if size < len(hardware.gpus):
        idle = ",".join(str(g.index) for g in hardware.gpus[size:])
        reasons.append(
            f"GPU {idle} unused by this server: start a replica there "
            "(the endpoint's replicas) or the reasoning model (--role both)"
        )
    return Plan(
        tp=size,
        max_model_len=context,
        max_num_seqs=seqs,
        max_num_batched_tokens=max(profile.max_num_batched_tokens, min(context, 2048)),
        gpu_memory_utilization=utilization,
        weight_bytes=weights,
        overhead_bytes=overhead,
        kv_bytes_per_token=kv_per_token,
        kv_tokens=kv_tokens,
        quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        cpu=False,
        reasons=tuple(reasons),
    )


def _cpu_plan(
    profile: LaunchProfile,
    context: int,
    weights: int,
    kv_per_token: int,
    hardware: Hardware,
    kv_cache_dtype: str,
) -> Plan:
    kv_tokens = hardware.kv_space_bytes // kv_per_token
    if kv_tokens < context:
        raise SizingError(
            f"a KV space of {_gb(hardware.kv_space_bytes)} holds {kv_tokens:,} tokens, less "
            f"than one {context:,}-token request: raise --gpu-memory"
        )
    fits = kv_tokens // context
    seqs = min(profile.max_num_seqs, max(profile.min_num_seqs, fits))
    reasons = ["CPU: weights live in RAM; the KV cache is the space given"]
    if fits < profile.min_num_seqs:
        # Never below the profile's minimum (README): vLLM queues what the KV cannot hold.
        reasons.append(
            f"--max-num-seqs kept at the profile's minimum {seqs}: the KV space holds "
            f"{fits} full {context:,}-token request(s); more wait in vLLM's queue "
            "(--gpu-memory gives the CPU more KV space)"
        )
    elif seqs < profile.max_num_seqs:
        reasons.append(f"--max-num-seqs lowered to {seqs}: the KV space holds no more")
    return Plan(
        tp=1,
        max_model_len=context,
        max_num_seqs=seqs,
        max_num_batched_tokens=max(profile.max_num_batched_tokens, min(context, 2048)),
        gpu_memory_utilization=0.0,
        weight_bytes=weights,
        overhead_bytes=0,
        kv_bytes_per_token=kv_per_token,
        kv_tokens=kv_tokens,
        quantization=None,
        kv_cache_dtype=kv_cache_dtype,
        cpu=True,
        reasons=tuple(reasons),
    )


def _check_quantization(shape: ModelShape, quantization: str | None) -> None:
    if quantization in (None, "fp8"):
        if quantization == "fp8" and shape.quant_method not in (None, "fp8"):
            raise SizingError(
                f"the checkpoint is already {shape.quant_method}-quantized: drop --quantization"
            )
        return
    if shape.quant_method != quantization:
        found = f"{shape.quant_method}-quantized" if shape.quant_method else "not quantized"
        raise SizingError(
            f"--quantization {quantization} needs a checkpoint quantized that way (its "
            f"config.json quantization_config); this one is {found}. Only fp8 quantizes at load"
        )


def _divisors(shape: ModelShape) -> str:
    return ", ".join(map(str, tp_candidates(shape, shape.kv_heads)))


def _gb(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def describe(plan: Plan, shape: ModelShape, hardware: Hardware, editor_prompt_tokens: int) -> str:
    """The arithmetic, as a table a person can check."""
    per_gpu_kv = plan.kv_tokens * plan.kv_bytes_per_token // plan.tp
    rows = [
        ("devices", hardware.describe()),
        ("weights", _weights_line(plan, shape)),
        (
            "KV per token",
            f"{plan.kv_bytes_per_token / 1024:,.0f} KiB = 2 x {shape.layers} layers x "
            f"{shape.kv_heads} KV heads x {shape.head_dim} x "
            f"{1 if plan.kv_cache_dtype.startswith('fp8') else shape.dtype_bytes} bytes"
            + (f" ({plan.kv_cache_dtype})" if plan.kv_cache_dtype != "auto" else ""),
        ),
    ]
    if not plan.cpu:
        rows.append(
            (
                "per GPU",
                f"{_gb(hardware.memory_bytes)} x {plan.gpu_memory_utilization} = "
                f"{_gb(int(hardware.memory_bytes * plan.gpu_memory_utilization))}: weights "
                f"{_gb(plan.weight_bytes // plan.tp)}, activations and CUDA "
                f"{_gb(plan.overhead_bytes)}, KV {_gb(per_gpu_kv)}",
            )
        )
    rows += [
        (
            "KV cache",
            f"{plan.kv_tokens:,} tokens = {plan.full_requests:,} full {plan.max_model_len:,}-token "
            f"requests, or {plan.prompts_of(editor_prompt_tokens):,} editors' "
            f"{editor_prompt_tokens:,}-token prompts under per-user cache_salt",
        ),
        (
            "batch",
            f"--max-num-seqs {plan.max_num_seqs}, --max-num-batched-tokens "
            f"{plan.max_num_batched_tokens}, --max-model-len {plan.max_model_len}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  - {reason}" for reason in plan.reasons]
    return "\n".join(lines)


def _weights_line(plan: Plan, shape: ModelShape) -> str:
    source = (
        "from the checkpoint's files"
        if shape.checkpoint_bytes and not plan.quantization
        else "from config.json"
    )
    details = [f"{shape.params() / 1e9:.1f}B parameters", source]
    if plan.quantization:
        details.append(plan.quantization)
    if shape.quant_method:
        details.append(f"{shape.quant_method} {shape.quant_bits}-bit")
    line = f"{_gb(plan.weight_bytes)} ({', '.join(details)})"
    if not plan.cpu:
        line += f" over TP={plan.tp}: {_gb(plan.weight_bytes // plan.tp)} per GPU"
    return line
