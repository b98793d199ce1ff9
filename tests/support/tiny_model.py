"""A tiny random Llama model with a locally trained tokenizer: what vLLM serves in tests.

Seconds to build, no network. Its text is random: tests check plumbing, not words.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

FIM_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
VOCAB_SIZE = 4096
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(target: Path, seed: int = 1234) -> Path:
    if (target / "model.safetensors").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    tokenizer_file = _train_tokenizer(target)
    _write_model(target, tokenizer_file, seed)
    return target


def _train_tokenizer(target: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(str(p) for p in stdlib.glob("*.py"))[:150]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=FIM_SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train(files, trainer)
    path = target / "tokenizer.json"
    tokenizer.save(str(path))
    (target / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "bos_token": None,
                "model_max_length": 32768,
                "chat_template": CHAT_TEMPLATE,
                "added_tokens_decoder": {
                    str(i): {
                        "content": t,
                        "special": True,
                        "lstrip": False,
                        "rstrip": False,
                        "normalized": False,
                        "single_word": False,
                    }
                    for i, t in enumerate(FIM_SPECIALS)
                },
            }
        )
    )
    return path


def _write_model(target: Path, tokenizer_file: Path, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=32768,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # A random model may favour special tokens and stop at once: make them never win, and
        # spread the other logits so sampling yields varied text.
        model.lm_head.weight.mul_(40.0)
        model.lm_head.weight[: len(FIM_SPECIALS)] = 0.0
        model.model.norm.weight.fill_(1.0)
    config.architectures = ["LlamaForCausalLM"]
    model.save_pretrained(target, safe_serialization=True)
