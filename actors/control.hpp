// The control actor: one per node, published on the node's port. It is the
// entry point of the admin CLI and of joining peers, keeps the partition map
// and the handles of every shard in the cluster, routes event batches to the
// shards that own them, and hosts this node's shards (spawns and monitors
// them).
//
// Messages (dynamically typed; payload frames per schema/admin.capnp):
//   (status_atom)                         -> frame StatusReply
//   (ingest_atom, frame EventBatch)       -> frame IngestReply
//   (join_atom, frame PartitionMap, actor) -> frame PartitionMap   leader only
//   (assign_atom, frame PartitionMap)     -> (vector<uint32>, vector<actor>)
//   (install_atom, frame PartitionMap, vector<actor>) -> ok_atom
// The first node of a cluster is its leader: it owns the partition map and
// admits joining nodes.
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

namespace shardrec::actors {

struct control_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::uint32_t partitions = 64; // leader only; joiners learn it from the leader
  bool leader = true;
};

caf::actor spawn_control(caf::actor_system& sys, const control_config& cfg);

// Registers shardrec's message types with a CAF configuration.
void add_message_types(caf::actor_system_config& cfg);

} // namespace shardrec::actors
