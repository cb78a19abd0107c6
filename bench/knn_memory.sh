#!/usr/bin/env bash
# Per-node peak memory of item-kNN training at 1, 2 and 4 nodes, two builds
# side by side in one run (figures for bench/RESULTS.md). For each node
# count and build: a fresh cluster (--no-etcd, free ports, its own folder
# under /tmp), load a generated set of EVENTS events (users = EVENTS / 150,
# items = EVENTS / 250, as bench/elastic.sh), let the nodes settle, then two
# training runs, each after resetting every node's peak
# (/proc/PID/clear_refs 5): `train --algo popular` (the run's copy of the
# store, the binarized copy, publish and snapshot: everything but kNN) and
# `train --algo itemknn`. Per node: RSS before, the peak (VmHWM) of each
# run, and the kNN part = itemknn peak - popular peak (what item-kNN adds
# to a run's peak); then the knn phase's seconds and bytes, and whether the
# two builds answer `similar` (top 40) the same for 30 items.
# usage: bench/knn_memory.sh OLD_BUILD NEW_BUILD [EVENTS] [PARTITIONS]
set -euo pipefail
old=${1:?usage: bench/knn_memory.sh OLD_BUILD NEW_BUILD [EVENTS] [PARTITIONS]}
new=${2:?usage: bench/knn_memory.sh OLD_BUILD NEW_BUILD [EVENTS] [PARTITIONS]}
events=${3:-4500000}
partitions=${4:-16}
work=$(mktemp -d /tmp/shardrec-knnmem-XXXXXX)
export SHARDREC_CLUSTER_DIR=$work/cluster
trap 'cluster/local.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
users=$((events / 150)); items=$((events / 250))
"$new/shardrec" gen --users "$users" --items "$items" --events "$events" --seed 1 \
  --out "$work/events.csv"
echo "== $events events ($users users, $items items), P = $partitions; kB per node"
kb() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }
field() { grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2; }
declare -A one_part=() one_peak=()
for nodes in 1 2 4; do
  for build in "$old" "$new"; do
    tag=$(basename "$(dirname "$(realpath "$build")")")/$(basename "$build")
    export SHARDREC_BIN=$build
    address=$(cluster/local.sh up "$nodes" --partitions "$partitions" --no-etcd)
    "$build/shardrec" --cluster "$address" load "$work/events.csv" --format events --quiet >/dev/null
    sleep 3 # snapshots and log syncs after the load settle
    pids=$(cat "$SHARDREC_CLUSTER_DIR"/node*/pid)
    declare -A before=() base=()
    for p in $pids; do
      before[$p]=$(kb "$p" VmRSS)
      echo 5 >"/proc/$p/clear_refs"
    done
    "$build/shardrec" --cluster "$address" train --algo popular --json >/dev/null
    for p in $pids; do
      base[$p]=$(kb "$p" VmHWM)
      echo 5 >"/proc/$p/clear_refs"
    done
    "$build/shardrec" --cluster "$address" train --algo itemknn --json >"$work/train.json"
    line="nodes=$nodes $tag"
    most_part=0 most_peak=0
    for p in $pids; do
      peak=$(kb "$p" VmHWM)
      part=$((peak - ${base[$p]}))
      line+=" | rss ${before[$p]} popular ${base[$p]} itemknn $peak knn_part $part"
      ((part > most_part)) && most_part=$part
      ((peak > most_peak)) && most_peak=$peak
    done
    knn=$(grep -o '"knn":[0-9.e+-]*' "$work/train.json" | head -1 | cut -d: -f2)
    echo "$line | knn ${knn:-?} s, bytes $(field "$work/train.json" bytes_sent)"
    [ "$nodes" = 1 ] && { one_part[$tag]=$most_part; one_peak[$tag]=$most_peak; }
    awk -v n="$nodes" -v t="$tag" -v a="$most_part" -v b="${one_part[$tag]}" \
      -v c="$most_peak" -v d="${one_peak[$tag]}" 'BEGIN {
      printf "  %s at %d node(s): largest kNN part %.3f x the 1-node one, largest itemknn peak %.3f x\n",
        t, n, a / b, c / d }'
    for i in $(seq 0 29); do
      "$build/shardrec" --cluster "$address" similar "i$i" -n 40 --json
      echo
    done >"$work/similar.$nodes.$([ "$build" = "$old" ] && echo old || echo new)"
    cluster/local.sh down >/dev/null
    cluster/local.sh clean >/dev/null 2>&1 || rm -rf "$SHARDREC_CLUSTER_DIR"
    unset before base
  done
  if cmp -s "$work/similar.$nodes.old" "$work/similar.$nodes.new"; then
    echo "nodes=$nodes: similar (top 40, 30 items) identical"
  else
    echo "nodes=$nodes: similar DIFFERS"
  fi
done
