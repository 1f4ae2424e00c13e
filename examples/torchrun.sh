#!/usr/bin/env bash
# examples/train_cnn.py on N processes of this machine (NPROC, 2 by default) with
# DistributedDataParallel: NCCL on GPUs, gloo on CPUs. torchrun gives each process
# OMP_NUM_THREADS=1 unless you set it, so ranks sharing CPU cores don't spin.
#   examples/torchrun.sh --data-dir ~/data [train_cnn.py flags]
set -euo pipefail
exec torchrun --standalone --nproc-per-node "${NPROC:-2}" "$(dirname "$0")/train_cnn.py" "$@"
