// One partition's share of the data, as a shard holds it: the users it owns
// with their complete rows and the items it owns with their complete columns.
// Every interaction is stored at its user's partition and at its item's
// partition (core::partition_of on the external ids).
//
// Indices are local to the store: owned users and owned items in order of
// first appearance here; item_refs() are the items that owned users touched,
// user_refs() the users who touched owned items. Plain values, no actors, so
// the same code runs in a shard and in the single-process simulations that
// check the distributed algorithms against the core.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dataset.hpp"
#include "core/error.hpp"
#include "core/interactions.hpp"

#include <unordered_map>

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// An event with external ids, as it travels between processes.
struct raw_event {
  std::string user;
  std::string item;
  float value = 1.0f;
  event_type type = event_type::rating;
  std::int64_t timestamp = 0;
  std::string device;
  std::string location;
};

// Checks what any receiver must check: non-empty ids, finite value.
status validate(const raw_event& e);

// A partition_store as plain values (partition_store::image / from_image),
// for a snapshot: everything the store holds except what a build computes
// from it. The matrices are not stored: they are rebuilt from the events
// that existed at the last build (the first built_user_events / built_item_events
// events, in the shape of that build), and the recent items from the events
// after it, which gives the same matrices and lists bit for bit.
struct store_image {
  std::uint32_t partition = 0;
  std::uint32_t partitions = 1;
  // The id maps' external ids in index order. devices and locations start
  // with "" (unknown).
  std::vector<std::string> users, item_refs, items, user_refs, devices, locations;
  std::vector<event> user_side; // user = users index, item = item_refs index
  std::vector<event> item_side; // user = user_refs index, item = items index
  std::vector<item_info> item_meta;
  bool built = false;      // built() at the time of the image
  bool built_once = false; // build() was called at least once
  merge_policy built_policy = merge_policy::sum;
  bool binarized = false; // the matrices are binarized() ones
  // The last build (all 0 before the first): the shapes of the two matrices
  // and how many events of each side they were built from.
  std::uint64_t built_users = 0, built_item_refs = 0, built_user_events = 0;
  std::uint64_t built_user_refs = 0, built_items = 0, built_item_events = 0;
};

class partition_store {
public:
  // REQUIRES: partition < partitions
  partition_store(std::uint32_t partition, std::uint32_t partitions);

  std::uint32_t partition() const { return partition_; }
  std::uint32_t partitions() const { return partitions_; }
  bool owns_user(std::string_view user) const;
  bool owns_item(std::string_view item) const;

  // Appends e to the user side if this partition owns e.user and to the item
  // side if it owns e.item (possibly both, possibly neither). Invalidates the
  // matrices until the next build(). Returns an error for an invalid event
  // (nothing stored).
  status add(const raw_event& e);

  // Item side information for an owned item (ignored for other items).
  void set_item_info(const std::string& item, item_info info);

  // Freezes the events appended so far into the two matrices.
  void build(merge_policy policy);

  // A copy whose matrices hold 1 in every cell (one interaction per cell),
  // for the ranking algorithms. REQUIRES: built()
  partition_store binarized() const;
  bool built() const { return built_; }
  // Grows with every add() and set_item_info(): equal counts, same content.
  std::uint64_t changes() const { return changes_; }
  // True when built() with `policy` and nothing was added since: build(policy)
  // would give the same matrices.
  bool built_with(merge_policy policy) const { return built_ && built_policy_ == policy; }

  const id_map& users() const { return users_; }
  const id_map& item_refs() const { return item_refs_; }
  const id_map& items() const { return items_; }
  const id_map& user_refs() const { return user_refs_; }
  // owned users x item_refs. REQUIRES: built()
  const interaction_matrix& user_matrix() const { return user_matrix_; }
  // user_refs x owned items. REQUIRES: built()
  const interaction_matrix& item_matrix() const { return item_matrix_; }
  // Side information of owned items, indexed like items() (may be shorter).
  const std::vector<item_info>& item_meta() const { return item_meta_; }

  // The items an owned user touched since the last build() that the user's
  // row of user_matrix() does not hold yet (item_refs indices, in arrival
  // order, each once, with its latest value); empty for a user with none.
  // Lets a query see a new event at once, before the next training.
  struct recent_item {
    index_t item_ref;
    float value;
    event_type type; // of the latest event
  };
  const std::vector<recent_item>& recent_items(index_t user) const;
  // The cells of the user's row of the last build that events since have
  // changed: their values as the next build would merge them (merge policy
  // of the last build: last replaces, sum adds); empty for a user with none.
  const std::vector<recent_item>& row_updates(index_t user) const;

  // True when owned user `user` has an event of `item` (in the last
  // build's row or since).
  bool has_pair(std::string_view user, std::string_view item) const;

  std::size_t user_events() const { return user_side_.size(); }
  // Events stored for owned user `user` (0 for any other index).
  std::uint32_t events_of_user(index_t user) const {
    return user < user_event_count_.size() ? user_event_count_[user] : 0;
  }
  std::size_t item_events() const { return item_side_.size(); }
  const std::vector<event>& user_side_events() const { return user_side_; }
  // Item-side events (user = user_refs() index, item = items() index), in
  // arrival order; the first built_item_events() are in item_matrix().
  const std::vector<event>& item_side_events() const { return item_side_; }
  std::size_t built_item_events() const { return built_item_events_; }
  // The merge policy of the last build (sum before the first).
  merge_policy built_policy() const { return built_policy_; }

  // Everything needed to make an indistinguishable store (same ids, events,
  // item information, matrices, recent items, built() / built_with()).
  store_image image() const;
  // The store of an image. invalid_argument naming the problem for an image
  // no store has: partition >= partitions, a duplicate id, an owned user or
  // item of another partition, an index out of range, an invalid event, build
  // counts beyond the ids or events (or, when built, other than all of them).
  static result<partition_store> from_image(store_image image);

private:
  void note_recent(index_t user, index_t item_ref, float value, event_type type);

  std::uint32_t partition_;
  std::uint32_t partitions_;
  id_map users_, item_refs_, items_, user_refs_;
  std::vector<event> user_side_; // user = users_ index, item = item_refs_ index
  std::vector<event> item_side_; // user = user_refs_ index, item = items_ index
  std::vector<std::uint32_t> user_event_count_; // by users_ index
  std::vector<item_info> item_meta_;
  id_map devices_, locations_;
  interaction_matrix user_matrix_, item_matrix_;
  // Per owned user (users_ index), the items touched since the last build
  // that are not in the user's matrix row; cleared by build().
  std::unordered_map<index_t, std::vector<recent_item>> recent_;
  std::unordered_map<index_t, std::vector<recent_item>> updated_; // row_updates()
  bool built_ = false;
  std::uint64_t changes_ = 0;
  bool built_once_ = false;
  merge_policy built_policy_ = merge_policy::sum;
  bool binarized_ = false; // matrices from binarized(), until the next build
  // Events of each side the last build took (the first ones).
  std::size_t built_user_events_ = 0, built_item_events_ = 0;
};

} // namespace shardrec::dist
