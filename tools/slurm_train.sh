#!/usr/bin/env bash
# Training on a SLURM cluster with srun (MMSegmentation's script):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# Details (master node and port, PYTHON): tools/slurm_tool.sh.
set -e
if [ "$#" -lt 4 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG WORK_DIR [--resume] [--amp] [--cfg-options ...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_tool.sh" train.py "$1" "$2" "$3" --work-dir="$4" "${@:5}"
