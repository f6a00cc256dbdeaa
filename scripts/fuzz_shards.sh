#!/usr/bin/env bash
# Fuzzes the shard reader for N minutes (outside the regular test suite):
#
#   scripts/fuzz_shards.sh MINUTES [JOBS] [extra bevkd-fuzz-shard options, e.g. --seed-shard out/train/shard-00000.h5]
#
# Builds bevkd-fuzz-shard (tests/fuzz/shard_fuzz.cpp) if needed, then mutates real shards of
# every schema version this build writes (plus any --seed-shard) and opens each mutated file
# through the reader paths of bevkd-inspect in a child process. Prints the statistics:
# executions, the corpus (seeds + inputs with a new outcome class), crashes, hangs and escaped
# exceptions. Crashing inputs are kept in $FUZZ_WORK/crashes (default build/fuzz-work) with the
# mutation that made them. Exits 1 if anything crashed, hung or threw a foreign exception.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:?usage: scripts/fuzz_shards.sh MINUTES [JOBS] [options]}"
JOBS="${2:-1}"
shift $(( $# >= 2 ? 2 : 1 ))
BUILD_DIR="${BEVKD_BUILD_DIR:-build}"
WORK="${FUZZ_WORK:-$BUILD_DIR/fuzz-work}"
cmake --build "$BUILD_DIR" --target bevkd-fuzz-shard -j "${BEVKD_JOBS:-2}" >/dev/null
rm -rf "$WORK"
"$BUILD_DIR/tests/fuzz/bevkd-fuzz-shard" --work "$WORK" --minutes "$MINUTES" --jobs "$JOBS" --seed "${FUZZ_SEED:-1}" "$@"
# One summary per job (with JOBS > 1 each job has its own directory).
execs=0
for f in $(find "$WORK" -name summary.txt | sort); do
  cat "$f"
  execs=$(( execs + $(sed -n 's/.* done: \([0-9]*\) executions.*/\1/p' "$f") ))
done
bad=$(find "$WORK" -path '*crashes/*.h5' | wc -l)
echo "fuzz_shards: $(find "$WORK" -name summary.txt | wc -l) job(s), $execs executions in $MINUTES min, $bad crashing/hanging/throwing input(s) (kept in $WORK)"
[ "$bad" -eq 0 ]
