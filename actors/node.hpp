// One shardrec node: the actors a `shardrec-node` process runs.
//
//   coordinator  published on the node's port: the entry point of clients and
//                joining nodes; routes events, runs queries and training
//                (actors/coordinator.hpp)
//   membership   the partition map and the nodes of the cluster; on the first
//                node it admits joining nodes (actors/membership.hpp)
//   node host    spawns and monitors this node's shards (actors/node_host.hpp)
//   node scorer  this node's share of every query (actors/node_scorer.hpp)
//   shards       one per hosted partition (actors/shard.hpp)
//
// The coordinator is linked to the other three: stopping it stops the node.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/durable.hpp"
#include "actors/messages.hpp"

namespace shardrec::actors {

struct node_config {
  std::string host = "127.0.0.1";
  std::uint32_t partitions = 64; // first node only; joiners learn it from the map
  bool first = true;             // creates the cluster (else joins one)
  bool etcd = false;             // membership in etcd (node/etcd_member.hpp)
  durability dur;                // where the partitions keep their log and snapshots
  // First node: train (the default request) this often when anything
  // changed since; 0: only on request.
  std::chrono::seconds retrain_every{0};
  // A restart: the identity and map of DATA_DIR/node.state; the node hosts
  // the same partitions again, recovered from its data folder.
  std::optional<node_state> restored;
};

struct node_handles {
  caf::actor coordinator; // publish this one
  caf::actor membership;  // pass it along with a join request
};

// Spawns a node's actors. Before it serves, tell the coordinator its port:
// (start_atom, u16 port) -> ok_atom once a first node hosts every partition.
node_handles spawn_node(caf::actor_system& sys, const node_config& cfg);

} // namespace shardrec::actors
