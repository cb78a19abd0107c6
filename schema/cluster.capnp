# Cluster membership and the partition map.
@0xa4b96e37d5770e09;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("shardrec::wire");

struct NodeInfo {
  id @0 :UInt32;
  host @1 :Text;
  port @2 :UInt16;
  # With --etcd: joining, serving, draining or down (from its registration
  # in etcd); empty otherwise. Not part of the map's identity.
  state @3 :Text;
  # With --etcd: this node is the cluster's controller.
  controller @4 :Bool;
}

# Partition p lives on node owner[p] (its primary). The version grows with
# every change. With --etcd and replicas: epoch[p] grows whenever p's
# primary changes (a write or replica of an older epoch is refused: fencing)
# and followers[p] lists the nodes that keep an in-sync copy of p. Both are
# empty without replicas (epoch 0, no followers).
struct PartitionMap {
  version @0 :UInt64;
  partitions @1 :UInt32;
  nodes @2 :List(NodeInfo);
  owner @3 :List(UInt32);
  epoch @4 :List(UInt64);
  followers @5 :List(List(UInt32));
}

# What a node keeps in DATA_DIR/node.state (written atomically on every map
# change): who it is and the last map it installed, so that a restart comes
# back as the same node with the same partitions.
struct NodeState {
  nodeId @0 :UInt32;
  map @1 :PartitionMap;
}
