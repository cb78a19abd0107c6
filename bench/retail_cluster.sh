#!/usr/bin/env bash
# The cluster's tuned hybrid on UCI Online Retail against `eval --local` on
# the same split: each customer's last line (by InvoiceDate, then file order)
# held out. 2 nodes, P = 7 on 127.0.0.1.
# usage: bench/retail_cluster.sh [BUILD_DIR] [DATA_DIR]
set -euo pipefail
build=${1:-build}
data=${2:-../shared/data}
work=$(mktemp -d)
trap 'SHARDREC_BIN=$build cluster/local.sh clean >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
python3 - "$data/online-retail/online_retail.csv.gz" "$work" <<'PY'
import csv, gzip, sys
rows = list(csv.reader(gzip.open(sys.argv[1], 'rt', encoding='utf-8', errors='replace')))
hdr, rows = rows[0], rows[1:]
last = {}
for k, r in enumerate(rows):
    if r[6] and (r[6] not in last or (r[4], k) >= last[r[6]][0]):
        last[r[6]] = ((r[4], k), k)
held = {k for _, k in last.values()}
for name, keep in (('train', lambda k: k not in held), ('test', lambda k: k in held)):
    with gzip.open(f'{sys.argv[2]}/{name}.csv.gz', 'wt') as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(hdr)
        w.writerows(r for k, r in enumerate(rows) if keep(k))
PY
addr=$(SHARDREC_BIN=$build cluster/local.sh up 2 --partitions 7 --sync none | tail -1)
"$build/shardrec" --cluster "$addr" load "$work/train.csv.gz" --format online-retail --quiet
"$build/shardrec" --cluster "$addr" train --json > "$work/train.json"
"$build/shardrec" --cluster "$addr" eval --test "$work/test.csv.gz" --format online-retail --json > "$work/cluster.json"
"$build/shardrec" eval --local --train "$work/train.csv.gz" --test "$work/test.csv.gz" --format online-retail --json > "$work/local.json" 2>/dev/null
python3 - "$work" <<'PY'
import json, sys
d = sys.argv[1]
t = json.load(open(f'{d}/train.json')); c = json.load(open(f'{d}/cluster.json')); l = json.load(open(f'{d}/local.json'))
print('cluster train %.1f s, phases %s, blend %s, notes %s' % (t['seconds'], t['phases'], t['blend'], t['notes']))
print('tuned: cluster %s, local %s' % (t['tuning']['weights'], l['tuning']['weights']))
for k in ('hit_rate_at_k', 'ndcg_at_k', 'ranking_users'):
    print('%-14s cluster %s  local %s' % (k, c[k], l[k]))
PY
