#!/usr/bin/env bash
# Packs what a CUDA build of bevkd needs from this Debian machine into one folder (default .carry/,
# ignored by git) for the GPU machine, which has PyTorch (a CUDA LibTorch with its CMake files),
# CMake and ninja but no Debian packages and no network. Carry that folder with the run
# (the device tool's `carry`) and build there with scripts/device_run.sh.
#
# What goes in, in the /usr layout so the relative paths inside the CMake package files hold:
#   * headers: HDF5, oneTBB, CLI11, nlohmann-json, simdjson, GoogleTest/GoogleMock, libjpeg-turbo,
#     libpng, xxHash, zstd, zlib;
#   * CMake package files: TBB, GTest, libjpeg-turbo, simdjson, zstd, CLI11, nlohmann_json;
#   * libraries: the shared ones bevkd links and their dependency closure (ldd), except the C and
#     C++ runtimes the other machine has (libc, libm, libstdc++, libgcc_s, ld-linux, ...); static
#     GoogleTest / GoogleMock.
# Prints the folder's size, which must stay under the carry limit (64 MiB).
#   scripts/device_pack.sh [OUT=.carry]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-.carry}"
ML=/usr/lib/x86_64-linux-gnu
rm -rf "$OUT"
mkdir -p "$OUT/usr/include" "$OUT$ML/cmake" "$OUT/usr/share/cmake"

# Headers (multiarch ones: jconfig.h, zconf.h on some releases).
for h in hdf5 oneapi tbb CLI nlohmann gtest gmock simdjson.h turbojpeg.h jpeglib.h jmorecfg.h jerror.h png.h \
         pngconf.h pnglibconf.h xxhash.h xxh3.h zstd.h zstd_errors.h zdict.h zlib.h zconf.h; do
  [ -e "/usr/include/$h" ] && cp -a "/usr/include/$h" "$OUT/usr/include/"
done
mkdir -p "$OUT/usr/include/x86_64-linux-gnu"
for h in jconfig.h zconf.h; do
  [ -e "/usr/include/x86_64-linux-gnu/$h" ] && cp -a "/usr/include/x86_64-linux-gnu/$h" "$OUT/usr/include/x86_64-linux-gnu/"
done

# CMake package files.
for d in TBB GTest libjpeg-turbo simdjson zstd; do cp -a "$ML/cmake/$d" "$OUT$ML/cmake/"; done
for d in CLI11 nlohmann_json; do cp -a "/usr/share/cmake/$d" "$OUT/usr/share/cmake/"; done
mkdir -p "$OUT$ML/pkgconfig"
cp -a "$ML/pkgconfig/libxxhash.pc" "$OUT$ML/pkgconfig/" 2>/dev/null || true

# HDF5's serial layout (FindHDF5 with HDF5_ROOT=$OUT$ML/hdf5/serial).
mkdir -p "$OUT$ML/hdf5"
cp -a "$ML/hdf5/serial" "$OUT$ML/hdf5/"

# Libraries: each with its symlink chain, then the ldd closure.
copy_lib() {  # a path under $ML (a symlink or a file): the chain and the file it resolves to
  local p="$1"
  while [ -L "$p" ]; do
    cp -a "$p" "$OUT$ML/"
    local t; t=$(readlink "$p")
    case "$t" in /*) p="$t" ;; *) p="$(dirname "$p")/$t" ;; esac
  done
  [ -e "$OUT$ML/$(basename "$p")" ] || cp -a "$p" "$OUT$ML/"
}
libs=(libhdf5_serial.so libhdf5_serial_hl.so libtbb.so libtbbmalloc.so libturbojpeg.so libjpeg.so libsimdjson.so
      libpng16.so libpng.so libxxhash.so libzstd.so libz.so)
for l in "${libs[@]}"; do [ -e "$ML/$l" ] && copy_lib "$ML/$l"; done
for a in libgtest.a libgtest_main.a libgmock.a libgmock_main.a; do cp -a "$ML/$a" "$OUT$ML/"; done
skip='^(linux-vdso|libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl\.so|librt\.so|libresolv)'
for l in "${libs[@]}"; do
  [ -e "$ML/$l" ] || continue
  ldd "$ML/$l" | awk '/=> \//{print $1" "$3}' | while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    [ -e "$OUT$ML/$name" ] || copy_lib "$path"
  done
done

# Every file the packed CMake target files import (static archives included: CMake checks that
# each imported file exists, even for targets bevkd does not link).
grep -rhoE '\$\{_IMPORT_PREFIX\}/lib/x86_64-linux-gnu/[^" )]+' "$OUT$ML/cmake" | sort -u | while read -r f; do
  f="$ML/${f##*/}"
  [ -e "$f" ] && [ ! -e "$OUT$ML/$(basename "$f")" ] && copy_lib "$f"
done

size=$(du -sb "$OUT" | cut -f1)
echo "device_pack: $OUT holds $(find "$OUT" -type f | wc -l) files, $((size / 1048576)) MiB (limit 64 MiB)"
[ "$size" -lt $((64 * 1048576)) ] || { echo "device_pack: over the 64 MiB carry limit" >&2; exit 1; }
