#!/usr/bin/env bash
# The GPU check of issue 28 in one command, under 8 minutes on one GPU (see benchmarks/gpu_check.py):
# paper-preset training throughput and MFU in bf16 fed from shards, inference real-time factors on
# the GPU, and CPU-vs-GPU agreement of a few training steps. Writes benchmarks/results/gpu_<card>.json.
#
#   benchmarks/gpu_check.sh            # on a CUDA machine
#   benchmarks/gpu_check.sh --dry-run  # anywhere: tiny sizes on the CPU, seconds
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-$(cd .. && pwd)/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec timeout 470 "$PYTHON" gpu_check.py --work ../runs/bench/gpu_check "$@"
