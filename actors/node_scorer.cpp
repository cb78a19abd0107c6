// The node scorer: one per node, owns the node's query engine
// (dist::node_query_engine) over the scorers of the partitions the node
// hosts, and answers a coordinator's batch for those partitions in one pass.
// The node host (its only source of scorers) sets and drops them; the node's
// coordinator links it. Computation here is the engine's (dist/).
//
// Messages:
//   (nquery_atom, frame NodeQueryBatch)               -> frame NodeQueryReply
//   (host_atom)                                       -> (nothing) the node host, once
//   (scorer_atom, u32 partition, shared_scorer)       -> (nothing) from the node host;
//                                                        a null scorer drops the
//                                                        partition
#include "actors/node_scorer.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/local_messages.hpp"
#include "dist/node_query.hpp"

namespace shardrec::actors {

namespace {

struct node_scorer_state {
  dist::node_query_engine engine;
  caf::actor_addr host; // the only actor whose scorers are taken
  static inline const char* name = "node_scorer";
};

using node_scorer_pointer = caf::stateful_actor<node_scorer_state>*;

caf::behavior node_scorer(node_scorer_pointer self) {
  return {
      [=](nquery_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_node_query_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        return encode(self->state.engine.answer(*batch, max_because));
      },
      [=](host_atom) {
        // The node host introduces itself in the first message it sends, from
        // its init. Other actors learn this actor's handle only from a view
        // (actors/membership.cpp), which exists only after the host answered
        // an assign request, so after that message is in this mailbox.
        if (!self->state.host)
          self->state.host = caf::actor_cast<caf::actor_addr>(self->current_sender());
      },
      [=](scorer_atom, std::uint32_t partition, const shared_scorer& s) {
        if (self->state.host && self->current_sender() == self->state.host)
          self->state.engine.set_scorer(partition, s);
      },
  };
}

} // namespace

caf::actor spawn_node_scorer(caf::actor_system& sys) {
  return sys.spawn([](node_scorer_pointer self) { return node_scorer(self); });
}

} // namespace shardrec::actors
