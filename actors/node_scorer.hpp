// The node scorer actor (messages and state: actors/node_scorer.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace shardrec::actors {

caf::actor spawn_node_scorer(caf::actor_system& sys);

} // namespace shardrec::actors
