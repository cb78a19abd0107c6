#!/usr/bin/env bash
# Failover under load, measured in one run (figures for bench/RESULTS.md):
# 3 nodes (etcd, PARTITIONS partitions, the default 2 copies of every
# partition) holding a generated set of EVENTS events, trained (implicit
# ALS). One client streams more events at about RATE events/s (a `load` of a
# 1000-event file every 1000/RATE s, --batch BATCH (1000) --window 1, each in the
# background so that a slow one does not slow the stream); another runs top-10
# queries in a loop of `bench --queries 50 --window 1 --route entry` runs
# against node 1 (every query enters at node 1). After BEFORE s node VICTIM
# (not node 1) is killed with kill -9; the etcd map is polled every 50 ms
# until no partition's primary is on the killed node. The stream goes on for
# AFTER s more.
# Prints: the real stream and query rates; acknowledged events (the sum of
# the loads' `accepted`) against the events in the cluster afterwards (`status`,
# must be equal); seconds from the kill to the map with every partition on a
# live primary (and to the first `partitions --json` at node 1 that shows it);
# failed / partial queries before, during (a run that overlaps [kill, every
# primary live]) and after; query p50 / p99 before and after (medians of the
# 50-query runs' p50 and p99); the last run with a partial or failed answer;
# the error and warning lines of the node logs.
# usage: bench/failover.sh [BIN_DIR] [EVENTS] [PARTITIONS] [RATE] [BEFORE] [AFTER] [VICTIM]
#   BIN_DIR: folder with shardrec and shardrec-node (default build)
#   environment: LEASE (shardrec-node --etcd-lease, default the node's, 3 s),
#                KEEP_LOGS=DIR (copy the node logs and the raw figures there)
set -euo pipefail
bin=$(cd "${1:-build}" && pwd)
events=${2:-1000000}
partitions=${3:-16}
rate=${4:-5000}
before=${5:-10}
after=${6:-20}
victim=${7:-3}
chunk=1000
batch=${BATCH:-1000}
work=$(mktemp -d /tmp/bench-failover-XXXXXX)
mkdir -p "$work/bin"
# local.sh starts $SHARDREC_BIN/shardrec-node: a wrapper adds the options it does not forward.
extra=""
[ -n "${LEASE:-}" ] && extra="--etcd-lease $LEASE"
printf '#!/bin/sh\nexec "%s/shardrec-node" "$@" %s\n' "$bin" "$extra" > "$work/bin/shardrec-node"
chmod +x "$work/bin/shardrec-node"
export SHARDREC_BIN=$work/bin SHARDREC_CLUSTER_DIR=$work/cluster
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_LOGS:-}" ]; then
    mkdir -p "$KEEP_LOGS"
    for nd in "$work"/cluster/node*; do [ -f "$nd/log" ] && cp "$nd/log" "$KEEP_LOGS/$(basename "$nd").log"; done
    cp "$work"/*.log "$work"/*.json "$KEEP_LOGS/" 2>/dev/null || true
  fi
  cluster/local.sh clean > /dev/null 2>&1 || true
  SHARDREC_CLUSTER_DIR=$work/ref cluster/local.sh clean > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
users=$(( events / 150 )); items=$(( events / 250 ))
stream_events=$(( rate * (before + after) ))
"$bin/shardrec" gen --users "$users" --items "$items" --events "$events" --seed 1 --out "$work/events.csv" > /dev/null
"$bin/shardrec" gen --users "$users" --items "$items" --events "$stream_events" --seed 2 --out "$work/stream.csv" > /dev/null
mkdir -p "$work/chunks"
tail -n +2 "$work/stream.csv" | split -l "$chunk" -d -a 5 - "$work/chunks/c"
for f in "$work"/chunks/c*; do { head -1 "$work/stream.csv"; cat "$f"; } > "$f.csv"; rm "$f"; done
# local.sh picks random free ports; a port in use by an outgoing connection fails the bind: try again.
address=""
for _ in 1 2 3 4 5; do address=$(cluster/local.sh up 3 --partitions "$partitions") && break; sleep 1; done
[ -n "$address" ] || { echo "could not start the cluster" >&2; exit 1; }
cli() { "$bin/shardrec" --cluster "$address" "$@"; }
endpoint=$(cluster/local.sh etcd)
map() { ETCDCTL_API=3 etcdctl --endpoints "$endpoint" get /shardrec/map --print-value-only; }
vport=$(cat "$SHARDREC_CLUSTER_DIR/node$victim/port")
vid=$(cli nodes --json | python3 -c "import json,sys; print([n['id'] for n in json.load(sys.stdin)['nodes'] if n['port']==$vport][0])")
echo "== $events events, 3 nodes, $partitions partitions ($users users, $items items); node $victim (id $vid) will be killed"
cli load "$work/events.csv" --format events --quiet
cli train --algo implicit-als --json | grep -o '"seconds":[^,}]*' | head -1
map > "$work/map-before.json"
python3 - "$work/map-before.json" "$vid" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); v = int(sys.argv[2])
print("map before: replicas %s, primaries on the victim %d, partitions it follows %d" % (
    m.get("replicas"), sum(o == v for o in m["owner"]), sum(v in f for f in m["followers"])))
EOF

# The query loop: 50-query runs, each line "start end rc json".
( while [ ! -f "$work/stop" ]; do
    t0=$(now); out=$(cli bench --queries 50 --window 1 --route entry --users "$users" --json 2>&1 | tr '\n' ' ') && rc=0 || rc=$?
    echo "$t0 $(now) $rc $out"
  done > "$work/queries.log" ) &
pids+=($!)
# The stream: chunk k starts at t0 + k * chunk / rate.
( t0=$(now); k=0
  for f in "$work"/chunks/c*.csv; do
    sleep "$(awk -v t0="$t0" -v k="$k" -v c="$chunk" -v r="$rate" -v t="$(now)" 'BEGIN { d = t0 + k * c / r - t; printf "%.3f", (d > 0 ? d : 0) }')"
    ( s=$(now); o=$(cli load "$f" --format events --batch "$batch" --window 1 --quiet 2>&1 | tr '\n' ' ') && rc=0 || rc=$?
      echo "$s $(now) $rc $(basename "$f") $o" >> "$work/stream.log" ) &
    k=$(( k + 1 ))
  done
  wait
  echo "$t0 $(now)" > "$work/stream.done" ) &
streamer=$!
pids+=($streamer)
sleep "$before"
t_kill=$(now)
cluster/local.sh kill "$victim"
until map | python3 -c "import json,sys; m=json.load(sys.stdin); sys.exit(0 if $vid not in m['owner'] else 1)" 2>/dev/null; do sleep 0.05; done
t_map=$(now)
until cli partitions --json 2>/dev/null | python3 -c "
import json,sys; j=json.load(sys.stdin); sys.exit(0 if all(p['primary'] != $vid for p in j['partition_status']) and len(j['partition_status']) == $partitions else 1)" 2>/dev/null; do sleep 0.05; done
t_cli=$(now)
wait "$streamer"
touch "$work/stop"
wait
pids=()
sleep 1
cli status --json > "$work/status.json"
cli partitions --json > "$work/partitions.json"
map > "$work/map-after.json"
cli nodes
python3 - "$work" "$events" "$t_kill" "$t_map" "$t_cli" "$vid" <<'EOF'
import json, re, statistics, sys
work, base, t_kill, t_map, t_cli, vid = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6]), int(sys.argv[6])
acc = notack = 0; loads = failed_loads = 0; lines = []
for line in open(work + "/stream.log"):
    s, e, rc, name, rest = line.split(" ", 4)
    loads += 1
    m = re.search(r"(\d+) accepted", rest)
    acc += int(m.group(1)) if m else 0
    m = re.search(r"(\d+) events sent were not acknowledged", rest)
    notack += int(m.group(1)) if m else 0
    if rc != "0" or not re.search(r"(\d+) accepted", rest):
        failed_loads += 1; lines.append("%+.2f s after the kill, %.2f s long: %s" % (float(s) - t_kill, float(e) - float(s), rest.strip()))
t0, t1 = map(float, open(work + "/stream.done").read().split())
st = json.load(open(work + "/status.json"))
print("stream: %d loads of %d events, %d accepted in %.1f s (%.0f events/s), %d loads failed, %d events sent but not acknowledged"
      % (loads, 1000, acc, t1 - t0, acc / (t1 - t0), failed_loads, notack))
for l in lines[:40]: print("  failed load:", l[:300])
slow = sorted((float(l.split(" ")[1]) - float(l.split(" ")[0]), float(l.split(" ")[0]) - t_kill) for l in open(work + "/stream.log"))
print("load durations: median %.2f s, longest %.2f s (started %+.2f s after the kill)" % (slow[len(slow) // 2][0], slow[-1][0], slow[-1][1]))
print("events: %d acknowledged (%d + %d), %d in the cluster, missing_partitions %s -> %s"
      % (base + acc, base, acc, st["events"], st["missing_partitions"], "EQUAL" if st["events"] == base + acc else "DIFFERENT"))
print("kill -> map with every primary live: %.2f s; -> partitions --json at node 1 shows it: %.2f s" % (t_map - t_kill, t_cli - t_kill))
runs = []
for line in open(work + "/queries.log"):
    s, e, rc, rest = line.split(" ", 3)
    try: j = json.loads(rest)
    except ValueError: j = {"queries": 50, "answered": 0, "failed": 50, "partial": 0, "error": rest.strip()[:200]}
    runs.append((float(s), float(e), j))
phases = {"before": [], "during": [], "after": []}
for s, e, j in runs:
    phases["before" if e < t_kill else "after" if s > t_map else "during"].append((s, e, j))
q_all = sum(j["queries"] for _, _, j in runs); span = runs[-1][1] - runs[0][0]
print("queries: %d in %.1f s (%.0f queries/s including each 50-query run's start)" % (q_all, span, q_all / span))
print("| phase | runs | queries | failed | partial | p50 ms (median of runs) | p99 ms (median of runs) | worst run p99 ms | q/s in runs |")
for name, rs in phases.items():
    if not rs: continue
    js = [j for _, _, j in rs]
    ok = [j for j in js if "p50_ms" in j]
    secs = sum(j.get("seconds", 0) for j in ok)
    print("| %s | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.0f |" % (name, len(rs), sum(j["queries"] for j in js),
          sum(j["failed"] for j in js), sum(j["partial"] for j in js),
          statistics.median(j["p50_ms"] for j in ok), statistics.median(j["p99_ms"] for j in ok),
          max(j["p99_ms"] for j in ok), sum(j["answered"] for j in ok) / secs if secs else 0))
bad = [(s, e, j) for s, e, j in runs if j["failed"] or j["partial"]]
if bad:
    print("runs with failed/partial answers: %d; first starts %.2f s, last ends %.2f s after the kill (map live at %.2f s)"
          % (len(bad), bad[0][0] - t_kill, bad[-1][1] - t_kill, t_map - t_kill))
    for s, e, j in bad[:8]: print("  %+.2f..%+.2f s: %s" % (s - t_kill, e - t_kill, json.dumps(j)[:300]))
else:
    print("no run had a failed or partial answer")
first_after = [j for s, e, j in runs if s > t_map][:3]
print("first runs started after the map was live:", [(j["failed"], j["partial"]) for j in first_after], "(failed, partial)")
m = json.load(open(work + "/map-after.json"))
print("map after: version %d, owners %s, followers %s, epochs %s" % (m["version"], m["owner"], m["followers"], m["epoch"]))
EOF
echo "== the reference: base + every accepted chunk loaded once into a 1-node cluster, per partition"
{ cat "$work/events.csv"
  awk '$3 == 0 && / accepted/ { print $4 }' "$work/stream.log" | while read -r c; do tail -n +2 "$work/chunks/$c"; done
} > "$work/reference.csv"
ref=""
for _ in 1 2 3 4 5; do ref=$(SHARDREC_CLUSTER_DIR=$work/ref cluster/local.sh up 1 --partitions "$partitions") && break; sleep 1; done
"$bin/shardrec" --cluster "$ref" load "$work/reference.csv" --format events --quiet
"$bin/shardrec" --cluster "$ref" partitions --json > "$work/ref-partitions.json"
SHARDREC_CLUSTER_DIR=$work/ref cluster/local.sh clean
python3 - "$work" <<'EOF2'
import json, sys
w = sys.argv[1]
got = {p["partition"]: p for p in json.load(open(w + "/partitions.json"))["partition_status"]}
ref = {p["partition"]: p for p in json.load(open(w + "/ref-partitions.json"))["partition_status"]}
diff = [(k, got[k]["user_events"], ref[k]["user_events"], got[k]["epoch"], got[k]["primary"]) for k in sorted(ref) if got[k]["user_events"] != ref[k]["user_events"]]
print("partitions whose user_events differ from the reference (partition, cluster, reference, epoch, primary):", diff or "none")
print("item_events differ:", [(k, got[k]["item_events"], ref[k]["item_events"]) for k in sorted(ref) if got[k]["item_events"] != ref[k]["item_events"]] or "none")
EOF2
echo "== node log lines with error/warn/fail/refused/fenced:"
grep -iHE 'error|warn|fail|refus|fenced|corrupt|torn|lost' "$SHARDREC_CLUSTER_DIR"/node*/log | sed "s|$work/cluster/||" | head -60 || true
