// Top-N selection over a dense score vector.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "core/dataset.hpp"

namespace shardrec::core {

struct scored_item {
  index_t item = 0;
  float score = 0.0f;
};

// Ordering used everywhere a ranking is cut: higher score first, then lower
// index, so that equal scores rank the same in every process.
inline bool ranks_before(const scored_item& a, const scored_item& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

// The n best items of `scores` in rank order, leaving out the sorted indices
// in [exclude, exclude + n_exclude) (the user's seen items), items whose score
// is NaN, and items for which `keep` (if set) returns false. O(I log n).
std::vector<scored_item> top_n(Eigen::Ref<const Eigen::VectorXf> scores, std::size_t n,
                               const index_t* exclude = nullptr,
                               std::size_t n_exclude = 0,
                               const std::function<bool(index_t)>& keep = {});

// The item indices of a ranking.
std::vector<index_t> items_of(const std::vector<scored_item>& ranked);

} // namespace shardrec::core
