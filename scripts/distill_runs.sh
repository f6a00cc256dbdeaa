#!/usr/bin/env bash
# Each registered distillation loss alone (plus the detection and depth losses) inside bevkd-train
# on the demo's shards, STEPS steps each; the papers' combinations (BEVDistill dense + instance +
# InfoNCE; TiG-BEV inner depth + inner feature); BEVDistill's instance weighting s² (the release)
# vs the paper's q. Prints per run the steps done, bad (non-finite) steps, seconds per step, and
# the first and last logged values of the total loss and of each distillation term. Needs the
# demo's outputs (scripts/demo.sh; shard schema >= 1.1 for bevdistill_box).
#   scripts/distill_runs.sh [DEMO_OUT=demo-out] [STEPS=200]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-demo-out}"
STEPS="${2:-200}"
BIN="${BEVKD_BUILD_DIR:-build}/train/bevkd-train"
RUNS="$OUT/distill-runs"
mkdir -p "$RUNS"
run() {
  local name="$1"; shift
  rm -rf "$RUNS/$name"
  local t0=$EPOCHREALTIME
  "$BIN" train --shards "$OUT/shards" --dataroot "$OUT/synth" --preset tiny --train-split mini_train \
    --epochs 100 --stop-after "$STEPS" --batch-size 4 --lr 2e-3 --loader-threads 2 --log-every 10 --no-plots \
    --quiet --out "$RUNS/$name" "$@" > /dev/null
  local t1=$EPOCHREALTIME
  python3 - "$RUNS/$name/metrics.jsonl" "$name" "$t0" "$t1" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in recs if "event" not in r]
bad = [r for r in recs if r.get("event") == "bad_step"]
keys = sorted(k for k in steps[-1] if k.startswith("loss.") and k.count(".") == 1)
def fmt(r): return "loss %.4g" % r["loss"] + "".join(", %s %.4g" % (k, r[k]) for k in keys)
n = steps[-1]["step"]
print("%-40s steps %4d  bad %d  %.2f s/step  first: %s  last: %s" % (sys.argv[2], n, len(bad), (float(sys.argv[4]) - float(sys.argv[3])) / max(n, 1), fmt(steps[0]), fmt(steps[-1])))
PY
}
run detection-only
for loss in $("$BIN" losses --json | python3 -c 'import json,sys; print(" ".join(e["name"] for e in json.load(sys.stdin)))'); do
  run "$loss" --loss "$loss"
done
echo '{"optimisation": {"losses": [{"name": "bevdistill_box", "weighting": "q"}]}}' > "$RUNS/box_q.json"
run bevdistill_box-q --config "$RUNS/box_q.json"
run bevdistill_dense+box+infonce --loss bevdistill_dense --loss bevdistill_box --loss bevdistill_infonce
run tig_inner_depth+inner_feature --loss tig_inner_depth --loss tig_inner_feature
