// The interaction store: a sparse user x item matrix kept in both orientations
// (compressed sparse rows by user and by item), built once from events.
//
// Storage per stored interaction: user-major item index (4 B), value (4 B),
// timestamp (4 B, seconds, saturated to 32 bits), event type (1 B); item-major
// user index (4 B) and value (4 B): 21 bytes, plus 8 B per user and per item
// for the row offsets. memory_bytes() reports the exact figure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dataset.hpp"

namespace shardrec::core {

// How several events for the same (user, item) pair become one cell.
enum class merge_policy {
  last,       // the latest event (by timestamp, then input order) wins: ratings
  sum,        // values are summed: implicit counts / quantities
  max,        // the largest value wins
  confidence, // event_confidence() of each event, summed: implicit feedback
};

// An event's contribution to its cell under merge_policy::confidence: its
// type's weight times log2(1 + value), so that one event of value 1 weighs
// its type's weight and a quantity of 1,000 about ten times that:
//   view 1, click 2, cart 3, purchase 4 (value: the quantity or count;
//   negative values count as 0), cancel -4 (a cancelled purchase of the
//   same quantity takes that purchase back), rating: the value unchanged.
// Implicit ALS reads a cell r as confidence 1 + alpha r in a preference, and
// a cell of r <= 0 (everything cancelled) as no preference.
float event_confidence(event_type type, float value);

// A cell's value after its first event, and after each further one, under
// `policy` (last: the later event's value; events in time order).
inline float first_cell_value(merge_policy policy, event_type type, float value) {
  return policy == merge_policy::confidence ? event_confidence(type, value) : value;
}
inline float merge_cell_value(merge_policy policy, float cell, event_type type,
                              float value) {
  switch (policy) {
    case merge_policy::last: return value;
    case merge_policy::sum: return cell + value;
    case merge_policy::max: return cell > value ? cell : value;
    case merge_policy::confidence: return cell + event_confidence(type, value);
  }
  return value;
}

class interaction_matrix {
public:
  // A read-only view of one row (user) or one column (item).
  struct span {
    const index_t* index = nullptr; // item indices (user row) or user indices
    const float* value = nullptr;
    std::size_t size = 0;
  };

  interaction_matrix() = default;

  // Builds the matrix with the given shape. Events whose user >= n_users or
  // item >= n_items are ignored. Indices within a row are sorted ascending.
  static interaction_matrix build(std::size_t n_users, std::size_t n_items,
                                  const std::vector<event>& events, merge_policy policy);

  std::size_t n_users() const { return n_users_; }
  std::size_t n_items() const { return n_items_; }
  std::size_t nnz() const { return u_item_.size(); }

  // REQUIRES: u < n_users()
  span user_row(index_t u) const {
    auto b = u_ptr_[u], e = u_ptr_[u + 1];
    return {u_item_.data() + b, u_value_.data() + b, e - b};
  }
  // REQUIRES: i < n_items()
  span item_col(index_t i) const {
    auto b = i_ptr_[i], e = i_ptr_[i + 1];
    return {i_user_.data() + b, i_value_.data() + b, e - b};
  }
  // Timestamps and types aligned with user_row(u).
  const std::uint32_t* user_timestamps(index_t u) const {
    return u_time_.data() + u_ptr_[u];
  }
  const event_type* user_types(index_t u) const { return u_type_.data() + u_ptr_[u]; }
  std::size_t user_degree(index_t u) const { return u_ptr_[u + 1] - u_ptr_[u]; }
  std::size_t item_degree(index_t i) const { return i_ptr_[i + 1] - i_ptr_[i]; }

  // Value of cell (u, i) or nullptr. O(log degree).
  const float* find(index_t u, index_t i) const;

  // A copy whose every stored value is 1 (one interaction per cell).
  interaction_matrix binarized() const;

  double mean_value() const;

  // Bytes held by the arrays (capacity not counted).
  std::size_t memory_bytes() const;

private:
  std::size_t n_users_ = 0;
  std::size_t n_items_ = 0;
  std::vector<std::uint64_t> u_ptr_; // n_users + 1
  std::vector<index_t> u_item_;
  std::vector<float> u_value_;
  std::vector<std::uint32_t> u_time_;
  std::vector<event_type> u_type_;
  std::vector<std::uint64_t> i_ptr_; // n_items + 1
  std::vector<index_t> i_user_;
  std::vector<float> i_value_;
};

} // namespace shardrec::core
