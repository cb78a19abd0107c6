#!/usr/bin/env bash
# The whole test suite: set up, build, run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 -j2 "$@"
