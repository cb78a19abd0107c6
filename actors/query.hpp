// The coordinator's queries (actors/coordinator.cpp), as functions it runs
// on itself: recommend (profile from the user's partition, one or two
// scoring rounds over every node's scorer, merge), similar items (the item's
// partition) and rating predictions. Every request carries the remaining
// budget of the query; partitions that do not answer in time are listed and
// the answer is flagged partial. Merges, certification and explanations are
// dist/ functions: nothing is computed here. Every fan-out goes through
// actors/scatter.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>

#include "actors/frame.hpp"
#include "actors/messages.hpp"

namespace shardrec::actors {

// A recommend request waiting for its coordinator's next flush.
struct queued_recommend {
  recommend_request req;
  std::uint64_t qid = 0; // unique per cluster: node id in the high bits
  caf::typed_response_promise<frame> rp;
  // When the request arrived and how often it was asked again (a query
  // that met a model swap: run_recommend_batch).
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  int retries = 0;
};

// Delivers an invalid_argument error to rp and returns false when the
// request cannot be answered (no map, empty user, unknown algo, bad n).
bool check_recommend(const recommend_request& req, std::uint32_t partitions,
                     caf::typed_response_promise<frame>& rp);

// Answers the queries a coordinator gathered in one flush together: one
// profile request per owner partition, then one message per node with every
// query (dist/node_query.hpp: a local round for new users, each node's top n
// under its own statistics with a bound; direct for users whose blend
// statistics are cached), then a direct recheck only for the nodes whose
// local answers the global statistics could not certify. Each query is
// answered on its own promise, partial when partitions did not answer
// within query_timeout.
// A query whose answer would be partial because a node answered it with an
// error (or whose partitions' statistics do not fit together), before half
// its deadline, met a model swap: during a publish a node briefly holds
// scorers of two versions with different blends, and answers for those
// partitions with an error at once. Such a query goes back to `requeue`
// and `self` gets a flush_atom 50 ms later, up to 3 times; a dead or
// stuck node's queries are answered partial, as before.
// REQUIRES: shards.size() == partitions; empty handles are unavailable
// partitions. node_of[p] is the node scorer of partition p's node.
// requeue (may be null: no retries) outlives every batch: the
// coordinator's queue.
void run_recommend_batch(caf::event_based_actor* self,
                         const std::vector<caf::actor>& shards,
                         const std::vector<caf::actor>& node_of,
                         std::vector<queued_recommend> batch,
                         std::vector<queued_recommend>* requeue = nullptr);

void run_similar(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 similar_request req, caf::typed_response_promise<frame> rp);

inline constexpr std::uint32_t max_popular = 1000;

// The top n items by popularity or trending over every partition (each
// partition's own top n, merged); partial when partitions did not answer.
void run_popular(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 popular_request req, caf::typed_response_promise<frame> rp);

// Rating predictions for (users[r], items[r]): MF rows of the users from their
// partitions, then the items' partitions predict. Replies vector<float>.
// Which (users[r], items[r]) pairs the cluster holds an event of (1) or not
// (0), asked of the users' partitions: what an evaluation removes from a
// user's test items, as the core removes the training row's items.
void run_seen(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
              std::vector<std::string> users, std::vector<std::string> items,
              caf::typed_response_promise<std::vector<std::uint32_t>> rp);

void run_predict(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 std::vector<std::string> users, std::vector<std::string> items,
                 caf::typed_response_promise<std::vector<float>> rp);

} // namespace shardrec::actors
