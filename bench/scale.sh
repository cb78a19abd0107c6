#!/usr/bin/env bash
# The scale run of issue 14 (figures for bench/RESULTS.md): one generated set
# of EVENTS events (users = EVENTS / 150, items = EVENTS / 250, seed 1, as
# bench/elastic.sh and bench/knn_memory.sh) loaded, trained and queried on a
# fresh local cluster of each node count in NODES (`cluster/local.sh up N
# --partitions P --no-etcd --replicas 1`: no etcd, so no followers: one copy
# of every partition). Per node count:
#   - load (`load --format events --quiet`, default batch and window): wall
#     seconds and events/s; the events `status` counts after it;
#   - after SETTLE seconds: every node's RSS and its peak so far (VmHWM over
#     the load); then every node's peak is reset (/proc/PID/clear_refs 5);
#   - the full default `train --json` (every model, tuned): wall seconds and
#     the per-phase seconds of the reply; every node's peak over the training
#     run (VmHWM) and its RSS after; the peak over load + train is the larger
#     of the two peaks (the reset sits between them); from the watcher's
#     samples, each node's largest RSS during the tune phase (the run's
#     first `tune` seconds, the trainer's search on a sample of <= 5000
#     users) and after it (build, iALS, kNN, publish);
#   - queries: `bench --queries QUERIES --window 1 --users USERS` (random
#     users of the set: latency p50 / p99) and `bench --queries QUERIES
#     --window 8` (throughput), then `recommend -n 10 --json` for CHECK random
#     users: how many answers are non-empty and not partial.
# Then each node's peak against the largest 1-node peak (the issue's goal: at
# 4 nodes every node <= 0.35x). A watcher samples MemAvailable and the nodes'
# RSS every 2 s (WORK/mem.log) and kills the nodes if MemAvailable falls
# below MIN_AVAIL_MB (the machine has no swap): the run then stops with
# "aborted: memory". If `train` returns an error (the client waits at most
# actors::train_timeout, 600 s), `status` is polled until the cluster's
# model version moves (up to TRAIN_WAIT seconds) and that time is reported.
# KEEP_LOGS=DIR copies every node's log (DIR/nodesN/nodeI.log), the train
# replies and mem.log there before the cluster folders are removed.
# usage: bench/scale.sh BUILD [EVENTS=25000000] [PARTITIONS=64] [NODES="1 2 4"]
# environment: QUERIES (1000), CHECK (50), SETTLE (5), MIN_AVAIL_MB (1500),
#              TRAIN_WAIT (2400), KEEP_LOGS (unset), REF_PEAK_GB and
#              REF_TRAIN_GB (unset: see below)
set -euo pipefail
usage='usage: bench/scale.sh BUILD [EVENTS=25000000] [PARTITIONS=64] [NODES="1 2 4"]'
build=${1:?$usage}
events=${2:-25000000}
partitions=${3:-64}
node_counts=${4:-"1 2 4"}
queries=${QUERIES:-1000}
check=${CHECK:-50}
settle=${SETTLE:-5}
min_avail_mb=${MIN_AVAIL_MB:-1500}
train_wait=${TRAIN_WAIT:-2400}
keep=${KEEP_LOGS:-}
build=$(realpath "$build")
work=$(mktemp -d /tmp/shardrec-scale-XXXXXX)
export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
watcher=""
note() { echo "[$(date +%H:%M:%S)] $*" >&2; }
keep_logs() { # keep_logs NODES: node logs, train replies, mem.log -> $keep
  [ -n "$keep" ] || return 0
  mkdir -p "$keep/nodes$1"
  for nd in "$SHARDREC_CLUSTER_DIR"/node*; do
    [ -f "$nd/log" ] && cp "$nd/log" "$keep/nodes$1/$(basename "$nd").log"
  done
  cp "$work"/train.*.json "$work"/train.*.err "$work/mem.log" "$keep/" 2>/dev/null || true
}
cleanup() {
  set +e
  if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; fi
  [ -n "${nodes:-}" ] && keep_logs "$nodes"
  cluster/local.sh down >/dev/null 2>&1 || true
  [ -f "$work/aborted" ] && echo "aborted: memory ($(cat "$work/aborted"))" >&2
  rm -rf "$work"
  return 0
}
trap cleanup EXIT

# The memory watcher (runs until the script ends).
(
  while :; do
    avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
    line="$(date +%s) $(date +%H:%M:%S) avail_mb $avail"
    pids=$(cat "$SHARDREC_CLUSTER_DIR"/node*/pid 2>/dev/null || true)
    for p in $pids; do
      line+=" $p:$(awk '$1 == "VmRSS:" { print int($2 / 1024) }' "/proc/$p/status" 2>/dev/null)"
    done
    echo "$line" >>"$work/mem.log"
    if [ "$avail" -lt "$min_avail_mb" ] && [ -n "$pids" ]; then
      echo "MemAvailable $avail MB < $min_avail_mb MB at $(date +%H:%M:%S); nodes killed" >"$work/aborted"
      echo "$line: below $min_avail_mb MB, killing the nodes" >&2
      # shellcheck disable=SC2086
      kill -9 $pids 2>/dev/null || true
    fi
    sleep 2
  done
) &
watcher=$!

users=$((events / 150)); items=$((events / 250))
note "gen $events events ($users users, $items items), seed 1"
t0=$(date +%s.%N)
"$build/shardrec" gen --users "$users" --items "$items" --events "$events" --seed 1 \
  --out "$work/events.csv" >&2
note "gen done in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s, $(du -h "$work/events.csv" | cut -f1)"

kb() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
gb() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1048576 }'; }
model_version() { "$build/shardrec" --cluster "$address" status --json 2>/dev/null |
  grep -o '"model_version":[0-9]*' | head -1 | cut -d: -f2; }
declare -A peak_of=() train_peak_of=()
# REF_PEAK_GB / REF_TRAIN_GB: the 1-node peaks of an earlier run of the same
# set, when NODES has no 1 (otherwise the first node count is the reference).
if [ -n "${REF_PEAK_GB:-}" ]; then
  one_peak=$(awk -v g="$REF_PEAK_GB" 'BEGIN { printf "%d", g * 1048576 }')
  one_train=$(awk -v g="${REF_TRAIN_GB:-$REF_PEAK_GB}" 'BEGIN { printf "%d", g * 1048576 }')
  one_nodes="1 (given: $REF_PEAK_GB GB)"
fi
summary=()
for nodes in $node_counts; do
  note "== $nodes node(s), P = $partitions"
  address=$(cluster/local.sh up "$nodes" --partitions "$partitions" --no-etcd --replicas 1)
  cli() { "$build/shardrec" --cluster "$address" "$@"; }
  pids=$(cat "$SHARDREC_CLUSTER_DIR"/node*/pid)
  # --- load
  t0=$(date +%s.%N)
  cli load "$work/events.csv" --format events --quiet >"$work/load.out"
  load_s=$(since "$t0")
  note "$(cat "$work/load.out") [wall $load_s s]"
  stored=$(cli status --json | grep -o '"events":[0-9]*' | head -1 | cut -d: -f2)
  sleep "$settle"
  declare -A rss_load=() hwm_load=() hwm_train=() rss_train=() disk=() sampled=()
  for p in $pids; do
    rss_load[$p]=$(kb "$p" VmRSS); hwm_load[$p]=$(kb "$p" VmHWM)
    echo 5 >"/proc/$p/clear_refs"
  done
  # --- train
  t0=$(date +%s.%N)
  train_note=""
  if cli train --json >"$work/train.$nodes.json" 2>"$work/train.$nodes.err"; then
    train_s=$(since "$t0")
  else
    train_note="train returned an error after $(since "$t0") s: $(head -c 300 "$work/train.$nodes.err")"
    note "$train_note"
    for _ in $(seq 1 $((train_wait / 5))); do
      [ "$(model_version)" != "0" ] && [ -n "$(model_version)" ] && break
      sleep 5
    done
    train_s="$(since "$t0") (model version $(model_version) in status)"
  fi
  note "train: $train_s s"
  phases=$(python3 -c 'import json,sys
try: d = json.load(open(sys.argv[1]))
except Exception: print("?"); sys.exit()
print(" ".join("%s %.1f" % (k, v) for k, v in d.get("phases", {}).items()),
      "| total %.1f s, blend %s, notes %s" % (d.get("seconds", 0), d.get("blend"), d.get("notes")))' \
    "$work/train.$nodes.json")
  note "phases: $phases"
  for p in $pids; do
    hwm_train[$p]=$(kb "$p" VmHWM); rss_train[$p]=$(kb "$p" VmRSS)
  done
  tune_s=$(grep -o '"tune":[0-9.e+-]*' "$work/train.$nodes.json" | head -1 | cut -d: -f2)
  t_end=$(date +%s)
  for p in $pids; do # sampled RSS (MB, every 2 s): the tune phase, the rest
    sampled[$p]=$(awk -v p="$p" -v a="$t0" -v t="${tune_s:-0}" -v e="$t_end" '
      $1 >= a && $1 <= e { for (i = 5; i <= NF; i++) { split($i, f, ":"); if (f[1] == p) {
        if ($1 <= a + t + 1) { if (f[2] > x) x = f[2] } else if (f[2] > y) y = f[2] } } }
      END { printf "%.2f GB / %.2f GB", x / 1024, y / 1024 }' "$work/mem.log")
  done
  i=0
  for nd in "$SHARDREC_CLUSTER_DIR"/node*; do
    i=$((i + 1)); disk[$i]=$(du -sb "$nd" | cut -f1)
  done
  # --- queries
  latency=$(cli bench --queries "$queries" --window 1 --users "$users" --json)
  through=$(cli bench --queries "$queries" --window 8 --users "$users" --seed 2 --json)
  note "window 1: $latency"
  note "window 8: $through"
  : >"$work/answers"
  for u in $(awk -v n="$check" -v m="$users" -v s="$nodes" 'BEGIN { srand(s); for (i = 0; i < n; i++) print int(rand() * m) }'); do
    cli recommend "u$u" -n 10 --json >>"$work/answers" 2>&1 || echo '{"error":1}' >>"$work/answers"
    echo >>"$work/answers"
  done
  answers=$(python3 -c 'import json,sys
ok = empty = partial = bad = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line: continue
    try: d = json.loads(line)
    except Exception: bad += 1; continue
    if "items" not in d: bad += 1
    elif d.get("partial"): partial += 1
    elif not d["items"]: empty += 1
    else: ok += 1
print("%d non-empty, %d empty, %d partial, %d errors" % (ok, empty, partial, bad))' "$work/answers")
  note "recommend for $check random users: $answers"
  # --- per node
  echo "== $nodes node(s), P = $partitions, $events events ($users users, $items items), R = 1"
  echo "load: $(grep -o '[0-9]* accepted, [0-9]* rejected in [0-9.]* s ([0-9]* events/s)' "$work/load.out"); wall $load_s s; status: $stored events"
  echo "train: $train_s s; phases (s): $phases${train_note:+; $train_note}"
  lat=$(python3 -c 'import json,sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("window 1: p50 %.2f ms, p99 %.2f ms, max %.1f ms, %.0f q/s (%d failed, %d partial); window 8: %.0f q/s, p50 %.2f ms, p99 %.2f ms (%d failed, %d partial)" % (
  a["p50_ms"], a["p99_ms"], a["max_ms"], a["qps"], a["failed"], a["partial"],
  b["qps"], b["p50_ms"], b["p99_ms"], b["failed"], b["partial"]))' "$latency" "$through")
  echo "queries ($queries each): $lat"
  echo "recommend -n 10 for $check random users: $answers"
  echo "| node | RSS after load | peak over load | peak over train | peak load+train | RSS after train | sampled RSS max: tune / rest | data folder | peak / 1-node peak | train peak / 1-node train peak |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  i=0 most=0 most_train=0
  for p in $pids; do
    i=$((i + 1))
    peak=${hwm_load[$p]}; ((hwm_train[$p] > peak)) && peak=${hwm_train[$p]}
    ((peak > most)) && most=$peak
    ((hwm_train[$p] > most_train)) && most_train=${hwm_train[$p]}
    peak_of[$nodes.$i]=$peak; train_peak_of[$nodes.$i]=${hwm_train[$p]}
  done
  [ -z "${one_peak:-}" ] && { one_peak=$most; one_train=$most_train; one_nodes=$nodes; }
  i=0
  for p in $pids; do
    i=$((i + 1))
    echo "| $i | $(gb "${rss_load[$p]}") GB | $(gb "${hwm_load[$p]}") GB | $(gb "${hwm_train[$p]}") GB | $(gb "${peak_of[$nodes.$i]}") GB | $(gb "${rss_train[$p]}") GB | ${sampled[$p]} | $(awk -v b="${disk[$i]}" 'BEGIN { printf "%.2f GB", b / 1e9 }') | $(awk -v a="${peak_of[$nodes.$i]}" -v b="$one_peak" 'BEGIN { printf "%.3f", a / b }') | $(awk -v a="${train_peak_of[$nodes.$i]}" -v b="$one_train" 'BEGIN { printf "%.3f", a / b }') |"
  done
  summary+=("$nodes node(s): largest peak $(gb "$most") GB = $(awk -v a="$most" -v b="$one_peak" 'BEGIN { printf "%.3f", a / b }') x the $one_nodes-node peak (train alone: $(awk -v a="$most_train" -v b="$one_train" 'BEGIN { printf "%.3f", a / b }') x)")
  keep_logs "$nodes"
  cluster/local.sh down >/dev/null
  rm -rf "$SHARDREC_CLUSTER_DIR"
  unset rss_load hwm_load hwm_train rss_train disk sampled
done
echo "== peaks against the ${one_nodes}-node run (goal at 4 nodes: every node <= 0.35x)"
printf '%s\n' "${summary[@]}"
