#!/usr/bin/env bash
# What a second copy costs at ingest: durable bulk load (`load`, the node's
# default --sync always, --batch 20000 --window 4) of a generated set of
# EVENTS events into a new 3-node cluster (etcd, PARTITIONS partitions) with
# --replicas 1 (no follower) and with --replicas 2 (a follower confirms every
# batch), alternating R1, R2, R1, R2 in one run (a new cluster each time).
# Prints each load's events/s and the R2 / R1 ratios.
# usage: bench/replication.sh [BIN_DIR] [EVENTS] [PARTITIONS] [ROUNDS]
#   BIN_DIR: folder with shardrec and shardrec-node (default build)
set -euo pipefail
bin=$(cd "${1:-build}" && pwd)
events=${2:-1000000}
partitions=${3:-16}
rounds=${4:-2}
work=$(mktemp -d /tmp/bench-replication-XXXXXX)
mkdir -p "$work/bin"
export SHARDREC_BIN=$work/bin SHARDREC_CLUSTER_DIR=$work/cluster
trap 'cluster/local.sh clean > /dev/null 2>&1 || true; rm -rf "$work"' EXIT
users=$(( events / 150 )); items=$(( events / 250 ))
"$bin/shardrec" gen --users "$users" --items "$items" --events "$events" --seed 1 --out "$work/events.csv" 2> /dev/null
echo "== $events events ($users users, $items items), 3 nodes, $partitions partitions, sync always"
declare -A rates
for round in $(seq 1 "$rounds"); do
  for r in 1 2; do
    # local.sh does not forward --replicas: a wrapper adds it.
    printf '#!/bin/sh\nexec "%s/shardrec-node" "$@" --replicas %s\n' "$bin" "$r" > "$work/bin/shardrec-node"
    chmod +x "$work/bin/shardrec-node"
    address=""
    for _ in 1 2 3; do address=$(cluster/local.sh up 3 --partitions "$partitions") && break; sleep 1; done
    [ -n "$address" ] || { echo "could not start the cluster" >&2; exit 1; }
    out=$("$bin/shardrec" --cluster "$address" load "$work/events.csv" --format events --quiet)
    echo "R$r round $round: $out"
    "$bin/shardrec" --cluster "$address" partitions --json | python3 -c "
import json, sys
j = json.load(sys.stdin)
print('  followers per partition:', sorted(set(len(p['followers']) for p in j['partition_status'])),
      ' events:', sum(p['user_events'] for p in j['partition_status']),
      ' log bytes:', sum(p['log_bytes'] for p in j['partition_status']))"
    du -sb "$SHARDREC_CLUSTER_DIR"/node* | awk '{ s += $1 } END { printf "  data folders: %d bytes\n", s }'
    rates[$r,$round]=$(echo "$out" | grep -o '([0-9]* events/s)' | grep -o '[0-9]*')
    cluster/local.sh clean > /dev/null
  done
done
for round in $(seq 1 "$rounds"); do
  awk -v a="${rates[1,$round]}" -v b="${rates[2,$round]}" -v k="$round" \
    'BEGIN { printf "round %d: R1 %d events/s, R2 %d events/s, R2/R1 = %.3f\n", k, a, b, b / a }'
done
