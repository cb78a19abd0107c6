#!/usr/bin/env bash
# Do two builds give the same answers? Each build gets its own 3-node cluster
# (P = 7) on ML-100K u1.base with u.item, trains every model, and answers the
# same requests: recommend for users 1-40 and three repeat users, similar for
# items 1-40, eval on u1.test, status. The answers must be byte-identical; the
# train reply, eval figures and status identical apart from timings (and the
# nodes' ports).
# usage: bench/answers_ab.sh BUILD_A BUILD_B [DATA_DIR]
set -euo pipefail
a=${1:?usage: bench/answers_ab.sh BUILD_A BUILD_B [DATA_DIR]}
b=${2:?usage: bench/answers_ab.sh BUILD_A BUILD_B [DATA_DIR]}
data=${3:-../shared/data}/ml-100k
[ -f "$data/u1.base" ] || { echo "answers_ab: $data/u1.base is missing" >&2; exit 2; }
work=$(mktemp -d /tmp/shardrec-answers-XXXXXX)
trap 'SHARDREC_CLUSTER_DIR=$work/cluster cluster/local.sh down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
run() {
  local build=$1 out=$2
  export SHARDREC_BIN=$build SHARDREC_CLUSTER_DIR=$work/cluster
  local addr
  addr=$(cluster/local.sh up 3 --partitions 7)
  cli() { "$build/shardrec" --cluster "$addr" "$@"; }
  cli load "$data/u1.base" --format movielens --items "$data/u.item" --quiet >/dev/null
  cli train --json >"$out.train.json"
  : >"$out.answers"
  for u in $(seq 1 40) 1 7 100; do cli recommend "$u" -n 10 --json >>"$out.answers"; echo >>"$out.answers"; done
  for i in $(seq 1 40); do cli similar "$i" -n 10 --json >>"$out.answers"; echo >>"$out.answers"; done
  cli eval --test "$data/u1.test" --format movielens --json >"$out.eval.json"
  cli status --json >"$out.status.json"
  cluster/local.sh down >/dev/null
}
run "$a" "$work/a"
run "$b" "$work/b"
status=0
if cmp -s "$work/a.answers" "$work/b.answers"; then
  echo "recommend/similar: identical ($(wc -c <"$work/a.answers") bytes)"
else
  echo "recommend/similar: DIFFER"; status=1
fi
for f in train eval status; do
  python3 - "$work/a.$f.json" "$work/b.$f.json" "$f" <<'PY' || status=1
import json, sys
# Timings, and the ports the nodes happened to get.
timing = {"seconds", "phases", "train_seconds", "eval_seconds", "port"}
def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if k not in timing}
    if isinstance(d, list):
        return [strip(x) for x in d]
    return d
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
# Keys that only one build reports (a field added by the newer one) are
# named and left out of the comparison.
def common(x, y, path, notes):
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) ^ set(y)):
            notes.append(f"{path}{k} only in {'A' if k in x else 'B'}")
        keys = set(x) & set(y)
        return ({k: common(x[k], y[k], f"{path}{k}.", notes)[0] for k in keys},
                {k: common(x[k], y[k], f"{path}{k}.", notes)[1] for k in keys})
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        pairs = [common(p, q, path, notes) for p, q in zip(x, y)]
        return [p for p, _ in pairs], [q for _, q in pairs]
    return x, y
notes = []
a, b = common(a, b, "", notes)
notes = sorted(set(notes))
extra = f" ({'; '.join(notes)})" if notes else ""
print(f"{sys.argv[3]}: " + ("identical apart from timings and ports" if a == b else "DIFFER") + extra)
sys.exit(0 if a == b else 1)
PY
done
exit $status
