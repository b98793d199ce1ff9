#!/usr/bin/env bash
# The benchmarks on a lent GPU, once vLLM 0.26.0 is staged into /tmp/site (../shared/gpu):
# a 7B-shaped model with dummy weights, priority scheduling, GPU block size (16).
#   bash bench/gpu.sh priority|prefix|team [MAX_NUM_SEQS] [ACTIONS]
# team: WORKERS="1 4" runs the team load once per daemon worker count.
# (one per device call: each fits the 10-minute limit with vLLM's two-minute start-up)
set -euo pipefail
export PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/out}; WHICH=${1:?priority, prefix or team}; SEQS=${2:-16}; ACTIONS=${3:-32}
mkdir -p "$OUT"
python3 -m bench.gpu_model /tmp/model7b
python3 -m vllm.entrypoints.openai.api_server --model /tmp/model7b --load-format dummy \
  --served-model-name iquest-7b-shaped --max-model-len 8192 --port 8000 \
  --enable-prefix-caching --enable-prompt-tokens-details --scheduling-policy priority \
  --max-num-seqs "$SEQS" > "$OUT/vllm.log" 2>&1 &
for _ in $(seq 300); do curl -sf localhost:8000/health >/dev/null && break; sleep 1; done
curl -sf localhost:8000/health >/dev/null || { tail -30 "$OUT/vllm.log"; exit 1; }
echo "vLLM up after ${SECONDS}s"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "$WHICH" = priority ]; then
  python3 -m bench.priority --vllm-root http://127.0.0.1:8000 --actions "$ACTIONS" \
    --max-num-seqs "$SEQS" --seconds 45 2>&1 | tee "$OUT/priority.txt"
elif [ "$WHICH" = team ]; then
  for workers in ${WORKERS:-1}; do
    python3 -m bench.team_load --vllm-root http://127.0.0.1:8000 --editors 100 --seconds 60 \
      --workers "$workers" 2>&1 | tee "$OUT/team_load_workers$workers.txt"
  done
else
  python3 -m bench.prefix_cache --vllm-root http://127.0.0.1:8000 2>&1 | tee "$OUT/prefix_cache.txt"
fi
