"""A model folder for GPU benchmarks: IQuest-Coder-V1-7B's published shape (Llama architecture,
hidden 5120, 40 query / 8 KV heads of 128, 14 layers) with a locally trained tokenizer, served
with ``--load-format dummy`` (random weights: only config and tokenizer are needed, nothing is
fetched). The intermediate size is not published for the 7B: 13824 is a guess. ``40b`` is the
40B's shape (80 layers, intermediate 27,648), the guide's model.

    python3 -m bench.gpu_model DIR [7b|40b]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.tiny_model import _train_tokenizer

# (layers, intermediate size); hidden 5120 and 40/8 heads of 128 are shared by the family.
SHAPES = {"7b": (14, 13824), "40b": (80, 27648)}


def main() -> None:
    target = Path(sys.argv[1])
    layers, intermediate = SHAPES[sys.argv[2] if len(sys.argv) > 2 else "7b"]
    target.mkdir(parents=True, exist_ok=True)
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(_train_tokenizer(target))).get_vocab_size()
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": 5120,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    (target / "config.json").write_text(json.dumps(config, indent=1))
    print(f"model folder {target}: vocab {vocab}")


if __name__ == "__main__":
    main()
