#!/usr/bin/env bash
# Multi-GPU testing with torchrun:  tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NGPUS [tools/test.py arguments]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NGPUS=$3
shift 3
exec "$(dirname "$0")/dist_launch.sh" test.py "$NGPUS" "$CONFIG" "$CHECKPOINT" "$@"
