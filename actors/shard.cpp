#include "actors/shard.hpp"

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "core/partition_store.hpp"

namespace shardrec::actors {

namespace {

struct shard_state {
  std::unique_ptr<core::partition_store> store; // set at spawn, never null after
  std::uint32_t node_id = 0;
  bool has_ratings_only = true; // every event so far is a rating
  static inline const char* name = "shard";
};

using shard_pointer = caf::stateful_actor<shard_state>*;

caf::behavior shard_behavior(shard_pointer self) {
  return {
      [=](ingest_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_event_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        ingest_result r;
        std::size_t index = 0;
        for (const auto& e : batch->events) {
          auto st = self->state.store->add(e);
          if (st) {
            ++r.accepted;
            if (e.type != core::event_type::rating)
              self->state.has_ratings_only = false;
          } else {
            ++r.rejected;
            if (r.problems.size() < 10)
              r.problems.push_back("event " + std::to_string(index) + ": "
                                   + st.err().message);
          }
          ++index;
        }
        return encode(r);
      },
      [=](stats_atom) -> frame {
        const auto& s = *self->state.store;
        partition_status st;
        st.partition = s.partition();
        st.node = self->state.node_id;
        st.users = s.users().size();
        st.items = s.items().size();
        st.user_events = s.user_events();
        st.item_events = s.item_events();
        return encode(st);
      },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id) {
  return sys.spawn([=](shard_pointer self) {
    self->state.store = std::make_unique<core::partition_store>(partition, partitions);
    self->state.node_id = node_id;
    return shard_behavior(self);
  });
}

} // namespace shardrec::actors
