#!/usr/bin/env bash
# Hybrid top-10 query figures of two builds side by side, alternating, on the
# same data and machine (the machine is shared and noisy: compare within one
# run). Each build gets its own 3-node cluster (P = 7), loads the 1M
# synthetic set, trains every model, then runs the load generator. Each
# build runs its own `shardrec bench` (builds of different protocol major
# versions cannot talk to each other); set SAME_GENERATOR=1 to use BUILD_B's
# for both when their protocols match, so that only the cluster differs.
# usage: bench/query_ab.sh BUILD_A BUILD_B [ROUNDS]
set -euo pipefail
a=${1:?usage: bench/query_ab.sh BUILD_A BUILD_B [ROUNDS]}
b=${2:?usage: bench/query_ab.sh BUILD_A BUILD_B [ROUNDS]}
rounds=${3:-2}
work=$(mktemp -d /tmp/shardrec-ab-XXXXXX)
trap 'SHARDREC_CLUSTER_DIR=$work/cluster cluster/local.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$b/shardrec" gen --users 6000 --items 4000 --events 1350000 --seed 1 \
  --out "$work/events.csv" --items-out "$work/items.csv" >/dev/null
summary() {
  python3 -c 'import json,sys
d=json.load(sys.stdin)
print("%s %-28s %5.0f queries/s  p50 %6.2f ms  p99 %6.2f ms" % (sys.argv[1], sys.argv[2], d["qps"], d["p50_ms"], d["p99_ms"]))' "$@"
}
for round in $(seq "$rounds"); do
  for build in "$a" "$b"; do
    export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
    address=$(cluster/local.sh up 3 --partitions 7)
    cli() { "$build/shardrec" --cluster "$address" "$@"; }
    cli load "$work/events.csv" --format events --items "$work/items.csv" --quiet >/dev/null
    cli train --json >/dev/null
    generator=$build
    [ "${SAME_GENERATOR:-0}" = 1 ] && generator=$b
    gen() { "$generator/shardrec" --cluster "$address" bench "$@" --json; }
    gen --queries 4000 --window 8 | summary "$build" "first queries, window 8"
    gen --queries 4000 --users 1000 --window 8 | summary "$build" "repeat users, window 8"
    gen --queries 1000 --window 1 | summary "$build" "first queries, window 1"
    gen --queries 1000 --users 1000 --window 1 | summary "$build" "repeat users, window 1"
    cluster/local.sh down >/dev/null
  done
done
