// The node host actor (messages and state: actors/node_host.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/durable.hpp"

namespace shardrec::actors {

// `scorer`: the node scorer that gets each hosted shard's scorer.
// `dur`: where the node's partitions keep their log and snapshots; a
// partition the map gives this node is recovered from there when spawned.
caf::actor spawn_node_host(caf::actor_system& sys, caf::actor scorer,
                           durability dur = {});

} // namespace shardrec::actors
