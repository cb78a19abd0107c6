// Evaluating what a running cluster serves against held-out events: rating
// error from the cluster's predictions (when every test event is a rating)
// and ranking metrics of its top-k hybrid answers, computed by core/metrics
// exactly as `shardrec eval --local` computes them in one process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/connection.hpp"
#include "core/dataset.hpp"
#include "core/metrics.hpp"

namespace shardrec::client {

struct eval_options {
  std::size_t k = 10;      // cut-off of the ranking metrics; REQUIRES >= 1
  std::size_t window = 16; // queries in flight; REQUIRES >= 1
};

struct eval_figures {
  bool has_rating_error = false;   // every test event is a rating and all were predicted
  core::error_metrics rating;      // valid when has_rating_error
  core::ranking_metrics ranking;   // over the test users with at least one test item
  std::size_t queries = 0;         // test users asked for their top k
  std::size_t partial_answers = 0; // answers flagged partial
  double query_seconds = 0;        // wall time of the ranking queries
  std::size_t test_events = 0;
  // The cluster's data when evaluation began.
  std::uint64_t users = 0, items = 0, train_interactions = 0;
  // What went wrong without stopping the evaluation, in order: "no rating
  // predictions: ..." (no rating error then), "query failed: ..." (that
  // user counts with an empty list).
  std::vector<std::string> warnings;
};

// Asks the cluster for every test user's top k (hybrid) and, for rating
// data, the prediction of every test event. Error: the cluster's status
// could not be had (nothing asked).
core::result<eval_figures> evaluate(connection& c, const core::dataset& test,
                                    const eval_options& opt);

} // namespace shardrec::client
