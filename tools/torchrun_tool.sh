#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/TOOL in NPROC processes with torchrun.
#   bash tools/torchrun_tool.sh TOOL NPROC [TOOL arguments]
# NNODES, NODE_RANK, MASTER_ADDR and PORT come from the environment (single node by default);
# PYTHON picks the interpreter. Without CUDA the processes use the gloo backend on the CPU.
set -e
TOOL=$1
NPROC=$2
shift 2
case "$NPROC" in
    ''|*[!0-9]*|0) echo "$(basename "$0"): GPUS must be a positive integer, got '$NPROC'" >&2; exit 2 ;;
esac
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${PORT:-29500}"

# The master's rendezvous port must be free (another job may hold it): say so before starting.
if [ "${NODE_RANK:-0}" = "0" ] && ! "${PYTHON:-python}" -c '
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
    echo "$(basename "$0"): port $PORT is in use (another distributed job?); set PORT to a free port, e.g. PORT=$((PORT + 1)) in front of the command" >&2
    exit 1
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/$TOOL" \
    "$@" \
    --launcher pytorch
