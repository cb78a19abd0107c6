#!/usr/bin/env bash
# Accuracy figures on the public data with `shardrec eval --local --json`.
# usage: bench/accuracy.sh [BUILD_DIR] [DATA_DIR]
# Prints one JSON line per run and the mean RMSE over the five ML-100K folds.
set -euo pipefail
build=${1:-build}
data=${2:-../shared/data}
ml=$data/ml-100k
for algo in mf hybrid; do
  sum=0
  for f in 1 2 3 4 5; do
    out=$("$build/shardrec" eval --local --train "$ml/u$f.base" --test "$ml/u$f.test" --algo "$algo" --json 2>/dev/null)
    echo "u$f $algo $out"
    rmse=$(echo "$out" | sed -n 's/.*"rmse":\([0-9.eE+-]*\).*/\1/p')
    sum=$(awk -v s="$sum" -v r="$rmse" 'BEGIN { printf "%.6f", s + r }')
  done
  awk -v s="$sum" -v a="$algo" 'BEGIN { printf "ML-100K u1..u5 mean RMSE %s: %.4f\n", a, s / 5 }'
done
for algo in implicit-als ease hybrid; do
  out=$("$build/shardrec" eval --local --train "$ml/u1.base" --test "$ml/u1.test" --algo "$algo" --json 2>/dev/null)
  echo "u1 ranking $algo $out"
done
