#!/usr/bin/env bash
# Starts or stops a local shardrec cluster on 127.0.0.1, with its own etcd.
#   cluster/local.sh up N [--partitions P] [--threads T] [--sync MODE] [--replicas R] [--etcd URLS | --no-etcd]
#                            start one etcd (DIR/etcd, free ports), then N nodes
#                            registered there (free ports); print the first node's address.
#                            T scheduler threads each (default: cores / N, at least 1);
#                            MODE: always (default), batch or none (shardrec-node --help);
#                            R: copies of every partition (shardrec-node --replicas; default 2);
#                            --etcd URLS: use that etcd instead of starting one;
#                            --no-etcd: no etcd, the others join the first node (--join)
#   cluster/local.sh add     start one more node, which joins through etcd; print its address
#   cluster/local.sh down    stop every node, then the etcd (data folders stay)
#   cluster/local.sh kill I  kill node I (1..N) at once, as a crash would (kill -9)
#   cluster/local.sh start I start node I again with its data folder and port: it comes
#                            back with its partitions and rejoins the others (and starts
#                            the etcd again after `down`)
#   cluster/local.sh etcd    print the etcd endpoint the nodes use
#   cluster/local.sh clean   stop everything and remove the cluster's folder
# Each node keeps its port and its data folder (DIR/nodeI) across restarts;
# `up` starts a new cluster (it stops the old nodes and clears their folders).
# Environment: SHARDREC_BIN (folder with shardrec-node; default build),
#              SHARDREC_CLUSTER_DIR (state folder; default /tmp/shardrec-local-$USER),
#              SHARDREC_ETCD (the etcd binary; default etcd on PATH).
set -euo pipefail
bin=${SHARDREC_BIN:-build}
dir=${SHARDREC_CLUSTER_DIR:-/tmp/shardrec-local-${USER:-$(id -u)}}
etcd_bin=${SHARDREC_ETCD:-etcd}
cmd=${1:-}

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# listening PORT: something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nothing listens on (random in 20000..59999).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    listening "$p" || { echo "$p"; return 0; }
  done
  echo "local.sh: found no free port" >&2
  return 1
}

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

# start_etcd: DIR/etcd/ports holds "CLIENT PEER" (kept across restarts).
start_etcd() {
  local ed="$dir/etcd"
  mkdir -p "$ed"
  alive "$ed" && return 0
  command -v "$etcd_bin" >/dev/null || {
    echo "local.sh: no etcd ($etcd_bin); install etcd-server (scripts/setup.sh) or pass --no-etcd" >&2
    return 1
  }
  [ -s "$ed/ports" ] || echo "$(free_port) $(free_port)" > "$ed/ports"
  local client peer
  read -r client peer < "$ed/ports"
  "$etcd_bin" --name local --data-dir "$ed/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "local=http://127.0.0.1:$peer" --log-level warn >> "$ed/log" 2>&1 &
  echo $! > "$ed/pid"
  for _ in $(seq 1 200); do
    listening "$client" && { echo "http://127.0.0.1:$client" > "$dir/etcd-endpoint"; return 0; }
    alive "$ed" || break
    sleep 0.05
  done
  echo "local.sh: etcd did not start; its log ($ed/log):" >&2
  tail -n 20 "$ed/log" >&2
  return 1
}

stop_pids() {
  [ $# -gt 0 ] || return 0
  kill "$@" 2>/dev/null || true
  for _ in $(seq 1 50); do
    local any=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && any=1; done
    [ $any -eq 0 ] && break
    sleep 0.1
  done
  kill -9 "$@" 2>/dev/null || true
}

stop_all() {
  local pids=()
  for nd in "$dir"/node*; do
    [ -d "$nd" ] || continue
    alive "$nd" && pids+=("$(cat "$nd/pid")")
  done
  stop_pids "${pids[@]}"
  for nd in "$dir"/node*; do rm -f "$nd/pid"; done
  # The etcd after the nodes: they leave it (revoke their leases) as they stop.
  if alive "$dir/etcd"; then stop_pids "$(cat "$dir/etcd/pid")"; fi
  rm -f "$dir/etcd/pid"
}

node_dir() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] && [ -d "$dir/node$1" ] || {
    echo "local.sh: no node '${1:-}' in $dir (nodes: $(ls "$dir" 2>/dev/null | grep -o 'node[0-9]*' | tr '\n' ' '))" >&2
    exit 2
  }
  echo "$dir/node$1"
}

# The --etcd arguments every node gets (none with --no-etcd).
etcd_args() {
  local ep
  ep=$(cat "$dir/etcd-endpoint" 2>/dev/null || true)
  [ -n "$ep" ] && echo "--etcd $ep --etcd-prefix $(cat "$dir/etcd-prefix")"
  return 0
}

# launch I ARGS...: starts node I (DIR/nodeI) with ARGS and waits for its port.
launch() {
  local i=$1; shift
  local nd="$dir/node$i"
  mkdir -p "$nd"
  local replicas
  read -r threads sync replicas < "$dir/options"
  local args=(--port-file "$nd/port" --data-dir "$nd" --threads "$threads")
  [ "$sync" != "-" ] && args+=(--sync "$sync")
  [ -n "$replicas" ] && [ "$replicas" != "-" ] && args+=(--replicas "$replicas")
  # shellcheck disable=SC2207
  args+=($(etcd_args))
  rm -f "$nd/port"
  "$bin/shardrec-node" "${args[@]}" "$@" >> "$nd/log" 2>&1 &
  echo $! > "$nd/pid"
}

case "$cmd" in
  up)
    shift
    n=3
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then n=$1; shift; fi
    partitions=64
    sync=""   # the node's default (always); not passed, so that older builds still start
    replicas=""  # the node's default (2 copies once there are 2 nodes)
    threads=$(( $(nproc) / n ))
    [ "$threads" -ge 1 ] || threads=1
    etcd_mode=start
    external=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --partitions) partitions=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --sync) sync=$2; shift 2 ;;
        --replicas) replicas=$2; shift 2 ;;
        --etcd) etcd_mode=external; external=$2; shift 2 ;;
        --no-etcd) etcd_mode=none; shift ;;
        *) echo "local.sh: unknown option $1" >&2; exit 2 ;;
      esac
    done
    [ -x "$bin/shardrec-node" ] || { echo "local.sh: no $bin/shardrec-node (build first)" >&2; exit 1; }
    stop_all
    rm -rf "$dir"/node* "$dir/etcd" "$dir/etcd-endpoint" "$dir/etcd-prefix"
    mkdir -p "$dir"
    echo "$threads ${sync:--} ${replicas:--}" > "$dir/options"
    case "$etcd_mode" in
      start) start_etcd || exit 1; echo /shardrec > "$dir/etcd-prefix" ;;
      # A shared etcd: a prefix of this cluster's own, so that no old map is found.
      external) echo "$external" > "$dir/etcd-endpoint"
                echo "/shardrec-local-$(date +%s)-$$" > "$dir/etcd-prefix" ;;
    esac
    first=""
    for i in $(seq 1 "$n"); do
      extra=(--port 0 --partitions "$partitions")
      [ "$etcd_mode" = none ] && [ -n "$first" ] && extra+=(--join "$first")
      launch "$i" "${extra[@]}"
      wait_port "$dir/node$i" "$i" 60 || { stop_all; exit 1; }
      cp "$dir/node$i/port" "$dir/node$i/node-port"   # the port `start` reuses
      [ -z "$first" ] && first="127.0.0.1:$(cat "$dir/node$i/port")"
    done
    echo "$first" > "$dir/address"
    # With etcd the nodes after the first join by moves (each partition
    # copied, then the map flips): up returns once every node serves and
    # owns partitions, so that a load and a training right after it reach
    # the final owners.
    if [ "$etcd_mode" != none ] && [ "$n" -gt 1 ] && [ "$partitions" -ge "$n" ]; then
      settled=""
      for _ in $(seq 1 600); do
        nodes_json=$("$bin/shardrec" --cluster "$first" nodes --json 2>/dev/null || true)
        count=$( (grep -o '"state":"serving"' <<< "$nodes_json" || true) | wc -l)
        empty=$( (grep -o '"partitions":0[,}]' <<< "$nodes_json" || true) | wc -l)
        if [ "$count" -eq "$n" ] && [ "$empty" -eq 0 ]; then settled=1; break; fi
        sleep 0.1
      done
      [ -n "$settled" ] || echo "local.sh: the nodes did not all serve partitions within 60 s (shardrec --cluster $first nodes)" >&2
    fi
    echo "$first"
    ;;
  add)
    [ -s "$dir/etcd-endpoint" ] || { echo "local.sh: this cluster runs without etcd (up --no-etcd): nodes cannot join it later" >&2; exit 1; }
    [ -f "$dir/etcd/ports" ] && { start_etcd || exit 1; }
    i=1
    while [ -d "$dir/node$i" ]; do i=$(( i + 1 )); done
    launch "$i" --port 0
    wait_port "$dir/node$i" "$i" 60 || exit 1
    cp "$dir/node$i/port" "$dir/node$i/node-port"
    echo "127.0.0.1:$(cat "$dir/node$i/port")"
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
    [ -f "$dir/etcd/ports" ] && { start_etcd || exit 1; }
    port=$(cat "$nd/node-port")
    launch "$2" --port "$port"
    wait_port "$nd" "$2" 300 || exit 1
    echo "127.0.0.1:$port"
    ;;
  etcd)
    cat "$dir/etcd-endpoint" 2>/dev/null || { echo "local.sh: no etcd in $dir" >&2; exit 1; }
    ;;
  clean)
    stop_all
    rm -rf "$dir"
    ;;
  *)
    echo "usage: cluster/local.sh up N [--partitions P] [--threads T] [--sync MODE] [--replicas R] [--etcd URLS | --no-etcd] | add | down | kill I | start I | etcd | clean" >&2
    exit 2
    ;;
esac
