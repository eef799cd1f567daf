#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh:  dist_launch.sh TOOL NPROCS [TOOL args]
# Runs tools/TOOL under torchrun with --launcher pytorch. Multi-node: set
# NNODES, NODE_RANK, MASTER_ADDR and PORT on every node; PYTHON picks the
# interpreter. Without CUDA the processes train on the CPU with gloo.
set -euo pipefail

TOOL=$1
NPROCS=$2
shift 2
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# `python -m torch.distributed.run` is torchrun, run by the chosen python.
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROCS" \
    "$TOOLS_DIR/$TOOL" "$@" --launcher pytorch
