#!/usr/bin/env bash
# bevkd end to end on the built-in synthetic dataset (about 8 minutes on 2 cores after the build):
#   set-up + build -> bevkd-synth (a few scenes in the nuScenes v1.0-mini format)
#   -> bevkd-precompute fit-teacher (the tiny PointPillars-CenterPoint preset)
#   -> bevkd-precompute run on mini_train and mini_val (shards + manifest)
#   -> bevkd-inspect summary / verify / render (a PNG)
#   -> bevkd-precompute export-results + bevkd-eval --shards on mini_val (the teacher's metrics
#      against the GT stored in the shards)
#   -> bevkd-train train: two tiny camera students from the shards (the teacher is never loaded),
#      with the same steps, seed and data order: a baseline (detection + depth losses) and a
#      distilled one (+ BEVDistill's dense and instance losses, DEMO_LOSSES)
#   -> bevkd-train eval and bevkd-eval on mini_val for both; one table: teacher, baseline,
#      distilled (mAP, NDS, TP errors, training time); loss curves of both in one PNG.
# Outputs go to ${BEVKD_DEMO_OUT:-demo-out}/. BEVKD_DEMO_SKIP_SETUP=1 skips setup and build
# (binaries already in ${BEVKD_BUILD_DIR:-build}); BEVKD_DEMO_EPOCHS sets the teacher's epochs,
# BEVKD_DEMO_SCENES / BEVKD_DEMO_SAMPLES the dataset size (mini_val = scene-0103 and scene-0916),
# BEVKD_DEMO_STUDENT_EPOCHS the students' epochs (both the same).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BEVKD_BUILD_DIR:-build}"
OUT="${BEVKD_DEMO_OUT:-demo-out}"
EPOCHS="${BEVKD_DEMO_EPOCHS:-10}"
SCENES="${BEVKD_DEMO_SCENES:-10}"
SAMPLES="${BEVKD_DEMO_SAMPLES:-20}"
STUDENT_EPOCHS="${BEVKD_DEMO_STUDENT_EPOCHS:-8}"
DEMO_LOSSES=(--loss bevdistill_dense --loss bevdistill_box)
THREADS="${BEVKD_DEMO_THREADS:-$(nproc)}"
if [[ "${BEVKD_DEMO_SKIP_SETUP:-0}" != 1 ]]; then
  scripts/setup.sh
  BEVKD_BUILD_DIR="$BUILD_DIR" scripts/build.sh
fi
BIN="$BUILD_DIR"
mkdir -p "$OUT"
step() { echo; echo "=== demo: $* ($(date +%H:%M:%S))"; }

step "1/10 synthetic dataset ($SCENES scenes x $SAMPLES samples; the devkit's mini_train / mini_val select them)"
rm -rf "$OUT/synth"
"$BIN/core/synth/bevkd-synth" --out "$OUT/synth" --scenes "$SCENES" --samples "$SAMPLES" --lidar-sweeps 2 \
  --image-size 320x180 --seed 1 --threads "$THREADS" --quiet

step "2/10 fit the tiny teacher ($EPOCHS epochs; resumes if interrupted)"
"$BIN/precompute/bevkd-precompute" fit-teacher --dataroot "$OUT/synth" --preset tiny --out "$OUT/teacher" \
  --train-split mini_train --val-split mini_val --sweeps 3 --epochs "$EPOCHS" --batch-size 4 --lr 3e-3 \
  --workers 2 --threads "$THREADS" --log-every 10

step "3/10 precompute mini_train and mini_val into shards (2 views)"
rm -rf "$OUT/shards" "$OUT/eval"  # the demo starts over (a rerun of run itself resumes)
"$BIN/precompute/bevkd-precompute" run --dataroot "$OUT/synth" --checkpoint "$OUT/teacher/teacher.ckpt" \
  --split mini_train,mini_val --sweeps 3 --views 2 --samples-per-shard 8 --threads "$THREADS" --out "$OUT/shards"

step "4/10 inspect: summary, verify, render; do the teacher's boxes sit on the GT in every stored view?"
"$BIN/storage/bevkd-inspect" summary "$OUT/shards"
"$BIN/storage/bevkd-inspect" verify "$OUT/shards"
VAL_SHARD="$OUT/shards/mini_val/shard-00000.h5"
"$BIN/storage/bevkd-inspect" render "$VAL_SHARD" --sample 0 --score-min 0.3 -o "$OUT/val_sample0.png"
"$BIN/storage/bevkd-inspect" render "$VAL_SHARD" --sample 0 --view 1 --score-min 0.3 -o "$OUT/val_sample0_view1.png"
"$BIN/train/bevkd-train" check-views --shards "$OUT/shards" --dataroot "$OUT/synth" --split mini_train

step "5/10 the stored teacher boxes of mini_val as a results JSON"
"$BIN/precompute/bevkd-precompute" export-results --shards "$OUT/shards" --split mini_val \
  -o "$OUT/eval/teacher_results.json"

step "6/10 bevkd-eval with the GT stored in the shards"
"$BIN/core/eval/bevkd-eval" --shards "$OUT/shards" --split mini_val --output-dir "$OUT/eval" \
  --threads "$THREADS" "$OUT/eval/teacher_results.json"

STUDENT_ARGS=(--shards "$OUT/shards" --dataroot "$OUT/synth" --preset tiny --train-split mini_train
              --val-split mini_val --epochs "$STUDENT_EPOCHS" --batch-size 4 --lr 2e-3 --weight-decay 1e-2
              --loader-threads 2 --threads "$THREADS" --log-every 20)
step "7/10 train the baseline tiny camera student (detection + depth losses; resumes if interrupted)"
"$BIN/train/bevkd-train" train "${STUDENT_ARGS[@]}" --out "$OUT/student-baseline"

step "8/10 train the distilled student: the same steps, seed and data order + ${DEMO_LOSSES[*]}"
"$BIN/train/bevkd-train" train "${STUDENT_ARGS[@]}" "${DEMO_LOSSES[@]}" --out "$OUT/student-distilled"

step "9/10 evaluate both students: bevkd-train eval, and bevkd-eval on their results JSON"
for s in baseline distilled; do
  "$BIN/train/bevkd-train" eval --checkpoint "$OUT/student-$s/student.ckpt" --shards "$OUT/shards" \
    --dataroot "$OUT/synth" --split mini_val --out "$OUT/student-$s/eval-mini_val" --quiet
  "$BIN/core/eval/bevkd-eval" --shards "$OUT/shards" --split mini_val --output-dir "$OUT/student-$s/bevkd-eval" \
    --threads "$THREADS" "$OUT/student-$s/eval-mini_val/results_nusc.json" > /dev/null
done
"$BIN/train/bevkd-train" plot --metrics "$OUT/student-baseline/metrics.jsonl" --label baseline \
  --metrics "$OUT/student-distilled/metrics.jsonl" --label distilled --out "$OUT/students_loss.png" > /dev/null

step "10/10 teacher vs students on mini_val"
python3 - "$OUT" "${DEMO_LOSSES[*]}" <<'PY' | tee "$OUT/demo_table.md"
import json, sys
out, losses = sys.argv[1], sys.argv[2]
def metrics(path):
    m = json.load(open(path))
    tp = m["tp_errors"]
    return [m["mean_ap"], m["nd_score"], tp["trans_err"], tp["scale_err"], tp["orient_err"], tp["vel_err"], tp["attr_err"]]
def train_time(run):
    recs = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if l.strip()]
    steps = [r for r in recs if "event" not in r]
    return steps[-1]["elapsed_s"], steps[-1]["step"]
rows = [("teacher (LiDAR, tiny pillars)", metrics(f"{out}/eval/metrics_summary.json"), "")]
for s, name in (("baseline", "baseline student (det + depth)"), ("distilled", "distilled student (+ " + losses.replace("--loss ", "").replace(" ", " + ") + ")")):
    t, n = train_time(f"student-{s}")
    rows.append((name, metrics(f"{out}/student-{s}/bevkd-eval/metrics_summary.json"), f"{t / 60:.1f} min ({n} steps)"))
print("| model | mAP | NDS | mATE | mASE | mAOE | mAVE | mAAE | training time |")
print("|---|---|---|---|---|---|---|---|---|")
for name, m, t in rows:
    print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in m) + f" | {t} |")
teacher_map = rows[0][1][0]
print(f"\nteacher mini_val mAP {teacher_map:.4f} ({'>=' if teacher_map >= 0.15 else 'BELOW'} the 0.15 the demo needs)")
PY

cat <<EOF

demo: done. Outputs under $OUT/:
  synth/                     the synthetic nuScenes-format dataset (v1.0-mini)
  teacher/teacher.ckpt       the fitted tiny teacher (metrics.jsonl, eval/ beside it)
  shards/manifest.json       the precomputed shards (mini_train/, mini_val/), reports/ with stage timings
  val_sample0.png            BEV picture of a mini_val sample (features, fg mask, GT and teacher boxes);
  val_sample0_view1.png      the same sample's augmented view 1
  eval/metrics_summary.json  the teacher's nuScenes metrics on mini_val (from the shards), plots/ beside it
  student-baseline/          the baseline student: student.ckpt, config.json, metrics.jsonl, plots/loss.png,
                             eval-mini_val/ (results JSON, metrics, PR curves in plots/)
  student-distilled/         the distilled student, the same files
  students_loss.png          loss curves of both students (total and heat-map terms)
  demo_table.md              the table above
EOF
