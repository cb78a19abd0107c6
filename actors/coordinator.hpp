// The coordinator actor (messages and state: actors/coordinator.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node.hpp"

namespace shardrec::actors {

// Spawns the coordinator, linked to `host` and `scorer`. Its first message
// must be (membership_atom, actor): the node's membership actor, which it
// links too (actors/node.cpp).
caf::actor spawn_coordinator(caf::actor_system& sys, const node_config& cfg,
                             caf::actor host, caf::actor scorer);

} // namespace shardrec::actors
