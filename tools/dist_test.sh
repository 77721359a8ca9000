#!/usr/bin/env bash
# Distributed testing with torchrun:  bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (single node by default).
# Without CUDA the processes use the gloo backend on the CPU. PYTHON picks the interpreter.
# POSIX sh: `sh tools/dist_test.sh ...` works as well as bash.
set -e
if [ "$#" -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT GPUS [--work-dir DIR] [--show-dir DIR] [--out DIR] [--cfg-options ...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec bash "$(dirname "$0")/torchrun_tool.sh" test.py "$GPUS" "$CONFIG" "$CHECKPOINT" "$@"
