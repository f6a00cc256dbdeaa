#!/usr/bin/env bash
# The one prepared device check, run on the GPU machine from the repository root with the folder of
# scripts/device_pack.sh carried (default .carry/): builds bevkd with CUDA against PyTorch's own
# LibTorch (no Debian package there), then runs
#   * the CUDA tests: every CudaTwin case (CPU reference vs CUDA twin of each kernel, deformable
#     attention forward and backward included) and the kernels' other tests on the GPU build;
#   * the kernels benchmark on CPU and CUDA side by side (bench/kernels_bench.cpp);
#   * then the offline-vs-online benchmark on the GPU (scripts/offline_online_small.sh; skip it
#     with DEVICE_OFFLINE_ONLINE=0);
# and copies the logs to $OUT (the device tool returns that folder). Sized for the device budget
# (estimated, never timed on the GPU machine): about 4–6 minutes of build on 16 cores, under a
# minute of tests and benchmark, then 2–3 minutes more for the offline/online stage.
#   scripts/device_run.sh [PACK=.carry] [BUILD=build-gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
PACK="$(cd "${1:-.carry}" && pwd)"
BUILD="${2:-build-gpu}"
OUT="${OUT:-$BUILD/out}"
mkdir -p "$OUT"
ML="$PACK/usr/lib/x86_64-linux-gnu"
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
{
  echo "device: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
  cmake --version | head -1
} | tee "$OUT/environment.txt"
# Debian's packs are built with the C++11 ABI; a LibTorch without it cannot link them.
[ "$ABI" = 1 ] || echo "device_run: warning: this LibTorch uses the pre-C++11 ABI; linking the packed C++ libraries (GTest, TBB) may fail" | tee -a "$OUT/environment.txt"
export LD_LIBRARY_PATH="$ML:$ML/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
JOBS=$(nproc)
t0=$(date +%s)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBEVKD_WITH_CUDA=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PACK/usr;$ML/cmake;$PACK/usr/share/cmake" \
  -DHDF5_ROOT="$ML/hdf5/serial" -DCMAKE_INCLUDE_PATH="$PACK/usr/include;$PACK/usr/include/x86_64-linux-gnu" \
  -DCMAKE_LIBRARY_PATH="$ML" -DPKG_CONFIG_EXECUTABLE=/nonexistent 2>&1 | tee "$OUT/configure.txt" | tail -5
ninja -C "$BUILD" -j "$JOBS" bevkd_test_kernels bevkd-bench-kernels 2>&1 | tee "$OUT/build.txt" | tail -3
echo "device_run: configure + build $(( $(date +%s) - t0 )) s" | tee -a "$OUT/environment.txt"
set +e
"$BUILD/tests/kernels/bevkd_test_kernels" 2>&1 | tee "$OUT/kernels_tests.txt" | tail -20
rc_tests=${PIPESTATUS[0]}
"$BUILD/bench/bevkd-bench-kernels" 2>&1 | tee "$OUT/kernels_bench.txt" | tail -40
rc_bench=${PIPESTATUS[0]}
set -e
grep -c "^\[       OK \] CudaTwin" "$OUT/kernels_tests.txt" | xargs echo "device_run: CudaTwin cases passed:"
echo "device_run: kernels tests exit $rc_tests, benchmark exit $rc_bench" | tee -a "$OUT/environment.txt"
# Then (unless DEVICE_OFFLINE_ONLINE=0) issue 15's headline on the GPU: offline vs online teacher,
# tiny student + tiny teacher on a small synthetic set made here. The kernel results above are
# already in $OUT if this stage runs out of time.
rc_oo=0
if [ "${DEVICE_OFFLINE_ONLINE:-1}" = 1 ]; then
  set +e
  ninja -C "$BUILD" -j "$JOBS" bevkd-synth bevkd-precompute bevkd-bench-offline-online 2>&1 | tee "$OUT/build2.txt" | tail -2
  scripts/offline_online_small.sh "$BUILD" cuda "$BUILD/offline-online" 2>&1 | tee "$OUT/offline_online.txt" | tail -8
  rc_oo=${PIPESTATUS[0]}
  set -e
  echo "device_run: offline/online exit $rc_oo" | tee -a "$OUT/environment.txt"
fi
[ "$rc_tests" = 0 ] && [ "$rc_bench" = 0 ] && [ "$rc_oo" = 0 ]
