// The membership actor (messages and state: actors/membership.cpp).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/node.hpp"

namespace shardrec::actors {

// `host`: this node's host actor; `scorer`: its node scorer; `coordinator`
// gets (view_atom, frame PartitionMap, vector<actor> shards by partition,
// vector<actor> scorers by partition, u32 node id) after every change.
caf::actor spawn_membership(caf::actor_system& sys, const node_config& cfg,
                            caf::actor host, caf::actor scorer, caf::actor coordinator);

} // namespace shardrec::actors
