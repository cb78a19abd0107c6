// Scatter-gather queries run by a node's control actor on behalf of a
// client: recommend (profile from the user's partition, two scoring phases
// over every partition, merge) and similar items (the item's partition).
// Every request carries the remaining budget of the query; partitions that do
// not answer in time are listed and the answer is flagged partial. The
// control actor computes nothing itself: merges are core functions.
#pragma once

#include <cstdint>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include "actors/frame.hpp"
#include "actors/messages.hpp"

namespace shardrec::actors {

// REQUIRES: shards.size() == partitions; empty handles are unavailable
// partitions.
// node_of[p] is the control actor of partition p's node: a repeat query
// sends one message per node, which fans out to its partitions locally.
void run_recommend(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                   const std::vector<caf::actor>& node_of, recommend_request req,
                   std::uint64_t query_id, caf::typed_response_promise<frame> rp);

// A node's share of a scatter: forwards `inner` (a score, select or direct
// request) to each listed local partition's shard and replies their frames
// (a partition that fails or times out is left out, so the coordinator's
// merge reports it missing).
void run_local_fanout(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                      const std::vector<std::uint32_t>& partitions,
                      const caf::message& inner,
                      caf::typed_response_promise<std::vector<frame>> rp);

void run_similar(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 similar_request req, caf::typed_response_promise<frame> rp);

// Rating predictions for (users[r], items[r]): MF rows of the users from their
// partitions, then the items' partitions predict. Replies vector<float>.
void run_predict(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 std::vector<std::string> users, std::vector<std::string> items,
                 caf::typed_response_promise<std::vector<float>> rp);

} // namespace shardrec::actors
