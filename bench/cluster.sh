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
echo "== single-process item-item cosine lists (k = 40), 2 threads (same data)"
"$build/shardrec_bench" --benchmark_filter='BM_item_neighbors_1m/2' 2>/dev/null | grep BM_ || true
echo "== CPU per hybrid top-10 query without transport (in-process pipeline, P = 7 on 3 'nodes') next to the single-process hybrid"
"$build/shardrec_query_bench" 2>/dev/null | grep BM_ || true

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
echo "== distributed item-kNN (rows exchange, 40 neighbours)"
cli train --algo itemknn --json
echo "== full training (all models)"
cli train --json
echo "== hybrid top-10 queries"
# CPU seconds (user, system) the nodes and the load generator spend on a
# run, from /proc: where the per-query CPU goes on the shared cores.
cpu_of() { for p in "$@"; do awk '{u += $14; s += $15} END {printf "%d %d\n", u, s}' "/proc/$p/stat"; done \
  | awk '{u += $1; s += $2} END {print u, s}'; }
pids=$(cat "$SHARDREC_CLUSTER_DIR"/node*/pid)
before=$(cpu_of $pids)
tick=$(getconf CLK_TCK)
TIMEFORMAT='%U %S'
{ time "$build/shardrec" --cluster "$address" bench --queries 5000 --window 8 --json 2>&3; } 3>&2 2> "$work/client_cpu"
after=$(cpu_of $pids)
read -r bu bs <<< "$before"; read -r au as <<< "$after"; read -r cu cs < "$work/client_cpu"
awk -v nu=$((au - bu)) -v ns=$((as - bs)) -v t="$tick" -v cu="$cu" -v cs="$cs" 'BEGIN {
  printf "CPU per query (5,000 queries): nodes %.0f us user + %.0f us system, load generator %.0f us user + %.0f us system\n",
    nu / t / 5000 * 1e6, ns / t / 5000 * 1e6, cu / 5000 * 1e6, cs / 5000 * 1e6 }'
cli bench --queries 2000 --window 1 --json
echo "== the same, repeat users (blend statistics cached)"
cli bench --queries 5000 --users 1000 --window 8 --json
cli bench --queries 5000 --users 1000 --window 8 --json
cli bench --queries 2000 --users 1000 --window 1 --json
echo "== the same, every query through the --cluster node"
cli bench --queries 5000 --users 1000 --window 8 --route entry --json
