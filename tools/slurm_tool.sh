#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh: run tools/TOOL in GPUS tasks with srun.
#   bash tools/slurm_tool.sh TOOL PARTITION JOB_NAME [TOOL arguments]
# GPUS (tasks in all), GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS (more srun options) come from
# the environment; PYTHON picks the interpreter. Every task runs the tool with --launcher slurm,
# which reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_NODELIST; the first node of the
# list (found with scontrol) is the master, on MASTER_PORT (29500 unless set).
set -e
TOOL=$1
PARTITION=$2
JOB_NAME=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
for name in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
    eval "value=\$$name"
    case "$value" in
        ''|*[!0-9]*|0) echo "$(basename "$0"): $name must be a positive integer, got '$value'" >&2; exit 2 ;;
    esac
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

set -x
# SRUN_ARGS is split into words on purpose (several srun options).
# shellcheck disable=SC2086
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "${PYTHON:-python}" -u "$ROOT/tools/$TOOL" "$@" --launcher=slurm
