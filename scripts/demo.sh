#!/usr/bin/env bash
# The main job: set up and build, start a 3-node shardrec cluster on
# 127.0.0.1, load MovieLens 100K from ../shared/data (or, when absent, a
# generated data set), train every model across the nodes, print hybrid
# recommendations with their explanations, similar and trending items, and stop the
# cluster. Environment: PARTITIONS (default 16), NODES (default 3), DATA
# (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
bin=${BUILD_DIR:-build}
nodes=${NODES:-3}
partitions=${PARTITIONS:-16}
work=$(mktemp -d /tmp/shardrec-demo-XXXXXX)
export SHARDREC_BIN=$bin SHARDREC_CLUSTER_DIR=$work/cluster
cleanup() { cluster/local.sh down || true; rm -rf "$work"; }
trap cleanup EXIT

data=${DATA:-../shared/data}/ml-100k
if [ -f "$data/u.data" ]; then
  events=$data/u.data format=movielens items=$data/u.item
  title() { awk -F'|' -v id="$1" '$1 == id { print $2; exit }' "$items"; }
  users=(1 196 405)
  first_item=1
  echo "== data: MovieLens 100K ($events)"
else
  "$bin/shardrec" gen --users 2000 --items 1000 --events 100000 --seed 7 \
    --out "$work/events.csv" --items-out "$work/items.csv"
  events=$work/events.csv format=events items=$work/items.csv
  title() { awk -F',' -v id="$1" '$1 == id { print $2; exit }' "$items"; }
  users=(u1 u2 u3)
  first_item=i0
  echo "== data: generated ($events)"
fi

echo "== starting $nodes nodes with $partitions partitions"
address=$(cluster/local.sh up "$nodes" --partitions "$partitions")
cli() { "$bin/shardrec" --cluster "$address" "$@"; }
cli nodes
cli load "$events" --format "$format" --items "$items" --quiet
echo "== training (implicit ALS, MF by ALS, item-kNN, content, popularity) across the nodes"
cli train
cli status

for u in "${users[@]}"; do
  echo
  echo "== top 10 for user $u (score = sum of component contributions; 'because' = the user's items behind the content or item-kNN part, whichever contributes more)"
  cli recommend "$u" -n 10 --json > "$work/rec.json"
  # One line per item: rank, title, score, contributions, because.
  sed 's/},{"because"/}\n{"because"/g; s/^{"items":\[//' "$work/rec.json" \
    | grep -o '"because":\[[^]]*\],"because_from":"[^"]*","components":{.*},"item":"[^"]*","score":[-0-9.e]*' \
    | awk -v n=0 '{ n++; print n "\t" $0 }' > "$work/rec.lines" || true
  while IFS=$'\t' read -r rank line; do
    item=$(echo "$line" | sed 's/.*"item":"\([^"]*\)".*/\1/')
    score=$(echo "$line" | sed 's/.*"score":\([-0-9.e]*\).*/\1/')
    parts=$(echo "$line" | grep -o '"[a-z-]*":{"contribution":[-0-9.e]*' \
            | sed 's/"\([a-z-]*\)":{"contribution":\([-0-9.e]*\)/\1 \2/' \
            | awk '{ printf "%s %+.2f  ", $1, $2 }')
    because=$(echo "$line" | sed 's/.*"because":\[\([^]]*\)\].*/\1/' | tr -d '"' | tr ',' ' ')
    from=$(echo "$line" | sed 's/.*"because_from":"\([^"]*\)".*/\1/')
    names=""
    for b in $because; do names="$names$(title "$b"); "; done
    printf '%2s. %-45s %6.3f  %s\n' "$rank" "$(title "$item") [$item]" "$score" "$parts"
    [ -n "$names" ] && printf '      because of (%s): %s\n' "$from" "$names"
  done < "$work/rec.lines"
done

echo
echo "== items similar to $(title "$first_item") [$first_item] (item-item cosine, computed across partitions)"
cli similar "$first_item" -n 5 | while read -r id _ sim; do
  printf '  %-50s %s\n' "$(title "$id") [$id]" "$sim"
done
echo
echo "== trending items (each event weighs 2^(-age / 7 days), counted per event across partitions)"
cli popular --trending -n 5 | while read -r id _ score; do
  printf '  %-50s %s\n' "$(title "$id") [$id]" "$score"
done
echo
echo "== stopping the cluster"
