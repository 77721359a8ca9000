#!/usr/bin/env bash
# Distributed training with torchrun:  bash tools/dist_train.sh CONFIG GPUS [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (single node by default).
# Without CUDA the processes use the gloo backend on the CPU. PYTHON picks the interpreter.
set -e
if [ "$#" -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS [--work-dir DIR] [--resume] [--amp] [--cfg-options ...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
case "$GPUS" in
    ''|*[!0-9]*|0) echo "$0: GPUS must be a positive integer, got '$GPUS'" >&2; exit 2 ;;
esac
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
