#!/usr/bin/env bash
# The cluster's MF (the Gibbs sampler, trained across the partitions)
# against `eval --local --algo mf` on the five ML-100K folds: RMSE and MAE
# of each, side by side, and the training seconds of both. NODES nodes
# (default 2), P partitions (default 7) on 127.0.0.1.
# usage: bench/mf_cluster.sh [BUILD_DIR] [DATA_DIR]
set -euo pipefail
build=${1:-build}
data=${2:-../shared/data}
nodes=${NODES:-2}
parts=${P:-7}
export SHARDREC_CLUSTER_DIR=${SHARDREC_CLUSTER_DIR:-$(mktemp -d)}
trap 'SHARDREC_BIN=$build cluster/local.sh clean >/dev/null 2>&1 || true' EXIT
printf "%-4s %-10s %-10s %-10s %-10s %-9s %-9s\n" fold rmse_clu rmse_loc mae_clu mae_loc train_clu train_loc
for f in ${FOLDS:-1 2 3 4 5}; do
  addr=$(SHARDREC_BIN=$build cluster/local.sh up "$nodes" --partitions "$parts" --sync none | tail -1)
  "$build/shardrec" --cluster "$addr" load "$data/ml-100k/u$f.base" --quiet >/dev/null
  t=$("$build/shardrec" --cluster "$addr" train --algo mf --json)
  c=$("$build/shardrec" --cluster "$addr" eval --test "$data/ml-100k/u$f.test" --json)
  l=$("$build/shardrec" eval --local --train "$data/ml-100k/u$f.base" --test "$data/ml-100k/u$f.test" --algo mf --json 2>/dev/null)
  python3 - "$f" "$t" "$c" "$l" <<'PY'
import json, sys
f, t, c, l = sys.argv[1], *map(json.loads, sys.argv[2:])
print("u%-3s %-10.6f %-10.6f %-10.6f %-10.6f %-9.2f %-9.2f" % (f, c["rmse"], l["rmse"], c["mae"], l["mae"],
      t["seconds"], l["train_seconds"]))
PY
  SHARDREC_BIN=$build cluster/local.sh down >/dev/null
done | tee /dev/stderr | awk '/^u[0-9]/ { c += $2; l += $3; n++ } END { printf "mean %-10.6f %-10.6f over %d folds\n", c / n, l / n, n }'
