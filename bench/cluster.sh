#!/usr/bin/env bash
# Cluster figures for bench/RESULTS.md, measured side by side in one run:
# bulk load, distributed implicit ALS against the single-process trainer,
# bytes per ALS iteration, full training, and hybrid top-10 query latency and
# throughput from a load generator on the same machine.
# usage: bench/cluster.sh [BUILD_DIR] [NODES] [PARTITIONS]
set -euo pipefail
build=${1:-build}
nodes=${2:-3}
partitions=${3:-7}
work=$(mktemp -d /tmp/shardrec-bench-XXXXXX)
export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
trap 'cluster/local.sh down || true; rm -rf "$work"' EXIT

"$build/shardrec" gen --users 6000 --items 4000 --events 1350000 --seed 1 \
  --out "$work/events.csv" --items-out "$work/items.csv"
echo "== single-process implicit ALS, 64 factors x 15 iterations, 2 threads (same data)"
"$build/shardrec_bench" --benchmark_filter='BM_implicit_als_1m/2' 2>/dev/null | grep BM_ || true

echo "== bulk load into 1 node, $partitions partitions (the node's own rate; the client shares the cores)"
address=$(cluster/local.sh up 1 --partitions "$partitions")
"$build/shardrec" --cluster "$address" load "$work/events.csv" --format events --quiet
cluster/local.sh down

address=$(cluster/local.sh up "$nodes" --partitions "$partitions")
cli() { "$build/shardrec" --cluster "$address" "$@"; }
echo "== $nodes nodes, $partitions partitions"
cli load "$work/events.csv" --format events --items "$work/items.csv" --quiet
echo "== distributed implicit ALS, 64 factors x 15 iterations"
cli train --algo implicit-als --json
echo "== bytes per ALS iteration: 1 and 2 iterations"
cli train --algo implicit-als --iterations 1 --json
cli train --algo implicit-als --iterations 2 --json
echo "== full training (all models)"
cli train --json
echo "== hybrid top-10 queries"
cli bench --queries 5000 --window 8 --json
cli bench --queries 2000 --window 1 --json
echo "== the same, repeat users (blend statistics cached)"
cli bench --queries 5000 --users 1000 --window 8 --json
cli bench --queries 5000 --users 1000 --window 8 --json
cli bench --queries 2000 --users 1000 --window 1 --json
echo "== the same, every query through the --cluster node"
cli bench --queries 5000 --users 1000 --window 8 --route entry --json
