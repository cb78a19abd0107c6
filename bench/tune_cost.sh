#!/usr/bin/env bash
# What tuning costs (issue 13: training with tuning at most 5x training
# without) on a generated rating set of ~1M events, in one run: eval --local
# with and without tuning, then a NODES-node cluster (default 2, P = 8
# partitions, --sync none) trained with --no-tune, with tuning, and with
# --no-tune again (the ratio is to the mean of the two untuned runs).
# Prints the seconds of each, the ratios and each tuning variant's seconds.
# usage: bench/tune_cost.sh [BUILD_DIR]   (USERS, ITEMS, EVENTS, SEED change the data)
set -euo pipefail
build=${1:-build}
nodes=${NODES:-2}
parts=${P:-8}
work=$(mktemp -d)
export SHARDREC_CLUSTER_DIR=$work/cluster
trap 'SHARDREC_BIN=$build cluster/local.sh clean >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
data=$work/events.csv
"$build/shardrec" gen --users "${USERS:-6000}" --items "${ITEMS:-4000}" --events "${EVENTS:-1350000}" \
  --seed "${SEED:-1}" --explicit --out "$data" >/dev/null
"$build/shardrec" eval --local --train "$data" --format events --split last --algo hybrid --no-tune \
  --json 2>/dev/null >"$work/local_notune.json"
"$build/shardrec" eval --local --train "$data" --format events --split last --algo hybrid \
  --json 2>/dev/null >"$work/local_tune.json"
addr=$(SHARDREC_BIN=$build cluster/local.sh up "$nodes" --partitions "$parts" --sync none | tail -1)
"$build/shardrec" --cluster "$addr" load "$data" --format events --quiet >/dev/null
"$build/shardrec" --cluster "$addr" train --no-tune --json >"$work/cluster_notune.json"
"$build/shardrec" --cluster "$addr" train --json >"$work/cluster_tune.json"
"$build/shardrec" --cluster "$addr" train --no-tune --json >"$work/cluster_notune2.json"
python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
j = {n: json.load(open(os.path.join(w, n + ".json")))
     for n in ("local_notune", "local_tune", "cluster_notune", "cluster_tune", "cluster_notune2")}
ln, lt = j["local_notune"]["train_seconds"], j["local_tune"]
lt_total = lt["train_seconds"] + lt["tuning"]["seconds"]
cn = (j["cluster_notune"]["seconds"] + j["cluster_notune2"]["seconds"]) / 2
ct = j["cluster_tune"]["seconds"]
print("local   no-tune train %6.1f s | tuned: tune %5.1f + train %5.1f = %6.1f s | ratio %.2f"
      % (ln, lt["tuning"]["seconds"], lt["train_seconds"], lt_total, lt_total / ln))
print("cluster no-tune train %6.1f s (%.1f, %.1f) | tuned: %6.1f s (tune phase %5.1f s) | ratio %.2f"
      % (cn, j["cluster_notune"]["seconds"], j["cluster_notune2"]["seconds"], ct,
         j["cluster_tune"]["phases"].get("tune", 0), ct / cn))
for name in ("local_tune", "cluster_tune"):
    t = j[name]["tuning"]
    print("%-12s chose %s (alpha %g reg %g neighbours %d lambda %g) on %d users (%d validation)"
          % (name, t["weights"], t["ials_alpha"], t["ials_reg"], t["knn_neighbors"], t["ease_lambda"],
             t["sample_users"], t["validation_users"]))
    print("  " + ", ".join("%s %.1f s" % (v["what"], v["seconds"]) for v in t["variants"]))
PY
