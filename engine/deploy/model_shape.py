"""A model's shape, read from its ``config.json``: what its weights and its KV cache cost.

The model is a local folder, or a hub id already in the local Hugging Face cache: nothing is
fetched (a hub id takes the same path as a folder, once resolved to its cached snapshot)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import try_to_load_from_cache

DTYPE_BYTES = {
    "float32": 4,
    "float": 4,
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "fp8": 1,
    "float8_e4m3fn": 1,
}


class ModelShapeError(ValueError):
    """The model cannot be found or read; the message says what to do."""


@dataclass(frozen=True)
class LocalModel:
    folder: Path
    # The name it is served under: the hub id, or the folder's name.
    name: str


def resolve_model(spec: str) -> LocalModel:
    """A folder as it is; ``org/name`` from the local Hugging Face cache (never downloaded)."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelShapeError(f"{folder} has no config.json: is it a model folder?")
        return LocalModel(folder.resolve(), folder.resolve().name)
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        cached = try_to_load_from_cache(spec, "config.json")
        if isinstance(cached, str):
            return LocalModel(Path(cached).parent, spec)
        raise ModelShapeError(
            f"{spec} is not in the local Hugging Face cache and nothing is downloaded here: "
            f"fetch it first (`hf download {spec}`) or pass the model's folder"
        )
    raise ModelShapeError(f"no model folder at {folder}")


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    tied_embeddings: bool
    dtype_bytes: int
    # (experts, each expert's intermediate size, shared experts' intermediate size): MoE only.
    experts: tuple[int, int, int] | None = None
    # The checkpoint's own quantization (config.json quantization_config): "awq", "gptq", ...
    quant_method: str | None = None
    quant_bits: int | None = None
    # Bytes of the checkpoint's weight files, when they are there (dummy-weight folders have
    # none): exact, where the shape only estimates.
    checkpoint_bytes: int | None = None
    # Custom modelling code (config.json auto_map): vLLM needs --trust-remote-code.
    remote_code: bool = False
    max_position_embeddings: int | None = None

    # --- what it costs ---------------------------------------------------------------------
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def linear_params(self) -> int:
        """Parameters of the transformer layers' matrices (what fp8/AWQ/GPTQ quantize)."""
        q = self.hidden * self.heads * self.head_dim
        kv = 2 * self.hidden * self.kv_heads * self.head_dim
        out = self.heads * self.head_dim * self.hidden
        if self.experts is None:
            mlp = 3 * self.hidden * self.intermediate
        else:
            count, expert, shared = self.experts
            mlp = 3 * self.hidden * (count * expert + shared) + self.hidden * count  # + router
        return self.layers * (q + kv + out + mlp)

    def params(self) -> int:
        norms = self.layers * 2 * self.hidden + self.hidden
        return self.embedding_params() + self.linear_params() + norms

    def weight_bytes(self, online_quantization: str | None = None) -> int:
        """The weights in GPU memory: the checkpoint's files when present and served as they
        are; else from the shape, linear layers at the quantized width."""
        if online_quantization is None and self.checkpoint_bytes:
            return self.checkpoint_bytes
        if online_quantization == "fp8":
            linear_bytes = 1.0
        elif self.quant_bits:
            # Packed weights plus a scale (and zero point) per group of 128.
            linear_bytes = self.quant_bits / 8 * 1.03
        else:
            linear_bytes = self.dtype_bytes
        other = self.params() - self.linear_params()
        return int(self.linear_params() * linear_bytes + other * self.dtype_bytes)

    def kv_bytes_per_token(self, kv_cache_dtype: str = "auto") -> int:
        """K and V for every layer, all KV heads (divide by TP for one GPU's share)."""
        width = 1 if kv_cache_dtype.startswith("fp8") else self.dtype_bytes
        return 2 * self.layers * self.kv_heads * self.head_dim * width


def read_shape(folder: Path) -> ModelShape:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelShapeError(f"{folder} has no config.json") from error
    except (OSError, ValueError) as error:
        raise ModelShapeError(f"cannot read {path}: {error}") from error
    if not isinstance(config, dict):
        raise ModelShapeError(f"{path} is not a JSON object")
    text = config.get("text_config")
    fields: dict[str, Any] = {**config, **text} if isinstance(text, dict) else config
    try:
        return _shape(fields, folder)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelShapeError(f"{path}: cannot read the model's shape ({error!r})") from error


def _shape(c: dict[str, Any], folder: Path) -> ModelShape:
    layers = int(_first(c, "num_hidden_layers", "n_layer", "num_layers"))
    hidden = int(_first(c, "hidden_size", "n_embd", "d_model"))
    heads = int(_first(c, "num_attention_heads", "n_head"))
    kv_heads = int(c.get("num_key_value_heads") or c.get("multi_query_group_num") or heads)
    head_dim = int(c.get("head_dim") or hidden // heads)
    vocab = int(c["vocab_size"])
    intermediate = int(c.get("intermediate_size") or c.get("ffn_hidden_size") or 4 * hidden)
    dtype = str(c.get("torch_dtype") or c.get("dtype") or "bfloat16").removeprefix("torch.")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype}")
    count = c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts")
    experts = None
    if count:
        expert = int(c.get("moe_intermediate_size") or intermediate)
        shared = int(c.get("shared_expert_intermediate_size") or 0) + expert * int(
            c.get("n_shared_experts") or 0
        )
        experts = (int(count), expert, shared)
    found = c.get("quantization_config")
    quant: dict[str, Any] = found if isinstance(found, dict) else {}
    method = quant.get("quant_method")
    bits = quant.get("bits") or quant.get("w_bit")
    return ModelShape(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=vocab,
        intermediate=intermediate,
        tied_embeddings=bool(c.get("tie_word_embeddings", False)),
        dtype_bytes=DTYPE_BYTES[dtype],
        experts=experts,
        quant_method=str(method).lower() if method else None,
        quant_bits=int(bits) if bits else (8 if method == "fp8" else None),
        checkpoint_bytes=_checkpoint_bytes(folder),
        remote_code=isinstance(c.get("auto_map"), dict),
        max_position_embeddings=(
            int(c["max_position_embeddings"]) if c.get("max_position_embeddings") else None
        ),
    )


def _first(c: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if c.get(key) is not None:
            return c[key]
    raise KeyError(keys[0])


def _checkpoint_bytes(folder: Path) -> int | None:
    index = folder / "model.safetensors.index.json"
    try:
        total = json.loads(index.read_text(encoding="utf-8"))["metadata"]["total_size"]
        return int(total)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    files = sorted(folder.glob("*.safetensors"))
    return sum(f.stat().st_size for f in files) or None if files else None
