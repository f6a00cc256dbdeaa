#!/usr/bin/env bash
# Data-parallel bevkd-train on this machine: the same global batch (GLOBAL samples per step) as
#   1 process,  BATCH=GLOBAL,           THREADS2 intra-op threads
#   1 process,  accumulate 2 x GLOBAL/2, THREADS2 threads    (the micro-batches the ranks take)
#   2 processes (Gloo on loopback), GLOBAL/2 each, 1 thread each, the default 25 MB buckets (the
#     tiny student's gradients fit one bucket, so nothing overlaps)
#   2 processes, 1 MB buckets all-reduced while backward runs (overlap)
#   2 processes, 1 MB buckets all-reduced after backward (--no-dist-overlap)
# STEPS steps each (the first WARMUP logged intervals dropped) on the demo's shards. Prints per
# case the median samples/s, the ratio to the first case, and the share of wall time spent
# waiting in all-reduces (comm_wait, from the metrics log).
#   scripts/bench_ddp.sh [DEMO_OUT=demo-out] [STEPS=40] [GLOBAL=4] [PRESET=tiny]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-demo-out}"
STEPS="${2:-40}"
GLOBAL="${3:-4}"
PRESET="${4:-tiny}"
WARMUP=1
BIN="${BEVKD_BUILD_DIR:-build}/train/bevkd-train"
RUNS="$OUT/bench-ddp"
rm -rf "$RUNS"
mkdir -p "$RUNS"
HALF=$((GLOBAL / 2))
common=(train --shards "$OUT/shards" --dataroot "$OUT/synth" --preset "$PRESET" --train-split mini_train
        --epochs 100 --stop-after "$STEPS" --lr 2e-3 --loader-threads 1 --log-every 5 --no-plots --quiet)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
two_ranks() {
  local out="$1"; shift
  local port; port=$(free_port)
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 LOCAL_RANK=0 "$BIN" "${common[@]}" --out "$out" "$@" \
    > "$out.rank0.log" 2>&1 & local p0=$!
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 LOCAL_RANK=1 "$BIN" "${common[@]}" --out "$out" "$@" \
    > "$out.rank1.log" 2>&1 & local p1=$!
  wait $p0; wait $p1
}
echo "bench_ddp: $PRESET, global batch $GLOBAL, $STEPS steps per case, shards $OUT/shards ($(nproc) cores)" >&2
"$BIN" "${common[@]}" --out "$RUNS/one-process" --batch-size "$GLOBAL" --threads 2 > /dev/null
"$BIN" "${common[@]}" --out "$RUNS/one-process-accumulate2" --batch-size "$HALF" --accumulate 2 --threads 2 > /dev/null
two_ranks "$RUNS/two-ranks" --batch-size "$HALF" --threads 1
two_ranks "$RUNS/two-ranks-1mb-overlap" --batch-size "$HALF" --threads 1 --dist-bucket-mb 1
two_ranks "$RUNS/two-ranks-1mb-no-overlap" --batch-size "$HALF" --threads 1 --dist-bucket-mb 1 --no-dist-overlap
python3 - "$RUNS" "$WARMUP" <<'PY'
import json, statistics, sys
runs, warm = sys.argv[1], int(sys.argv[2])
cases = [("1 process, batch G, 2 threads", "one-process"),
         ("1 process, accumulate 2 x G/2, 2 threads", "one-process-accumulate2"),
         ("2 processes x G/2, 1 thread, 25 MB buckets (one)", "two-ranks"),
         ("2 processes x G/2, 1 thread, 1 MB buckets, overlap", "two-ranks-1mb-overlap"),
         ("2 processes x G/2, 1 thread, 1 MB buckets, no overlap", "two-ranks-1mb-no-overlap")]
base = None
def buckets(d):
    recs = [json.loads(l) for l in open(f"{runs}/{d}/metrics.jsonl") if l.strip()]
    return next((str(r["buckets"]) for r in recs if "buckets" in r), "-")
print("| case | samples/s (median) | ratio | all-reduce wait (share of wall time) | buckets |")
print("|---|---|---|---|---|")
for name, d in cases:
    recs = [json.loads(l) for l in open(f"{runs}/{d}/metrics.jsonl") if l.strip()]
    steps = [r for r in recs if "event" not in r][warm:]
    sps = statistics.median(r["samples_per_s"] for r in steps)
    comm = statistics.median(r.get("comm_wait", 0.0) for r in steps)
    base = base or sps
    print(f"| {name} | {sps:.2f} | {sps / base:.2f} | {100 * comm:.1f} % | {buckets(d)} |")
PY
