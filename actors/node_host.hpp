// The node host actor (messages and state: actors/node_host.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace shardrec::actors {

// `scorer`: the node scorer that gets each hosted shard's scorer.
caf::actor spawn_node_host(caf::actor_system& sys, caf::actor scorer);

} // namespace shardrec::actors
