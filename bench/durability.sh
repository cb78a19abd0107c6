#!/usr/bin/env bash
# Durable partitions (write-ahead log, snapshots, recovery) on the 1M set of
# bench/cluster.sh (`shardrec gen --users 6000 --items 4000 --events 1350000
# --seed 1`), measured in one run so that figures compare as ratios:
#  1. bulk ingest (`shardrec load`) into 1 node and 3 nodes with --sync
#     always, batch and none, the modes alternating ROUNDS times, at every
#     partition count: events/s as `load` reports it, and per node;
#  2. recovery of 1 node holding the set after kill -9 (cluster/local.sh kill
#     1 / start 1): seconds from the start until `status --json` reports every
#     event and no missing partition, (a) log only, (b) after `train` (a
#     snapshot per partition), (c) after train and 100,000 more events
#     (snapshot + log tail); the event count before and after, and
#     `recommend` for a few users before and after (b, c);
#  3. disk: bytes per loaded event of the logs (*.log) and of the newest
#     snapshot per partition (store, id maps and the trained model), after
#     `train --algo popular` (next to no model) and after `train`.
# With EXPLORE=1 also: where the time of a durable load goes (--sync always
# against none at the default --batch and at --batch 100000, always with the
# node's folder on tmpfs, always with 8 scheduler threads; with perf
# installed, the node's fdatasync calls per load and the seconds its threads
# spent in them). OLD_BUILD=DIR adds a load into that build (one without a
# write-ahead log, e.g. 22f604c) to each round.
# Everything runs on 127.0.0.1 with free ports, in its own folder under /tmp,
# removed at the end (also on failure or Ctrl-C).
# usage: bench/durability.sh [BUILD_DIR] [ROUNDS] ["PARTITION COUNTS"] [NODE COUNTS]
#   defaults: build 2 "8 64" "1 3"
set -euo pipefail
build=${1:-build}
rounds=${2:-2}
partition_counts=${3:-8 64}
node_counts=${4:-1 3}
[ -x "$build/shardrec" ] && [ -x "$build/shardrec-node" ] || {
  echo "durability.sh: no $build/shardrec or $build/shardrec-node (build first)" >&2
  exit 1
}
build=$(cd "$build" && pwd)
[ -z "${OLD_BUILD:-}" ] || OLD_BUILD=$(cd "$OLD_BUILD" && pwd)
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/shardrec-durability-XXXXXX)
export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
cleanup() {
  SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster cluster/local.sh clean >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
cli() { "$build/shardrec" --cluster "$address" "$@"; }
# json KEY: a top-level key of the JSON object on stdin.
json() { python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v) if isinstance(v, (list, dict)) else v)' "$1"; }
# load_rate FILE [OPTIONS]: events/s that `load` reports.
load_rate() {
  local f=$1; shift
  cli load "$f" --format events --quiet "$@" | sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' | head -n 1
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sum_sizes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 " GiB" }'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== build: $build (script in checkout $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
"$build/shardrec" gen --users 6000 --items 4000 --events 1350000 --seed 1 \
  --out "$work/events.csv" --items-out "$work/items.csv" >/dev/null
"$build/shardrec" gen --users 6000 --items 4000 --events 100000 --seed 2 \
  --out "$work/more.csv" >/dev/null
events_total=1350000

# ---------------------------------------------------------------- 1. ingest
echo "== 1. bulk load of 1,350,000 events (one client; the nodes share the cores with it)"
rows=$work/ingest.tsv
: > "$rows"
tick=$(getconf CLK_TCK)
# nodes_cpu: CPU ticks (user + system) the running nodes have used so far.
nodes_cpu() {
  for f in "$SHARDREC_CLUSTER_DIR"/node*/pid; do awk '{ print $14 + $15 }' "/proc/$(cat "$f")/stat"; done \
    | awk '{ s += $1 } END { print s + 0 }'
}
# ingest_row ROUND NODES P MODE BIN [--sync S]: one cluster, one load, one row.
ingest_row() {
  local round=$1 nodes=$2 p=$3 mode=$4 bin=$5; shift 5
  address=$(SHARDREC_BIN=$bin cluster/local.sh up "$nodes" --partitions "$p" "$@")
  local c0 rate c1
  c0=$(nodes_cpu)
  rate=$("$bin/shardrec" --cluster "$address" load "$work/events.csv" --format events --quiet \
    | sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p')
  c1=$(nodes_cpu)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$nodes" "$p" "$mode" "$rate" \
    "$(awk -v a="$c0" -v b="$c1" -v t="$tick" 'BEGIN { printf "%.2f", (b - a) / t }')" >> "$rows"
  cluster/local.sh down
}
for round in $(seq "$rounds"); do
  for nodes in $node_counts; do
    for p in $partition_counts; do
      [ -n "${OLD_BUILD:-}" ] && ingest_row "$round" "$nodes" "$p" "old build, no log" "$OLD_BUILD"
      for sync in always batch none; do
        ingest_row "$round" "$nodes" "$p" "$sync" "$build" --sync "$sync"
      done
    done
  done
done
printf '%-6s %-6s %-11s %-18s %12s %12s %14s\n' round nodes partitions sync events/s "per node" "nodes' CPU s"
awk -F'\t' '{ printf "%-6s %-6s %-11s %-18s %12d %12d %14s\n", $1, $2, $3, $4, $5, $5 / $2, $6 }' "$rows"
echo "-- medians over the rounds: events/s per node (nodes' CPU s); always/none: median of the same round's ratios"
echo "-- (target with --sync always: >= 500,000 events/s per node)"
for nodes in $node_counts; do
  for p in $partition_counts; do
    line=""
    for sync in always batch none "old build, no log"; do
      vals=$(awk -F'\t' -v n="$nodes" -v p="$p" -v s="$sync" '$2 == n && $3 == p && $4 == s { printf "%d ", $5 / n }' "$rows")
      cpus=$(awk -F'\t' -v n="$nodes" -v p="$p" -v s="$sync" '$2 == n && $3 == p && $4 == s { printf "%d ", $6 * 1000 }' "$rows")
      [ -n "$vals" ] && line="$line  $sync $(echo "$vals" | median) ($(echo "$cpus" | median | awk '{ printf "%.2f", $1 / 1000 }') s)"
    done
    ratios=$(awk -F'\t' -v n="$nodes" -v p="$p" '$2 == n && $3 == p { r[$1 "," $4] = $5; if ($1 > m) m = $1 }
      END { for (i = 1; i <= m; i++) if (r[i ",none"] > 0) printf "%d ", 1000 * r[i ",always"] / r[i ",none"] }' "$rows")
    echo "nodes $nodes, P = $p:$line; always/none $(echo "$ratios" | median | awk '{ printf "%.2f", $1 / 1000 }') (rounds: $(echo "$ratios" | tr ' ' '\n' | grep . | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / 1000 }'))"
  done
done

# ------------------------------------------------------- 2. and 3. recovery
# restart_and_time LABEL EXPECTED_EVENTS P: kill -9 node 1, start it, time
# until status reports every event and no missing partition; checks the count.
restart_and_time() {
  local label=$1 expected=$2 p=$3 log=$SHARDREC_CLUSTER_DIR/node1/log
  cluster/local.sh kill 1
  local from=$(( $(wc -l < "$log") + 1 ))
  local t0 t1 t2 out="" events="" missing=""
  t0=$(now)
  cluster/local.sh start 1 >/dev/null || echo "  P = $p $label: local.sh start 1 gave up waiting for the port; still polling status"
  t1=$(now)
  for _ in $(seq 1 600); do
    if out=$(cli status --json 2>/dev/null); then
      events=$(json events <<< "$out")
      missing=$(json missing_partitions <<< "$out")
      [ "$events" = "$expected" ] && [ "$missing" = "[]" ] && break
    fi
    sleep 0.05
  done
  t2=$(now)
  local recovered replayed
  recovered=$(tail -n +"$from" "$log" | grep -c 'recovered' || true)
  replayed=$(tail -n +"$from" "$log" | sed -n 's/.*then \([0-9]*\) log records.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  local ok=yes
  [ "$events" = "$expected" ] && [ "$missing" = "[]" ] && [ "$recovered" = "$p" ] || ok=NO
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$label" "$(elapsed "$t0" "$t1")" "$(elapsed "$t0" "$t2")" \
    "$expected" "${events:-none}" "$recovered/$p, $replayed log records" "$ok" >> "$work/recovery.tsv"
  # Anything else the node said on its way back (cuts, skipped snapshots, errors).
  tail -n +"$from" "$log" | grep -v -e 'recovered' -e 'listening on' | sed "s/^/  P = $p $label, node log: /" || true
  [ "$ok" = yes ] || { echo "  P = $p $label: status after the restart: $out"; tail -n +"$from" "$log" | head -n 5; }
}
recommend_all() { for u in u1 u2 u3 u100 u4321; do cli recommend "$u" -n 10 --json; echo; done; }
newest_snapshots() {
  for d in "$SHARDREC_CLUSTER_DIR"/node1/partitions/p*/snapshots; do
    [ -d "$d" ] && ls "$d"/snap-*.snap 2>/dev/null | sort | tail -n 1
  done
}

echo "== 2. recovery of 1 node after kill -9 (cluster/local.sh kill 1 / start 1; --sync always, --snapshot-every 1000000)"
: > "$work/recovery.tsv"
: > "$work/disk.tsv"
for p in $partition_counts; do
  address=$(cluster/local.sh up 1 --partitions "$p")
  cli load "$work/events.csv" --format events --items "$work/items.csv" --quiet >/dev/null
  parts=$SHARDREC_CLUSTER_DIR/node1/partitions
  snaps=$(find "$parts" -name 'snap-*.snap' | wc -l)
  log_bytes=$(sum_sizes "$parts" -name '*.log')
  printf '%s\t%s\t%s\t%s\n' "$p" "after load (no training)" "logs: $log_bytes B in $(find "$parts" -name '*.log' | wc -l) segments, $(awk -v b="$log_bytes" -v e=$events_total 'BEGIN { printf "%.1f", b / e }') B/event" "$snaps snapshot files" >> "$work/disk.tsv"
  restart_and_time "(a) log only" $events_total "$p"

  # A snapshot with (next to) no model first: popularity only.
  cli train --algo popular --json > "$work/train.json"
  snap_bytes=$(newest_snapshots | xargs -r stat -c %s | awk '{ s += $1 } END { print s + 0 }')
  printf '%s\t%s\t%s\t%s\n' "$p" "after train --algo popular" "store, id maps and popularity" "newest snapshots ($(newest_snapshots | wc -l) of $p): $snap_bytes B, $(awk -v b="$snap_bytes" -v e=$events_total 'BEGIN { printf "%.1f", b / e }') B/event" >> "$work/disk.tsv"
  cli train --json > "$work/train.json"
  # Each shard writes its snapshot when it publishes the model (before train
  # returns); wait for them anyway.
  for _ in $(seq 1 100); do [ "$(newest_snapshots | wc -l)" -ge "$p" ] && break; sleep 0.1; done
  recommend_all > "$work/rec_before"
  snaps=$(newest_snapshots | wc -l)
  snap_bytes=$(newest_snapshots | xargs -r stat -c %s | awk '{ s += $1 } END { print s + 0 }')
  log_bytes=$(sum_sizes "$parts" -name '*.log')
  printf '%s\t%s\t%s\t%s\n' "$p" "after train" "logs: $log_bytes B in $(find "$parts" -name '*.log' | wc -l) segments, $(awk -v b="$log_bytes" -v e=$events_total 'BEGIN { printf "%.1f", b / e }') B/event" "newest snapshots ($snaps of $p): $snap_bytes B, $(awk -v b="$snap_bytes" -v e=$events_total 'BEGIN { printf "%.1f", b / e }') B/event" >> "$work/disk.tsv"
  restart_and_time "(b) snapshot" $events_total "$p"
  recommend_all > "$work/rec_after"
  if cmp -s "$work/rec_before" "$work/rec_after"; then same="same"; else same="DIFFERENT"; fi
  printf '%s\t%s\t%s\n' "$p" "(b) snapshot" "recommend for u1 u2 u3 u100 u4321: $same ($(wc -c < "$work/rec_before") bytes of answers)" >> "$work/answers.tsv"
  [ "$same" = same ] || diff "$work/rec_before" "$work/rec_after" | head -n 10

  more=$(load_rate "$work/more.csv")
  total=$(cli status --json | json events)
  recommend_all > "$work/rec_before"
  snaps=$(find "$parts" -name 'snap-*.snap' | wc -l)
  printf '%s\t%s\t%s\t%s\n' "$p" "after train + 100,000 events" "logs: $(sum_sizes "$parts" -name '*.log') B in $(find "$parts" -name '*.log' | wc -l) segments" "$snaps snapshot files (load of the 100k: $more events/s)" >> "$work/disk.tsv"
  restart_and_time "(c) snapshot + log tail" "$total" "$p"
  recommend_all > "$work/rec_after"
  if cmp -s "$work/rec_before" "$work/rec_after"; then same="same"; else same="DIFFERENT"; fi
  printf '%s\t%s\t%s\n' "$p" "(c) snapshot + log tail" "recommend for u1 u2 u3 u100 u4321: $same ($(wc -c < "$work/rec_before") bytes of answers)" >> "$work/answers.tsv"
  [ "$same" = same ] || diff "$work/rec_before" "$work/rec_after" | head -n 10
  cluster/local.sh down
done
printf '%-11s %-26s %9s %14s %9s %9s %-34s %s\n' partitions case "port s" "all events s" before after "partitions recovered" ok
awk -F'\t' '{ printf "%-11s %-26s %9s %14s %9s %9s %-34s %s\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$work/recovery.tsv"
echo "(port s: until the node listens again, i.e. its partitions are loaded; all events s: until status --json shows every event and no missing partition; target <= 5 s)"
awk -F'\t' '{ printf "P = %s %s: %s\n", $1, $2, $3 }' "$work/answers.tsv"
echo "== 3. disk (1,350,000 events loaded; each event is stored in its user's and its item's partition)"
awk -F'\t' '{ printf "P = %s %s: %s; %s\n", $1, $2, $3, $4 }' "$work/disk.tsv"
echo "(a snapshot trims only whole log segments (64 MiB) that the older of the two kept snapshots covers, never the one being written)"

# ------------------------------------------------------------- exploration
if [ "${EXPLORE:-0}" = 1 ]; then
  echo "== where a durable load's time goes (1 node; fdatasync calls and the time the node's threads spent in them, from perf trace when present)"
  echo "   disk tmpfs: the node's folder on /dev/shm, where fdatasync costs next to nothing"
  shm=$(mktemp -d /dev/shm/shardrec-durability-XXXXXX)
  trap 'cleanup; SHARDREC_CLUSTER_DIR=$shm/cluster cluster/local.sh clean >/dev/null 2>&1 || true; rm -rf "$shm"' EXIT
  tracer=""
  if command -v perf >/dev/null 2>&1 && perf trace -s -e fdatasync -- true >/dev/null 2>&1; then tracer=perf; fi
  printf '%-6s %-11s %-7s %-6s %-8s %-8s %12s %14s %11s %18s\n' round partitions sync disk batch threads events/s "node CPU s" fdatasyncs "in fdatasync s"
  for round in $(seq "$rounds"); do
    for p in $partition_counts; do
      for config in "always ext4 20000 2" "none ext4 20000 2" "always tmpfs 20000 2" \
                    "always ext4 100000 2" "none ext4 100000 2" "always ext4 20000 8"; do
        read -r sync disk batch threads <<< "$config"
        [ "$threads" = 2 ] && threads=$(nproc)
        if [ "$disk" = tmpfs ]; then export SHARDREC_CLUSTER_DIR=$shm/cluster; else export SHARDREC_CLUSTER_DIR=$work/cluster; fi
        address=$(cluster/local.sh up 1 --partitions "$p" --sync "$sync" --threads "$threads")
        pid=$(cat "$SHARDREC_CLUSTER_DIR/node1/pid")
        c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        trace_pid=""
        if [ -n "$tracer" ]; then
          perf trace -s -e fdatasync -p "$pid" -o "$work/trace" >/dev/null 2>&1 &
          trace_pid=$!
          sleep 0.5
        fi
        rate=$(load_rate "$work/events.csv" --batch "$batch")
        c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        calls="-" in_sync="-"
        if [ -n "$trace_pid" ]; then
          kill -INT "$trace_pid" 2>/dev/null || true
          wait "$trace_pid" 2>/dev/null || true
          calls=$(awk '$1 == "fdatasync" { c += $2 } END { print c + 0 }' "$work/trace")
          in_sync=$(awk '$1 == "fdatasync" { t += $4 } END { printf "%.2f", t / 1000 }' "$work/trace")
        fi
        printf '%-6s %-11s %-7s %-6s %-8s %-8s %12s %14s %11s %18s\n' "$round" "$p" "$sync" "$disk" "$batch" "$threads" "$rate" \
          "$(awk -v a="$c0" -v b="$c1" -v t="$tick" 'BEGIN { printf "%.2f", (b - a) / t }')" "$calls" "$in_sync"
        cluster/local.sh clean
      done
    done
  done
  export SHARDREC_CLUSTER_DIR=$work/cluster
fi
