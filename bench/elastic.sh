#!/usr/bin/env bash
# A join under load, measured in one run (figures for bench/RESULTS.md):
# a 2-node cluster (with its etcd) holding a generated set of EVENTS events,
# trained (implicit ALS); then, while one client streams more events and
# another runs top-10 queries, a third node joins and takes its share of the
# partitions. Prints: query p50/p99 without a move and during it (the same
# query run), the time from `local.sh add` to the flipped map (the move of
# about a third of the data), and the event accounting (every acknowledged
# event must be in `status`).
# usage: bench/elastic.sh [BUILD_DIR] [EVENTS] [PARTITIONS]
set -euo pipefail
build=${1:-build}
events=${2:-1000000}
partitions=${3:-16}
work=$(mktemp -d /tmp/shardrec-elastic-XXXXXX)
export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
trap 'cluster/local.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
users=$(( events / 150 )); items=$(( events / 250 ))
"$build/shardrec" gen --users "$users" --items "$items" --events "$events" --seed 1 --out "$work/events.csv"
"$build/shardrec" gen --users "$users" --items "$items" --events 400000 --seed 2 --out "$work/stream.csv"
address=$(cluster/local.sh up 2 --partitions "$partitions")
cli() { "$build/shardrec" --cluster "$address" "$@"; }
endpoint=$(cluster/local.sh etcd)
map() { ETCDCTL_API=3 etcdctl --endpoints "$endpoint" get /shardrec/map --print-value-only; }
echo "== $events events on 2 nodes, $partitions partitions ($users users, $items items)"
cli load "$work/events.csv" --format events --quiet
cli train --algo implicit-als --json | grep -o '"seconds":[^,}]*' | head -1
echo "== queries, no move, no ingest (window 1)"
cli bench --queries 2000 --window 1 --json
echo "== events stream in (batches of 100, window 1); queries, no move"
cli load "$work/stream.csv" --format events --batch 100 --window 1 --quiet > "$work/stream.out" 2>&1 &
loader=$!
sleep 1
cli bench --queries 2000 --window 1 --json
echo "== the same stream and queries while a third node joins"
cli bench --queries 2000 --window 1 --json > "$work/during.json" &
asker=$!
sleep 0.5
t0=$(date +%s.%N)
cluster/local.sh add > /dev/null
until map | grep -q '"moving":\[\]' && map | grep -q '"owner":\[[^]]*2'; do sleep 0.05; done
t1=$(date +%s.%N)
wait "$asker"; wait "$loader"
echo "queries during the move: $(cat "$work/during.json")"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "join to flipped map: %.2f s\n", b - a }'
grep -h "copied partition" "$SHARDREC_CLUSTER_DIR"/node3/log | awk '{ s += $(NF - 1); n++ } END { printf "%d partitions copied, %.2f s copying in all\n", n, s }'
cat "$work/stream.out"
streamed=$(grep -o '[0-9]* accepted' "$work/stream.out" | grep -o '[0-9]*')
sleep 1
cli status --json | awk -v want=$(( events + streamed )) '{
  match($0, /"events":[0-9]+/); got = substr($0, RSTART + 9, RLENGTH - 9)
  printf "events in the cluster: %d of %d acknowledged\n", got, want }'
cli nodes
