#!/usr/bin/env bash
# Configures and builds bevkd into ${BEVKD_BUILD_DIR:-build} (Release, Ninja). Extra arguments
# go to CMake's configure step, e.g. scripts/build.sh -DBEVKD_WITH_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BEVKD_BUILD_DIR:-build}"
JOBS="${BEVKD_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$JOBS"
