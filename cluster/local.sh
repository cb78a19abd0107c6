#!/usr/bin/env bash
# Starts or stops a local shardrec cluster on 127.0.0.1.
#   cluster/local.sh up N [--partitions P] [--threads T]
#                                            start N nodes (free ports), print the first node's address;
#                                            T scheduler threads each (default: cores / N, at least 1)
#   cluster/local.sh down                    stop the nodes of the last `up`
# Environment: SHARDREC_BIN (folder with shardrec-node; default build),
#              SHARDREC_CLUSTER_DIR (state folder; default /tmp/shardrec-local-$USER).
set -euo pipefail
bin=${SHARDREC_BIN:-build}
dir=${SHARDREC_CLUSTER_DIR:-/tmp/shardrec-local-${USER:-$(id -u)}}
cmd=${1:-}
case "$cmd" in
  up)
    n=${2:-3}
    shift 2 || true
    partitions=64
    threads=$(( $(nproc) / n ))
    [ "$threads" -ge 1 ] || threads=1
    while [ $# -gt 0 ]; do
      case "$1" in
        --partitions) partitions=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "local.sh: unknown option $1" >&2; exit 2 ;;
      esac
    done
    [ -x "$bin/shardrec-node" ] || { echo "local.sh: no $bin/shardrec-node (build first)" >&2; exit 1; }
    if [ -f "$dir/pids" ]; then "$0" down; fi
    mkdir -p "$dir"
    : > "$dir/pids"
    first=""
    for i in $(seq 1 "$n"); do
      nd="$dir/node$i"
      mkdir -p "$nd"
      rm -f "$nd/port"
      args=(--port 0 --port-file "$nd/port" --data-dir "$nd" --partitions "$partitions" --threads "$threads")
      [ -n "$first" ] && args+=(--join "$first")
      "$bin/shardrec-node" "${args[@]}" > "$nd/log" 2>&1 &
      echo $! >> "$dir/pids"
      for _ in $(seq 1 100); do [ -s "$nd/port" ] && break; sleep 0.05; done
      [ -s "$nd/port" ] || { echo "local.sh: node $i did not start; see $nd/log" >&2; cat "$nd/log" >&2; "$0" down; exit 1; }
      [ -z "$first" ] && first="127.0.0.1:$(cat "$nd/port")"
    done
    echo "$first" > "$dir/address"
    echo "$first"
    ;;
  down)
    if [ -f "$dir/pids" ]; then
      while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$dir/pids"
      for _ in $(seq 1 50); do
        alive=0
        while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$dir/pids"
        [ $alive -eq 0 ] && break
        sleep 0.1
      done
      while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$dir/pids"
      rm -f "$dir/pids"
    fi
    ;;
  *)
    echo "usage: cluster/local.sh up N [--partitions P] [--threads T] | down" >&2
    exit 2
    ;;
esac
