#!/usr/bin/env bash
# Multi-GPU training with torchrun:  tools/dist_train.sh CONFIG NGPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NGPUS [tools/train.py arguments]" >&2
    exit 2
fi
CONFIG=$1
NGPUS=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" train.py "$NGPUS" "$CONFIG" "$@"
