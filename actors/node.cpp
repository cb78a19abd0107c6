#include "actors/node.hpp"

#include <caf/send.hpp>

#include "actors/coordinator.hpp"
#include "actors/interfaces.hpp"
#include "actors/membership.hpp"
#include "actors/node_host.hpp"
#include "actors/node_scorer.hpp"

namespace shardrec::actors {

node_handles spawn_node(caf::actor_system& sys, const node_config& cfg) {
  // The scorer's handle goes to the host first: the host's first message
  // tells the scorer whose scorers to take.
  auto scorer = spawn_node_scorer(sys);
  auto host = spawn_node_host(sys, scorer, cfg.dur);
  // Coordinator and membership each need the other's handle: the
  // membership actor gets it at spawn, the coordinator as its first message
  // (enqueued here, before anyone else has its handle).
  node_handles out;
  out.coordinator = spawn_coordinator(sys, cfg, host, scorer);
  out.membership = spawn_membership(sys, cfg, host, scorer, out.coordinator);
  caf::anon_send(out.coordinator, membership_atom::value, out.membership);
  return out;
}

} // namespace shardrec::actors
