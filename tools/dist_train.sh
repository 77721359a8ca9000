#!/usr/bin/env bash
# Distributed training with torchrun:  bash tools/dist_train.sh CONFIG GPUS [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (single node by default).
# Without CUDA the processes use the gloo backend on the CPU. PYTHON picks the interpreter.
# POSIX sh: `sh tools/dist_train.sh ...` works as well as bash.
set -e
if [ "$#" -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS [--work-dir DIR] [--resume] [--amp] [--cfg-options ...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
shift 2
exec bash "$(dirname "$0")/torchrun_tool.sh" train.py "$GPUS" "$CONFIG" "$@"
