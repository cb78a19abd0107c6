// Non-personalised baselines: all-time popularity and time-decayed trending.
//
// Both are computed from the training matrix, one cell per (user, item) pair:
//   popular:  score(i) = number of distinct users with a cell for i
//             (use_values: the sum of the cell values instead),
//   trending: score(i) = sum over cells of w * 2^(-max(0, now - t) / half_life)
//             with t the cell's timestamp (interaction_matrix::user_timestamps,
//             the latest event of the pair) and w = 1 (use_values: the value).
// An event one half-life older than `now` weighs 0.5; events after `now`
// weigh 1. Every user gets the same scores. Scores are accumulated in double
// in a fixed order and stored as float, so they are deterministic; trending
// weights older than ~126 half-lives underflow to 0 in float.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

struct popularity_config {
  bool trending = false;
  double half_life_seconds = 7 * 86400.0; // trending only; must be > 0
  // Reference time (seconds since the epoch) for trending; default: the
  // latest cell timestamp in the training matrix (0 if it is empty).
  std::optional<std::int64_t> now;
  bool use_values = false; // weight cells by their value instead of 1
};

// Returns invalid_argument when half_life_seconds is not a positive finite
// number (checked only when trending).
status validate(const popularity_config& cfg);

// Per-item scores as described above; size train.n_items().
// REQUIRES: validate(cfg).ok()
std::vector<float> popularity_scores(const interaction_matrix& train,
                                     const popularity_config& cfg);

// Model named "popular" (or "trending" when cfg.trending). score_items ignores
// the user; explain() is empty.
// REQUIRES: validate(cfg).ok()
std::unique_ptr<model> train_popularity(const interaction_matrix& train,
                                        const popularity_config& cfg);

} // namespace shardrec::core
