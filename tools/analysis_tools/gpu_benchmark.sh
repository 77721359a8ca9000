#!/usr/bin/env bash
# Fill the performance table of docs/en/benchmark.md on one GPU, in one call:
#
#   bash tools/analysis_tools/gpu_benchmark.sh OUT_DIR
#
# Runs every measurement of the table with tools/analysis_tools/benchmark.py (random weights,
# synthetic inputs: no data or checkpoint needed), writes one JSON (and log) per measurement to
# OUT_DIR, two profiles (benchmark.py --profile) to OUT_DIR/profile_*, then OUT_DIR/table.md. The
# important runs come first and every run has its own time limit, so a cut-off call still leaves
# the finished JSON files; total about 8 minutes on an H100/H200 before the profiles were added
# (not yet timed with them). Environment: PYTHON (default: .venv/bin/python if present, else
# python3), RUN_TIMEOUT (seconds per run, default 150), COMPILE_TIMEOUT (default 240). Install the
# pinned stack first (bash tools/setup_env.sh; docs/en/get_started.md, "GPU machines").
set -uo pipefail

OUT=${1:?usage: bash tools/analysis_tools/gpu_benchmark.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/../.." || exit 1
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-240}
BENCH=tools/analysis_tools/benchmark.py
VITB=configs/dit/ldit_vitb_refcoco.py
VITH=configs/dit/ldit_vith_refcoco.py

# run NAME TIMEOUT ARGS...: one measurement -> OUT/NAME.json and OUT/NAME.log; 0 on success.
run() {
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$PYTHON" "$BENCH" "$@" --device cuda --json "$OUT/$name.json" \
        > "$OUT/$name.log" 2>&1
    local status=$?
    grep -v -i warn "$OUT/$name.log" | tail -n 4
    if [[ $status -ne 0 ]]; then
        echo "FAILED ($status): $name" | tee -a "$OUT/failures.txt"
        rm -f "$OUT/$name.json"
    fi
    return $status
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} > "$OUT/environment.txt" 2>&1

# ViT-B L-DIT at 512 with BERT-base: ours (bf16 autocast, SDPA) and the released code's way.
run train_b64_bf16 "$RUN_TIMEOUT" $VITB --mode train --batch-size 64 --amp bf16 --iters 20 --warmup 5
run train_b64_ref "$RUN_TIMEOUT" $VITB --mode train --batch-size 64 --reference --iters 5 --warmup 2 ||
    run train_b16_ref "$RUN_TIMEOUT" $VITB --mode train --batch-size 16 --reference --iters 10 --warmup 2
run infer_b64_bf16 "$RUN_TIMEOUT" $VITB --mode infer --batch-size 64 --amp bf16 --iters 20 --warmup 5
run infer_b64_ref "$RUN_TIMEOUT" $VITB --mode infer --batch-size 64 --reference --iters 5 --warmup 2
run infer_b1_bf16 "$RUN_TIMEOUT" $VITB --mode infer --batch-size 1 --amp bf16 --iters 100 --warmup 20
run infer_b1_ref "$RUN_TIMEOUT" $VITB --mode infer --batch-size 1 --reference --iters 30 --warmup 5
# Activation checkpointing: ViT-B (memory / speed trade-off) and ViT-H L-DIT at batch 16.
run train_b64_bf16_cp "$RUN_TIMEOUT" $VITB --mode train --batch-size 64 --amp bf16 --iters 10 \
    --warmup 3 --cfg-options model.backbone.with_cp=True
run vith_train_b16_bf16_cp "$RUN_TIMEOUT" $VITH --mode train --batch-size 16 --amp bf16 \
    --iters 10 --warmup 3
# Profiles (trace.json + top_kernels.md per folder): where a training step and a batch-1
# inference go (kernels by category, GPU idle time between kernels).
run profile_train_b16_bf16 "$RUN_TIMEOUT" $VITB --mode train --batch-size 16 --amp bf16 --iters 2 \
    --warmup 3 --profile "$OUT/profile_train_b16_bf16" --profile-iters 2
run profile_infer_b1_bf16 "$RUN_TIMEOUT" $VITB --mode infer --batch-size 1 --amp bf16 --iters 5 \
    --warmup 10 --profile "$OUT/profile_infer_b1_bf16" --profile-iters 5
# torch.compile (slow to start): training, and CUDA graphs for the batch-1 latency.
run train_b64_bf16_compile "$COMPILE_TIMEOUT" $VITB --mode train --batch-size 64 --amp bf16 \
    --compile --iters 20 --warmup 5
run infer_b1_bf16_compile "$COMPILE_TIMEOUT" $VITB --mode infer --batch-size 1 --amp bf16 \
    --compile reduce-overhead --iters 100 --warmup 20
# The default GPU paths of ReferSegInferencer (CUDA graphs) and tools/test.py (compiled).
run infer_b1_inferencer_path "$COMPILE_TIMEOUT" $VITB --mode infer --batch-size 1 --amp bf16 \
    --compile reduce-overhead --accelerate --iters 100 --warmup 20
run infer_b64_test_path "$COMPILE_TIMEOUT" $VITB --mode infer --batch-size 64 --amp bf16 \
    --compile --accelerate --iters 20 --warmup 5

"$PYTHON" - "$OUT" > "$OUT/table.md" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
rows = {os.path.basename(p)[:-5]: json.load(open(p)) for p in sorted(glob.glob(f'{out}/*.json'))}
print('| run | config | mode | batch | precision | compile | samples/s | latency median / p90 (ms) '
      '| peak MB | MB / sample | act. MB / sample | TFLOP/s |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
for name, r in rows.items():
    precision = 'fp32 reference' if r['reference'] else (r['amp'] or 'fp32')
    act = r.get('activation_mem_per_sample_mb')
    print(f"| {name} | {os.path.basename(r['config'])} | {r['mode']} | {r['batch_size']} | "
          f"{precision} | {r['compile_mode'] or '-'} | {r['samples_per_s']:.1f} | "
          f"{r['latency_ms_median']:.1f} / {r['latency_ms_p90']:.1f} | {r['peak_mem_mb']:.0f} | "
          f"{r['peak_mem_per_sample_mb']:.0f} | {'-' if act is None else f'{act:.0f}'} | "
          f"{r['tflops_achieved']:.0f} |")
ref = rows.get('train_b64_ref') or rows.get('train_b16_ref')
for ours in ('train_b64_bf16', 'train_b64_bf16_compile'):
    if ref and ours in rows:
        ratio = rows[ours]['samples_per_s'] / ref['samples_per_s']
        print(f'\n{ours} / reference training: {ratio:.2f}x')
EOF
cat "$OUT/table.md"
