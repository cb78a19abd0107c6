#!/usr/bin/env bash
# Starts or stops a local shardrec cluster on 127.0.0.1.
#   cluster/local.sh up N [--partitions P] [--threads T] [--sync MODE]
#                            start N nodes (free ports), print the first node's address;
#                            T scheduler threads each (default: cores / N, at least 1);
#                            MODE: always (default), batch or none (shardrec-node --help)
#   cluster/local.sh down    stop every node (their data folders stay)
#   cluster/local.sh kill I  kill node I (1..N) at once, as a crash would (kill -9)
#   cluster/local.sh start I start node I again with its data folder and port: it comes
#                            back with its partitions and rejoins the others
#   cluster/local.sh clean   stop every node and remove the cluster's folder
# Each node keeps its port and its data folder (DIR/nodeI) across restarts;
# `up` starts a new cluster (it stops the old nodes and clears their folders).
# Environment: SHARDREC_BIN (folder with shardrec-node; default build),
#              SHARDREC_CLUSTER_DIR (state folder; default /tmp/shardrec-local-$USER).
set -euo pipefail
bin=${SHARDREC_BIN:-build}
dir=${SHARDREC_CLUSTER_DIR:-/tmp/shardrec-local-${USER:-$(id -u)}}
cmd=${1:-}

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# wait_port NODE_DIR I [SECONDS]: until node I wrote its port file (or died).
# A restarted node recovers its partitions before it listens: give it time.
wait_port() {
  for _ in $(seq 1 $(( ${3:-10} * 20 ))); do
    [ -s "$1/port" ] && return 0
    alive "$1" || break
    sleep 0.05
  done
  echo "local.sh: node $2 did not start (or is still recovering); its log ($1/log):" >&2
  tail -n 20 "$1/log" >&2
  return 1
}

stop_all() {
  local pids=()
  for nd in "$dir"/node*; do
    [ -d "$nd" ] || continue
    alive "$nd" && pids+=("$(cat "$nd/pid")")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    local any=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
    [ $any -eq 0 ] && break
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  for nd in "$dir"/node*; do rm -f "$nd/pid"; done
}

node_dir() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ -d "$dir/node$1" ] || {
    echo "local.sh: no node '${1:-}' in $dir (nodes: $(ls "$dir" 2>/dev/null | grep -o 'node[0-9]*' | tr '\n' ' '))" >&2
    exit 2
  }
  echo "$dir/node$1"
}

case "$cmd" in
  up)
    shift
    n=3
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then n=$1; shift; fi
    partitions=64
    sync=""   # the node's default (always); not passed, so that older builds still start
    threads=$(( $(nproc) / n ))
    [ "$threads" -ge 1 ] || threads=1
    while [ $# -gt 0 ]; do
      case "$1" in
        --partitions) partitions=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --sync) sync=$2; shift 2 ;;
        *) echo "local.sh: unknown option $1" >&2; exit 2 ;;
      esac
    done
    [ -x "$bin/shardrec-node" ] || { echo "local.sh: no $bin/shardrec-node (build first)" >&2; exit 1; }
    stop_all
    rm -rf "$dir"/node*
    mkdir -p "$dir"
    echo "$threads ${sync:--}" > "$dir/options"
    first=""
    for i in $(seq 1 "$n"); do
      nd="$dir/node$i"
      mkdir -p "$nd"
      args=(--port 0 --port-file "$nd/port" --data-dir "$nd" --partitions "$partitions"
            --threads "$threads")
      [ -n "$sync" ] && args+=(--sync "$sync")
      [ -n "$first" ] && args+=(--join "$first")
      "$bin/shardrec-node" "${args[@]}" >> "$nd/log" 2>&1 &
      echo $! > "$nd/pid"
      wait_port "$nd" "$i" || { stop_all; exit 1; }
      cp "$nd/port" "$nd/node-port"   # the port `start` reuses
      [ -z "$first" ] && first="127.0.0.1:$(cat "$nd/port")"
    done
    echo "$first" > "$dir/address"
    echo "$first"
    ;;
  down)
    stop_all
    ;;
  kill)
    nd=$(node_dir "${2:-}")
    if alive "$nd"; then
      kill -9 "$(cat "$nd/pid")"
      for _ in $(seq 1 100); do alive "$nd" || break; sleep 0.05; done
    fi
    rm -f "$nd/pid"
    ;;
  start)
    nd=$(node_dir "${2:-}")
    alive "$nd" && { echo "local.sh: node $2 is running already" >&2; exit 1; }
    [ -s "$nd/node-port" ] || { echo "local.sh: node $2 never started (no $nd/node-port)" >&2; exit 1; }
    read -r threads sync < "$dir/options"
    port=$(cat "$nd/node-port")
    rm -f "$nd/port"
    args=(--port "$port" --port-file "$nd/port" --data-dir "$nd" --threads "$threads")
    [ "$sync" != "-" ] && args+=(--sync "$sync")
    "$bin/shardrec-node" "${args[@]}" >> "$nd/log" 2>&1 &
    echo $! > "$nd/pid"
    wait_port "$nd" "$2" 300 || exit 1
    echo "127.0.0.1:$port"
    ;;
  clean)
    stop_all
    rm -rf "$dir"
    ;;
  *)
    echo "usage: cluster/local.sh up N [--partitions P] [--threads T] [--sync MODE] | down | kill I | start I | clean" >&2
    exit 2
    ;;
esac
