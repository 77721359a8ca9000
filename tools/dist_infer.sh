#!/usr/bin/env bash
# Batch inference in GPUS processes with torchrun:
#   bash tools/dist_infer.sh CONFIG CHECKPOINT INPUT OUT GPUS [infer.py options]
# Each process predicts every GPUS-th batch of INPUT; rank 0 merges OUT in input order.
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (single node by default).
# Without CUDA the processes run on the CPU. PYTHON picks the interpreter.
# POSIX sh: `sh tools/dist_infer.sh ...` works as well as bash.
set -e
if [ "$#" -lt 5 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT INPUT OUT GPUS [--batch-size N] [--png-dir DIR] [--overlay-dir DIR] [--image-root DIR] [--cfg-options ...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
INPUT=$3
OUT=$4
GPUS=$5
shift 5
exec bash "$(dirname "$0")/torchrun_tool.sh" infer.py "$GPUS" "$CONFIG" "$CHECKPOINT" "$INPUT" "$OUT" "$@"
