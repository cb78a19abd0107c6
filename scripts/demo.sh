#!/usr/bin/env bash
# The main job: set up, build, and run the demo (trains the hybrid recommender
# on ../shared/data/ml-100k when present, else on generated data, and prints
# recommendations with explanations and similar items).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec "${BUILD_DIR:-build}/shardrec" demo "$@"
