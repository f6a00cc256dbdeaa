#!/usr/bin/env bash
# Each registered distillation loss alone (plus the detection and depth losses) inside bevkd-train
# on the demo's shards, STEPS steps each, and BEVDistill dense + TiG inner depth together: prints
# per run the steps done, bad (non-finite) steps, and the first and last logged values of the
# total loss and of the distillation term. Needs the demo's outputs (scripts/demo.sh).
#   scripts/distill_runs.sh [DEMO_OUT=demo-out] [STEPS=100]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-demo-out}"
STEPS="${2:-100}"
BIN="${BEVKD_BUILD_DIR:-build}/train/bevkd-train"
RUNS="$OUT/distill-runs"
mkdir -p "$RUNS"
run() {
  local name="$1"; shift
  rm -rf "$RUNS/$name"
  "$BIN" train --shards "$OUT/shards" --dataroot "$OUT/synth" --preset tiny --train-split mini_train \
    --epochs 100 --stop-after "$STEPS" --batch-size 4 --lr 2e-3 --loader-threads 2 --log-every 10 --no-plots \
    --quiet --out "$RUNS/$name" "$@" > /dev/null
  python3 - "$RUNS/$name/metrics.jsonl" "$name" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in recs if "event" not in r]
bad = [r for r in recs if r.get("event") == "bad_step"]
keys = sorted(k for k in steps[-1] if k.startswith("loss.") and k.count(".") == 1)
def fmt(r): return "loss %.4g" % r["loss"] + "".join(", %s %.4g" % (k, r[k]) for k in keys)
print("%-34s steps %4d  bad %d  first: %s  last: %s" % (sys.argv[2], steps[-1]["step"], len(bad), fmt(steps[0]), fmt(steps[-1])))
PY
}
run detection-only
for loss in bevdistill_dense focaldistiller_heatmap fitnet cwd mgd fgd tig_inner_depth; do run "$loss" --loss "$loss"; done
run bevdistill_dense+tig_inner_depth --loss bevdistill_dense --loss tig_inner_depth
