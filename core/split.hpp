// Train/test splits of raw events for offline evaluation.
//
// Every split is a pure function of its arguments: the same events, seed and
// options give the same split on every platform. Randomness comes from
// std::mt19937_64 (fully specified by the standard) with our own uniform
// transforms, because std::uniform_*_distribution differ across libraries.
// Both halves keep the input order of the events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dataset.hpp"
#include "core/error.hpp"

namespace shardrec::core {

struct split_result {
  std::vector<event> train;
  std::vector<event> test;
};

// Random holdout: exactly round(test_fraction * events.size()) events, chosen
// uniformly by a seeded Fisher-Yates shuffle, go to test.
// Returns invalid_argument unless 0 <= test_fraction <= 1.
result<split_result> random_split(const std::vector<event>& events, double test_fraction,
                                  std::uint64_t seed);

// Per-user leave-last-out: each user's latest event (largest timestamp; among
// equal timestamps the one latest in input order) goes to test. Users with a
// single event keep it in train.
split_result leave_last_out(const std::vector<event>& events);

// The fold (0..k-1) of every event, aligned with `events`.
//   per_user = false: a seeded shuffle of all events dealt round-robin, so
//     fold sizes differ by at most one.
//   per_user = true (stratified): each user's events are shuffled with the
//     user's own stream (derived from seed and user index) and dealt
//     round-robin from a random starting fold, so each user's per-fold counts
//     differ by at most one.
// Returns invalid_argument unless k >= 2.
result<std::vector<std::uint32_t>> kfold_assign(const std::vector<event>& events,
                                                std::uint32_t k, std::uint64_t seed,
                                                bool per_user);

// Fold `fold` of a k-fold split as test, the other k-1 folds as train.
// Over fold = 0..k-1 every event is in exactly one test set.
// Returns invalid_argument unless k >= 2 and fold < k.
result<split_result> kfold_split(const std::vector<event>& events, std::uint32_t k,
                                 std::uint32_t fold, std::uint64_t seed, bool per_user);

} // namespace shardrec::core
