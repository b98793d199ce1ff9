#!/usr/bin/env bash
# The benchmarks on a lent GPU, once vLLM 0.26.0 is staged into /tmp/site (../shared/gpu):
# a 7B-shaped model with dummy weights, started by `iquest-lsp vllm` (priority scheduling,
# prefix caching, GPU block size 16; its planned KV size printed beside vLLM's).
#   bash bench/gpu.sh priority|prefix|team|capacity [MAX_NUM_SEQS] [ACTIONS]
#   bash bench/gpu.sh engines40 [MAX_NUM_SEQS]   (the guide's 40B rows: RUNS="tp2 tp1 tp2-fp8",
#   each a vLLM started by `iquest-lsp vllm` in turn; tp2 needs nvidia-h200-x2)
#   bash bench/gpu.sh capacity40 [MAX_NUM_SEQS]   (editors per H200 on the 40B shape: RUN=tp1,
#   tp1-fp8 or tp2; vLLM started directly with MAX_NUM_SEQS sequences and a 4,096-token context,
#   since the planner sizes for full-length requests and a 40B's KV holds few of those)
# capacity and capacity40: EDITORS (the sweep), STEP (seconds a step), WORKERS (daemon workers),
# PROCS (editor processes): the harness is sized so the host is not the limit (host% column).
# team: WORKERS="1 4" runs the team load once per daemon worker count.
# (one per device call: each fits the 10-minute limit with vLLM's two-minute start-up)
# Staging (2026-11-30): ../shared/gpu/vllm-0.26.0-deps.txt pins llguidance==1.7.6, which this
# package index lacks; a copy of the bundle script with llguidance==1.6.1 built it (only the
# llguidance structured-output backend uses it). Our own wheels ride along as extra packages:
# pygls lsprotocol cattrs attrs tree-sitter (+ its 8 grammars) pathspec whatthepatch uvloop
# platformdirs httpx httpcore h11 anyio aiohttp (+ its deps) prometheus_client, pinned as in
# .venv. One chunk per call: two 41 MB chunks exceed the 64 MiB carry limit (the last, small
# chunk rides with the one before it). Stop 31 (2026-12-04): the bundle also needs tomli_w
# (engine.deploy.command writes the daemon's settings with it): `pip download tomli_w -d
# .gpu/extra`, carry .gpu/extra and `pip install --no-index --no-deps --target /tmp/site
# .gpu/extra/*.whl` after the last chunk.
set -euo pipefail
export PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/out}; WHICH=${1:?priority, prefix, team or capacity}; SEQS=${2:-16}; ACTIONS=${3:-32}
mkdir -p "$OUT"
if [ "$WHICH" = capacity40 ]; then
  python3 -m bench.gpu_model /tmp/iquest-40b-shaped 40b
  case ${RUN:-tp1} in
    tp1) flags="--tensor-parallel-size 1" ;; tp2) flags="--tensor-parallel-size 2" ;;
    tp1-fp8) flags="--tensor-parallel-size 1 --quantization fp8" ;; *) echo "unknown RUN"; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  python3 -m vllm.entrypoints.openai.api_server --model /tmp/iquest-40b-shaped \
    --load-format dummy --served-model-name iquest-40b-shaped --port 8000 $flags \
    --max-model-len 4096 --max-num-seqs "${SEQS}" --enable-prefix-caching \
    --enable-prompt-tokens-details --scheduling-policy priority --gpu-memory-utilization 0.92 \
    > "$OUT/vllm-40b.log" 2>&1 &
  VLLM=$!
  trap 'kill -INT $VLLM 2>/dev/null; wait $VLLM' EXIT
  healthy() { python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:8000/health", timeout=2)' 2>/dev/null; }
  for _ in $(seq 400); do healthy && break; kill -0 $VLLM 2>/dev/null || break; sleep 1; done
  healthy || { tail -40 "$OUT/vllm-40b.log"; exit 1; }
  echo "vLLM (40B ${RUN:-tp1}) up after ${SECONDS}s"
  grep -hE "GPU KV cache size|Available KV cache memory|Model loading took" "$OUT/vllm-40b.log" || true
  python3 -m bench.capacity --vllm-root http://127.0.0.1:8000 --editors "${EDITORS:-1,16,32,64,128}" \
    --seconds "${STEP:-20}" --workers "${WORKERS:-8}" --editor-processes "${PROCS:-4}" 2>&1 \
    | tee "$OUT/capacity40-${RUN:-tp1}.txt"
  exit 0
fi
if [ "$WHICH" = engines40 ]; then
  python3 -m bench.gpu_model /tmp/iquest-40b-shaped 40b
  printf '[profiles.bench]\nmax_model_len = 8192\nmax_num_seqs = %s\nmin_num_seqs = %s\n' \
    "$SEQS" "$SEQS" > /tmp/bench-profiles.toml
  for run in ${RUNS:-tp2 tp1}; do
    case $run in
      tp2) flags="--tp 2 --gpus 0,1" ;; tp1) flags="--tp 1 --gpus 0" ;;
      tp2-fp8) flags="--tp 2 --gpus 0,1 --quantization fp8" ;; *) echo "unknown run $run"; exit 2 ;;
    esac
    started=$SECONDS
    # shellcheck disable=SC2086
    IQUEST_CONFIG=/tmp/bench-profiles.toml python3 -m lsp vllm --model /tmp/iquest-40b-shaped \
      --profile bench $flags --port 8000 --log-dir "$OUT/$run" -- --load-format dummy \
      > "$OUT/launch-$run.txt" 2>&1 &
    launcher=$!
    for _ in $(seq 500); do
      grep -q '^ready' "$OUT/launch-$run.txt" && break
      kill -0 $launcher 2>/dev/null || break  # it refused the plan, or vLLM failed
      sleep 1
    done
    grep -q '^ready' "$OUT/launch-$run.txt" || { tail -30 "$OUT/launch-$run.txt"; kill -INT $launcher; wait $launcher; continue; }
    grep -E "KV cache|vLLM's KV" "$OUT/launch-$run.txt"
    echo "$run: vLLM up after $((SECONDS - started))s"
    python3 -m bench.engines --model /tmp/iquest-40b-shaped --vllm "40B-$run=http://127.0.0.1:8000" \
      --concurrency 1,8,16,64 2>&1 | tee "$OUT/engines40-$run.txt"
    kill -INT $launcher; wait $launcher || true
  done
  exit 0
fi
python3 -m bench.gpu_model /tmp/iquest-7b-shaped
# Started the way users start it (iquest-lsp vllm), with a profile of SEQS sequence slots.
printf '[profiles.bench]\nmax_model_len = 8192\nmax_num_seqs = %s\nmin_num_seqs = %s\n' \
  "$SEQS" "$SEQS" > /tmp/bench-profiles.toml
IQUEST_CONFIG=/tmp/bench-profiles.toml python3 -m lsp vllm --model /tmp/iquest-7b-shaped \
  --profile bench --port 8000 --log-dir "$OUT" -- --load-format dummy > "$OUT/launch.txt" 2>&1 &
LAUNCHER=$!
trap 'kill -INT $LAUNCHER 2>/dev/null; wait $LAUNCHER' EXIT
for _ in $(seq 400); do
  grep -q '^ready' "$OUT/launch.txt" && break
  kill -0 $LAUNCHER 2>/dev/null || break  # it refused the plan, or could not start
  sleep 1
done
grep -q '^ready' "$OUT/launch.txt" || { tail -40 "$OUT/launch.txt"; tail -30 "$OUT"/vllm-*.log; exit 1; }
grep -E "KV cache|vLLM's KV" "$OUT/launch.txt"
grep -hE "GPU KV cache size|Available KV cache memory|Model loading took" "$OUT"/vllm-*.log || true
echo "vLLM up after ${SECONDS}s"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "$WHICH" = priority ]; then
  python3 -m bench.priority --vllm-root http://127.0.0.1:8000 --actions "$ACTIONS" \
    --max-num-seqs "$SEQS" --seconds 45 2>&1 | tee "$OUT/priority.txt"
elif [ "$WHICH" = team ]; then
  for workers in ${WORKERS:-1}; do
    python3 -m bench.team_load --vllm-root http://127.0.0.1:8000 --editors 100 --seconds 60 \
      --workers "$workers" 2>&1 | tee "$OUT/team_load_workers$workers.txt"
  done
elif [ "$WHICH" = capacity ]; then
  # Editors per H200 (ours vs plain), then the guide's engine table on the same model: vLLM
  # rows against this server, transformers generate() once vLLM has given the GPU back.
  python3 -m bench.capacity --vllm-root http://127.0.0.1:8000 \
    --editors "${EDITORS:-64,128,256,384,512}" --seconds "${STEP:-20}" --workers "${WORKERS:-8}" \
    --editor-processes "${PROCS:-4}" 2>&1 | tee "$OUT/capacity.txt"
  [ "${ENGINES:-0}" = 1 ] || exit 0
  python3 -m bench.engines --model /tmp/iquest-7b-shaped --vllm "vLLM=http://127.0.0.1:8000" \
    --concurrency 1,8,16,64 2>&1 | tee "$OUT/engines_vllm.txt"
  kill -INT $LAUNCHER; wait $LAUNCHER || true; trap - EXIT
  python3 -m bench.engines --model /tmp/iquest-7b-shaped --hf --concurrency 1,8,16,64 2>&1 \
    | tee "$OUT/engines_hf.txt"
else
  python3 -m bench.prefix_cache --vllm-root http://127.0.0.1:8000 2>&1 | tee "$OUT/prefix_cache.txt"
fi
