// The coordinator actor (messages and state: actors/coordinator.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node.hpp"

namespace shardrec::actors {

// Spawns the coordinator and, from it, the node's membership actor; links
// itself to `host`, `scorer` and the membership actor.
node_handles spawn_coordinator(caf::actor_system& sys, const node_config& cfg,
                               caf::actor host, caf::actor scorer);

} // namespace shardrec::actors
