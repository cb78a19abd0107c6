#!/bin/sh
# Stands in for shardrec-node in local_cluster's own tests. Takes the node's
# options; appends its pid to pids in the folder above the cluster's folder
# (--data-dir is <parent>/shardrec-test-XXXXXX/nodeK), ignores SIGTERM so
# that the cluster must escalate to SIGKILL, and comes up (writes its port
# file) only as the first node: a node that joins never does.
port_file=
join=
data_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --port-file) port_file=$2; shift ;;
    --join) join=$2; shift ;;
    --data-dir) data_dir=$2; shift ;;
  esac
  shift
done
echo $$ >> "$data_dir/../../pids"
trap '' TERM
if [ -z "$join" ]; then
  echo 40000 > "$port_file"
fi
exec sleep 600
