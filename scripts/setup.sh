#!/usr/bin/env bash
# Installs what shardrec needs on Debian 12 (apt-get, only missing packages),
# then configures and builds into build/ (Ninja + ccache, Release).
# Environment: BUILD_DIR (default build), SHARDREC_CMAKE_ARGS (extra cmake args).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build ccache pkg-config libcaf-dev capnproto libcapnp-dev
          libeigen3-dev libboost-program-options-dev libgtest-dev libgmock-dev libbenchmark-dev
          zlib1g-dev nlohmann-json3-dev libboost-dev etcd-server etcd-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=${BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SHARDREC_CMAKE_ARGS:-} >/dev/null
elif [ -n "${SHARDREC_CMAKE_ARGS:-}" ]; then
  # shellcheck disable=SC2086
  cmake "$build_dir" ${SHARDREC_CMAKE_ARGS} >/dev/null
fi
cmake --build "$build_dir"
