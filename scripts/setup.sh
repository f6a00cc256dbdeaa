#!/usr/bin/env bash
# Installs every Debian package that bevkd's build, tests and demo need. Idempotent: when all
# packages are present it does nothing (not even apt-get update); otherwise it runs
# apt-get update and installs what is missing. Runs as root, or through sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # libraries (DESIGN.md "Building")
  libtorch-dev libhdf5-dev libzstd-dev libtbb-dev libcli11-dev libgtest-dev
  libturbojpeg0-dev libsimdjson-dev libpng-dev libgloo-dev libopenblas-dev
  nlohmann-json3-dev libxxhash-dev
  # interop tests: stock HDF5 readers with the standard zstd plugin
  python3 python3-numpy python3-h5py python3-hdf5plugin python3-zstandard hdf5-tools
  # loss golden tests: the PyTorch transcription of spec/losses.md (scripts/loss_golden.py)
  python3-torch python3-scipy
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
