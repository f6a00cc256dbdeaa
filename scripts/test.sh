#!/usr/bin/env bash
# The test command: set-up + configure + build + the whole CTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh
scripts/build.sh -DBEVKD_BUILD_TESTS=ON "$@"
BUILD_DIR="${BEVKD_BUILD_DIR:-build}"
built=$(date +%s)
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${BEVKD_JOBS:-$(nproc)}"
end=$(date +%s)
echo "test.sh: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s"
