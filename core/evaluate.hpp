// Offline evaluation of one algorithm on a train/test split: rating error
// (RMSE, MAE) for rating predictors and top-K ranking metrics for all.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/algorithms.hpp"
#include "core/metrics.hpp"
#include "core/tuning.hpp"

namespace shardrec::core {

struct eval_options {
  algo_options algo;
  std::size_t k = 10;
  // hybrid without explicit weights: tune on the training events first
  // (core/tuning.hpp), as the cluster's `train` does; false: the defaults.
  bool tune = true;
  tuning_options tuning;
};

struct eval_report {
  std::string algo;
  std::size_t k = 10;
  bool predicts_ratings = false;
  // The model predicts ratings and every test event is one; then errors
  // holds the rating error over every test event.
  error_metrics errors;
  ranking_metrics ranking; // over test users with >= 1 unseen test item
  double train_seconds = 0.0;
  double eval_seconds = 0.0;
  std::size_t users = 0; // rows of the training matrix (every id known to ds)
  std::size_t items = 0; // columns of the training matrix
  std::size_t train_interactions = 0; // distinct (user, item) cells in train
  std::size_t test_events = 0;
  std::optional<tuning_report> tuning; // when the hybrid was tuned
};

// Trains opt.algo on `train` and measures it on `test`. Both hold indices of
// ds's id maps. Several train events on one pair merge into one cell: the
// last rating if every event is a rating, else the sum of the values.
// Ranking protocol: for each user with test items not seen in training, the
// top-k of all items minus the user's training items is compared with those
// test items; every test event counts as relevant whatever its value.
result<eval_report> evaluate(const dataset& ds, const std::vector<event>& train,
                             const std::vector<event>& test, const eval_options& opt);

// The merge policy evaluate() and the demo use for a set of events.
merge_policy merge_policy_for(const std::vector<event>& events);

} // namespace shardrec::core
