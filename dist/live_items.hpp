// The item side of a partition between two trainings: what each event
// changes at once for the partition's owned items, served through the
// scorer's live part (partition_scorer::with_live, dist/recommend.hpp).
//
//  - Popularity: the number of users with a cell for each owned item, now:
//    what the next training's partition_popularity will count. It is the
//    "popular" component and every component's cold-start prior.
//  - Trending: each owned item's events weighted 2^(-(now - t) / half_life),
//    now = the latest event time seen (core/popularity.hpp's trending, but
//    counted per event rather than per (user, item) cell, so that it can be
//    updated in O(1)).
//  - Items newer than the model (store rows from the model's item count on):
//    a content vector from their attributes under the model's vocabulary,
//    at once, and factors folded in from their events against the model's
//    user factors: core::ials_fold_in / mf_fold_in, the item half-step's
//    column solve (core/fold_in.hpp), with the Gram of the final user
//    factors that the training kept (ials_fold_in_data::user_gram). Those
//    user rows live at the users' partitions: the partition asks for the
//    ones it lacks (take_row_requests), and an item is folded once every one
//    of its users' rows is in (add_rows). A user the model does not know has
//    no row and does not enter, as in core::ials_fold_in_item.
//
// Plain values, no actors: the shard calls it after every stored event, and
// tests drive it directly.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dist/partition_store.hpp"
#include "dist/recommend.hpp"
#include "dist/training.hpp"

namespace shardrec::dist {

class live_items {
public:
  static constexpr double default_half_life_seconds = 7 * 86400.0;

  // Starts over for the served model `m` (a null scorer: none) over the
  // live store: counts every owned item's users and events, gives every item
  // newer than the model its vector and marks it for fold-in.
  void reset(const partition_store& store, const served_models& m);

  // After store.add() stored an event's item side (the last of
  // store.item_side_events()).
  void on_item_event(const partition_store& store);
  // After store.set_item_info of owned item `row` (store.items() index).
  void on_item_info(const partition_store& store, index_t row);

  // External ids of the users whose model rows the new items' fold-in needs
  // and that were not asked for yet; marks them asked.
  std::vector<std::string> take_row_requests(const partition_store& store);
  // A user's rows in the served model: iALS (its factor count of floats)
  // and MF (factors, then the bias); `known` false: the model has no row
  // for the user (it does not enter the fold-in). Sizes that do not match
  // the model count as unknown.
  void add_rows(const partition_store& store, const std::string& user, bool known,
                const float* ials, std::size_t ials_size, const float* mf,
                std::size_t mf_size);
  // Users asked for whose rows never came (the owner did not answer, or
  // there was nobody to ask): asked again by the next take_scorer.
  void ask_again();

  // The served scorer with the current live part when anything changed
  // since the last call (folding the new items whose users' rows are all
  // in first); null when nothing changed or there is no model.
  // `all`: fold every new item whose users' rows are in, also those whose
  // cells changed by less than a tenth since their last fold (which are
  // otherwise left for later: a popular new item is not solved per event).
  std::shared_ptr<const partition_scorer> take_scorer(const partition_store& store,
                                                      bool all = false);
  // A new item's fold is behind its cells (take_scorer(store, true) folds it).
  bool folds_waiting() const;

  // The counters of a store without a model (nothing is counted then as
  // events arrive): one pass over its item-side events.
  static live_items counted(const partition_store& store);
  // The n owned items (store.items() indices) with the most users, or
  // trending, score desc then id asc; items with a score of 0 left out.
  std::vector<std::pair<index_t, double>> top(const partition_store& store, std::size_t n,
                                              bool trending) const;

  // Owned item `row`'s trending score at now(), the latest event time seen
  // here (another partition's may be later: trending scores compare after
  // scaling by 2^(-(later - now()) / half_life)).
  double trending(index_t row) const;
  std::int64_t now() const { return now_; }

private:
  struct fresh_item {           // an owned item newer than the model
    std::vector<index_t> users; // user_refs indices, first-event order
    std::vector<float> values;  // merged as the store's build merges them
    sparse_vector content;
    std::vector<float> ials, mf; // folded (empty: not yet)
    float mf_bias = 0.0f;
    std::unordered_map<index_t, std::uint32_t> at; // user -> position in users
    bool dirty = false;                            // a cell changed since the last fold
    std::size_t changes = 0;                       // cell changes since the last fold
    bool folded = false;
  };
  struct user_rows {
    bool known = false;
    std::vector<float> ials, mf;
  };
  void count(const partition_store& store, const event& e, bool after_build);
  // Popularity from the last build's columns, then count() of every event.
  void count_store(const partition_store& store);
  // This machine's clock plus a day: the latest event time trending takes.
  static std::int64_t time_limit();
  void add_cell(const partition_store& store, const event& e);
  void refold(const partition_store& store, fresh_item& it);
  // Worth a fold now: never folded, or its cells changed by a tenth since
  // the last (an item with many users is not solved again per event).
  static bool due(const fresh_item& it) {
    return !it.folded || it.changes * 10 >= it.users.size();
  }

  std::shared_ptr<const partition_scorer> model_;
  std::shared_ptr<const ials_fold_in_data> ials_;
  std::shared_ptr<const mf_fold_in_data> mf_;
  std::shared_ptr<const content_vocabulary> vocabulary_;
  // The model's items: store rows below are not new (none without a model).
  std::size_t n_model_ = std::numeric_limits<std::size_t>::max();
  std::vector<float> popularity_;
  std::unordered_set<std::uint64_t> pairs_; // (user_ref << 32 | item) since the build
  std::vector<double> trend_;               // sum of 2^((t - origin) / half_life)
  std::int64_t origin_ = 0, now_ = 0;
  std::int64_t limit_ = time_limit();
  bool any_event_ = false;
  std::vector<fresh_item> fresh_;
  std::shared_ptr<const std::vector<std::string>> ids_; // of the new items, served
  std::unordered_map<index_t, user_rows> rows_;         // user_refs index -> model rows
  std::unordered_set<index_t> asked_;
  std::vector<index_t> to_ask_;
  bool changed_ = false;
  bool counting_ = false; // counts without a model (counted())
};

} // namespace shardrec::dist
