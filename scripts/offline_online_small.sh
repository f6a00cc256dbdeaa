#!/usr/bin/env bash
# The offline-vs-online benchmark on a small synthetic set made on the spot, for a machine without
# the demo's outputs (the GPU machine: scripts/device_run.sh calls it). bevkd-synth (4 scenes x 10
# samples), a tiny teacher fitted for a few steps (its quality does not matter for timing: the
# online mode runs the same network), precompute (2 views), then bevkd-bench-offline-online with
# the tiny student. Prints the bench's table; everything goes under OUT.
#   scripts/offline_online_small.sh BUILD DEVICE OUT   (DEVICE: cpu or cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="$1"
DEVICE="$2"
OUT="$3"
THREADS=$(nproc)
mkdir -p "$OUT"
"$BUILD/core/synth/bevkd-synth" --out "$OUT/synth" --scenes 4 --samples 10 --lidar-sweeps 2 --image-size 320x180 \
  --seed 1 --threads "$THREADS" --quiet
"$BUILD/precompute/bevkd-precompute" fit-teacher --dataroot "$OUT/synth" --preset tiny --out "$OUT/teacher" \
  --train-split mini_train --val-split mini_val --sweeps 3 --epochs 1 --batch-size 4 --lr 3e-3 \
  --workers 2 --threads "$THREADS" --log-every 3 --device "$DEVICE"
"$BUILD/precompute/bevkd-precompute" run --dataroot "$OUT/synth" --checkpoint "$OUT/teacher/teacher.ckpt" \
  --split mini_train --sweeps 3 --views 2 --samples-per-shard 8 --threads "$THREADS" --device "$DEVICE" \
  --out "$OUT/shards"
"$BUILD/bench/bevkd-bench-offline-online" --shards "$OUT/shards" --dataroot "$OUT/synth" --split mini_train \
  --steps 8 --warmup 2 --batch 4 --device "$DEVICE" --dir "$OUT/bench"
