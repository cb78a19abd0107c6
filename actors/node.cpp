#include "actors/node.hpp"

#include "actors/coordinator.hpp"
#include "actors/node_host.hpp"
#include "actors/node_scorer.hpp"

namespace shardrec::actors {

node_handles spawn_node(caf::actor_system& sys, const node_config& cfg) {
  // The scorer's handle goes to the host first: the host's first message
  // tells the scorer whose scorers to take.
  auto scorer = spawn_node_scorer(sys);
  auto host = spawn_node_host(sys, scorer);
  return spawn_coordinator(sys, cfg, host, scorer);
}

} // namespace shardrec::actors
