#!/usr/bin/env bash
# Does distillation help? Paired students over seeds on a bevkd-synth set with >= 200 val samples.
#   scripts/seeds_experiment.sh [OUT=seeds-out] [EPOCHS=2] [SEEDS="1 2 3"] [RUNS="baseline distilled bevdistill tig"]
# Builds (once, reused on reruns) a synthetic set of 10 scenes x SAMPLES samples (mini_val = 2
# scenes: 2 x SAMPLES val samples, SAMPLES defaults to 100), fits the tiny teacher on mini_train
# and precomputes mini_train + mini_val (2 views). Then, per seed, trains the tiny student for
# EPOCHS epochs of mini_train (8 x SAMPLES samples: 2 epochs = 400 steps at batch 4 by default; lr
# 2e-3 on the trainer's one-cycle schedule; the seed fixes initial weights, data order, views and
# augmentation, so the runs of one seed are paired) as
#   baseline    detection + depth losses
#   distilled   + the demo's default: BEVDistill dense + instance (scripts/demo.sh)
#   bevdistill  + BEVDistill's combination: dense + instance + InfoNCE
#   tig         + TiG-BEV's combination: inner depth + inner feature (about 9 s per step on 2 cores)
# evaluates each on mini_val (never used for any choice here) and prints mean ± std of mAP and
# NDS per run and each run's per-seed difference to the baseline of the same seed. A rerun skips
# finished students (their eval-mini_val/metrics_summary.json) and resumes stopped ones.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-seeds-out}"
EPOCHS="${2:-2}"
SEEDS="${3:-1 2 3}"
RUNS="${4:-baseline distilled bevdistill tig}"
SAMPLES="${BEVKD_SEEDS_SAMPLES:-100}"
TEACHER_EPOCHS="${BEVKD_SEEDS_TEACHER_EPOCHS:-3}"
BIN="${BEVKD_BUILD_DIR:-build}"
THREADS="$(nproc)"
mkdir -p "$OUT"
say() { echo "=== seeds: $* ($(date +%H:%M:%S))" >&2; }

if [[ ! -f "$OUT/synth/v1.0-mini/sample.json" ]]; then
  say "synthetic set: 10 scenes x $SAMPLES samples"
  "$BIN/core/synth/bevkd-synth" --out "$OUT/synth" --scenes 10 --samples "$SAMPLES" --lidar-sweeps 2 \
    --image-size 320x180 --seed 11 --threads "$THREADS" --quiet
fi
if [[ ! -f "$OUT/teacher/teacher.ckpt" ]]; then
  say "fit the tiny teacher ($TEACHER_EPOCHS epochs)"
  "$BIN/precompute/bevkd-precompute" fit-teacher --dataroot "$OUT/synth" --preset tiny --out "$OUT/teacher" \
    --train-split mini_train --val-split mini_val --sweeps 3 --epochs "$TEACHER_EPOCHS" --batch-size 4 --lr 3e-3 \
    --workers 2 --threads "$THREADS" --log-every 50
fi
if [[ ! -f "$OUT/shards/manifest.json" ]]; then
  say "precompute mini_train + mini_val (2 views)"
  "$BIN/precompute/bevkd-precompute" run --dataroot "$OUT/synth" --checkpoint "$OUT/teacher/teacher.ckpt" \
    --split mini_train,mini_val --sweeps 3 --views 2 --samples-per-shard 32 --threads "$THREADS" --out "$OUT/shards"
fi

losses_of() {
  case "$1" in
    baseline) ;;
    distilled) echo "--loss bevdistill_dense --loss bevdistill_box" ;;
    bevdistill) echo "--loss bevdistill_dense --loss bevdistill_box --loss bevdistill_infonce" ;;
    tig) echo "--loss tig_inner_depth --loss tig_inner_feature" ;;
    *) echo "unknown run $1" >&2; exit 2 ;;
  esac
}
for seed in $SEEDS; do
  for run in $RUNS; do
    dir="$OUT/students/$run-seed$seed"
    [[ -f "$dir/eval-mini_val/metrics_summary.json" ]] && continue
    say "$run, seed $seed, $EPOCHS epochs"
    # shellcheck disable=SC2046
    "$BIN/train/bevkd-train" train --shards "$OUT/shards" --dataroot "$OUT/synth" --preset tiny \
      --train-split mini_train --epochs "$EPOCHS" --batch-size 4 --lr 2e-3 --seed "$seed" \
      --loader-threads 2 --threads "$THREADS" --log-every 50 --no-plots --quiet --out "$dir" $(losses_of "$run") >&2
    "$BIN/train/bevkd-train" eval --checkpoint "$dir/student.ckpt" --shards "$OUT/shards" \
      --dataroot "$OUT/synth" --split mini_val --out "$dir/eval-mini_val" --no-plots --quiet >&2
  done
done

python3 - "$OUT" "$EPOCHS" "$SEEDS" "$RUNS" <<'PY'
import json, statistics, sys
out, epochs, seeds, runs = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
def m(run, seed):
    j = json.load(open(f"{out}/students/{run}-seed{seed}/eval-mini_val/metrics_summary.json"))
    return j["mean_ap"], j["nd_score"]
def ms(v):
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
def steps_and_minutes(run, seed):
    recs = [json.loads(l) for l in open(f"{out}/students/{run}-seed{seed}/metrics.jsonl") if l.strip()]
    last = [r for r in recs if "event" not in r][-1]
    return last["step"], last["elapsed_s"] / 60
steps = steps_and_minutes(runs[0], seeds[0])[0]
print(f"tiny student, {epochs} epochs = {steps} steps, batch 4, seeds {' '.join(seeds)}; mini_val of {out}/shards")
print("| run | mAP (mean ± std) | NDS (mean ± std) | mAP − baseline per seed | NDS − baseline per seed | minutes per run |")
print("|---|---|---|---|---|---|")
for run in runs:
    maps = [m(run, s)[0] for s in seeds]
    ndss = [m(run, s)[1] for s in seeds]
    if run == "baseline" or "baseline" not in runs:
        dm = dn = "—"
    else:
        dm = ", ".join(f"{m(run, s)[0] - m('baseline', s)[0]:+.4f}" for s in seeds)
        dn = ", ".join(f"{m(run, s)[1] - m('baseline', s)[1]:+.4f}" for s in seeds)
    minutes = statistics.mean(steps_and_minutes(run, s)[1] for s in seeds)
    print(f"| {run} | {ms(maps)} | {ms(ndss)} | {dm} | {dn} | {minutes:.1f} |")
PY
