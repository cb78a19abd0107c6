#include "dist/live_items.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <tuple>

#include "core/fold_in.hpp"
#include "core/partition.hpp"

namespace shardrec::dist {

namespace {

constexpr double half_life = live_items::default_half_life_seconds;

std::uint64_t pair_key(index_t user_ref, index_t item) {
  return (std::uint64_t{user_ref} << 32) | item;
}

} // namespace

void live_items::reset(const partition_store& store, const served_models& m) {
  *this = live_items{};
  changed_ = true;
  model_ = m.scorer;
  // Without a model nothing is new: only the counters are kept.
  n_model_ =
      model_ ? model_->models().items.size() : std::numeric_limits<std::size_t>::max();
  if (model_) {
    ials_ = m.users.ials_fold;
    mf_ = m.users.mf_fold;
    vocabulary_ = m.users.content.vocabulary;
  }
  count_store(store);
  for (const auto& e : store.item_side_events())
    add_cell(store, e);
  for (std::size_t r = n_model_; r < store.items().size(); ++r)
    on_item_info(store, static_cast<index_t>(r));
}

void live_items::count_store(const partition_store& store) {
  const auto& mat = store.item_matrix();
  popularity_.assign(store.items().size(), 0.0f);
  trend_.assign(store.items().size(), 0.0);
  for (std::size_t r = 0; r < popularity_.size() && r < mat.n_items(); ++r)
    popularity_[r] = static_cast<float>(mat.item_degree(static_cast<index_t>(r)));
  const auto& events = store.item_side_events();
  for (std::size_t k = 0; k < events.size(); ++k)
    count(store, events[k], k >= store.built_item_events());
}

std::int64_t live_items::time_limit() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count()
         + 86400;
}

void live_items::count(const partition_store& store, const event& e, bool after_build) {
  if (!model_ && !counting_)
    return; // nothing to serve them with: reset() counts them all
  if (e.item >= popularity_.size()) {
    popularity_.resize(std::size_t{e.item} + 1, 0.0f);
    trend_.resize(std::size_t{e.item} + 1, 0.0);
  }
  if (after_build) {
    const auto& mat = store.item_matrix();
    const bool built_pair =
        e.user < mat.n_users() && e.item < mat.n_items() && mat.find(e.user, e.item);
    if (!built_pair && pairs_.insert(pair_key(e.user, e.item)).second)
      popularity_[e.item] += 1.0f;
  }
  // Trending: weights relative to a moving origin, rebased before they grow
  // past 2^32. A time more than a day past this machine's clock (say,
  // milliseconds sent as seconds) counts as that limit, so that one bad
  // event cannot zero every other item's weight; differences in double.
  // The clock is read again only when an event goes past the limit read
  // last, not per event.
  if (e.timestamp > limit_)
    limit_ = time_limit();
  const std::int64_t t = std::min<std::int64_t>(e.timestamp, limit_);
  if (!any_event_) {
    origin_ = now_ = t;
    any_event_ = true;
  }
  now_ = std::max(now_, t);
  const double ahead =
      (static_cast<double>(now_) - static_cast<double>(origin_)) / half_life;
  if (ahead > 32.0) {
    const double f = std::exp2(-ahead);
    for (auto& w : trend_)
      w *= f;
    origin_ = now_;
  }
  trend_[e.item] +=
      std::exp2((static_cast<double>(t) - static_cast<double>(origin_)) / half_life);
}

live_items live_items::counted(const partition_store& store) {
  live_items out;
  out.counting_ = true;
  out.count_store(store);
  return out;
}

std::vector<std::pair<index_t, double>>
live_items::top(const partition_store& store, std::size_t n, bool trending) const {
  std::vector<std::pair<index_t, double>> all;
  for (std::size_t r = 0; r < popularity_.size(); ++r) {
    const double s = trending ? this->trending(static_cast<index_t>(r))
                              : static_cast<double>(popularity_[r]);
    if (s > 0)
      all.emplace_back(static_cast<index_t>(r), s);
  }
  auto before = [&](const auto& a, const auto& b) {
    return a.second != b.second
               ? a.second > b.second
               : store.items().external(a.first) < store.items().external(b.first);
  };
  const auto keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep),
                    all.end(), before);
  all.resize(keep);
  return all;
}

bool live_items::folds_waiting() const {
  return (ials_ || mf_)
         && std::any_of(fresh_.begin(), fresh_.end(),
                        [](const fresh_item& it) { return it.dirty; });
}

double live_items::trending(index_t row) const {
  if (row >= trend_.size())
    return 0.0;
  return trend_[row]
         * std::exp2(-(static_cast<double>(now_) - static_cast<double>(origin_))
                     / half_life);
}

void live_items::add_cell(const partition_store& store, const event& e) {
  if (e.item < n_model_)
    return;
  if (fresh_.size() <= e.item - n_model_)
    fresh_.resize(e.item - n_model_ + 1);
  auto& it = fresh_[e.item - n_model_];
  auto [at, added] = it.at.emplace(e.user, static_cast<std::uint32_t>(it.users.size()));
  if (added) {
    it.users.push_back(e.user);
    it.values.push_back(first_cell_value(store.built_policy(), e.type, e.value));
    if ((ials_ || mf_) && !rows_.count(e.user) && asked_.insert(e.user).second)
      to_ask_.push_back(e.user);
  } else {
    auto& v = it.values[at->second];
    v = merge_cell_value(store.built_policy(), v, e.type, e.value);
  }
  it.dirty = true;
  ++it.changes;
}

void live_items::on_item_event(const partition_store& store) {
  const auto& events = store.item_side_events();
  if (events.empty())
    return;
  count(store, events.back(), true);
  add_cell(store, events.back());
  changed_ = true;
}

void live_items::on_item_info(const partition_store& store, index_t row) {
  if (!model_)
    return;
  if (row >= popularity_.size()) {
    popularity_.resize(std::size_t{row} + 1, 0.0f);
    trend_.resize(std::size_t{row} + 1, 0.0);
  }
  changed_ = true;
  if (row < n_model_)
    return;
  if (fresh_.size() <= row - n_model_)
    fresh_.resize(row - n_model_ + 1);
  if (vocabulary_)
    fresh_[row - n_model_].content =
        item_vector(store, row, *vocabulary_, content_config{});
}

std::vector<std::string> live_items::take_row_requests(const partition_store& store) {
  std::vector<std::string> out;
  out.reserve(to_ask_.size());
  for (auto u : to_ask_)
    out.push_back(store.user_refs().external(u));
  to_ask_.clear();
  return out;
}

void live_items::add_rows(const partition_store& store, const std::string& user,
                          bool known, const float* ials, std::size_t ials_size,
                          const float* mf, std::size_t mf_size) {
  auto u = store.user_refs().find(user);
  if (!u)
    return;
  asked_.erase(*u);
  user_rows r;
  // Rows of other sizes than this model's count as unknown.
  const bool ials_ok = !ials_ || (ials && ials_size == ials_->cfg.factors);
  const bool mf_ok = !mf_ || (mf && mf_size == mf_->cfg.factors + 1);
  r.known = known && ials_ok && mf_ok;
  if (r.known && ials_)
    r.ials.assign(ials, ials + ials_size);
  if (r.known && mf_)
    r.mf.assign(mf, mf + mf_size);
  rows_[*u] = std::move(r);
  changed_ = true;
}

void live_items::ask_again() {
  asked_.clear();
  to_ask_.clear();
  changed_ = true;
}

void live_items::refold(const partition_store& store, fresh_item& it) {
  // Every user's rows in (or known to be absent), else later.
  bool complete = true;
  for (auto u : it.users)
    if (!rows_.count(u)) {
      complete = false;
      if (asked_.insert(u).second)
        to_ask_.push_back(u);
    }
  if (!complete)
    return;
  // The users the model has a row for, in the trainer's key order (stable
  // hash of the id, then the id), as the item half-step sums a column.
  struct cell {
    std::uint64_t key;
    std::string_view id;
    const user_rows* rows;
    float value;
  };
  std::vector<cell> cells;
  for (std::size_t k = 0; k < it.users.size(); ++k) {
    const auto& r = rows_.at(it.users[k]);
    if (!r.known)
      continue;
    auto id = store.user_refs().external(it.users[k]);
    cells.push_back({stable_hash(id), id, &r, it.values[k]});
  }
  std::sort(cells.begin(), cells.end(), [](const cell& a, const cell& b) {
    return std::tie(a.key, a.id) < std::tie(b.key, b.id);
  });
  if (ials_ && ials_->user_gram.size() > 0) {
    const auto k = static_cast<Eigen::Index>(ials_->cfg.factors);
    ials_matrix other(static_cast<Eigen::Index>(cells.size()), k);
    core::fold_in_cells col;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const auto& row = cells[c].rows->ials;
      for (Eigen::Index j = 0; j < k; ++j)
        other(static_cast<Eigen::Index>(c), j) = row.size() == static_cast<std::size_t>(k)
                                                     ? row[static_cast<std::size_t>(j)]
                                                     : 0.0f;
      col.emplace_back(static_cast<index_t>(c), cells[c].value);
    }
    it.ials = core::ials_fold_in(other, ials_->user_gram, col, ials_->cfg, nullptr,
                                 nullptr, ials_->n_users);
  }
  if (mf_) {
    const auto k = static_cast<Eigen::Index>(mf_->cfg.factors);
    mf_rows other(static_cast<Eigen::Index>(cells.size()), k + 1);
    core::fold_in_cells col;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const auto& row = cells[c].rows->mf;
      if (row.size() != static_cast<std::size_t>(k + 1))
        continue;
      const auto r = static_cast<Eigen::Index>(col.size());
      for (Eigen::Index j = 0; j <= k; ++j)
        other(r, j) = row[static_cast<std::size_t>(j)];
      col.emplace_back(static_cast<index_t>(r), cells[c].value);
    }
    other.conservativeResize(static_cast<Eigen::Index>(col.size()), k + 1);
    const auto x = core::mf_fold_in(other, mf_->mu, col, mf_->cfg, nullptr);
    it.mf.assign(static_cast<std::size_t>(k), 0.0f);
    for (Eigen::Index j = 0; j < k; ++j)
      it.mf[static_cast<std::size_t>(j)] =
          static_cast<float>(x[static_cast<std::size_t>(j)]);
    it.mf_bias = static_cast<float>(x[static_cast<std::size_t>(k)]);
  }
  it.dirty = false;
  it.folded = true;
  it.changes = 0;
}

std::shared_ptr<const partition_scorer>
live_items::take_scorer(const partition_store& store, bool all) {
  if (all && folds_waiting())
    changed_ = true;
  if (!changed_ || !model_)
    return nullptr;
  changed_ = false;
  const auto n = store.items().size();
  if (fresh_.size() < n - std::min(n, n_model_))
    fresh_.resize(n - n_model_);
  for (auto& it : fresh_)
    if (it.dirty && (all || due(it)))
      refold(store, it);
  const auto& m = model_->models();
  const bool with_bias = model_->serves(blend_kind::mf);
  const bool with_content = model_->serves(blend_kind::content);
  auto rows = std::make_shared<live_item_rows>();
  rows->popularity = popularity_;
  rows->popularity.resize(n, 0.0f);
  // The same list object while no item is added (partition_scorer::same_ids).
  if (!ids_ || ids_->size() != n - std::min(n, n_model_)) {
    auto ids = std::make_shared<std::vector<std::string>>();
    for (std::size_t r = n_model_; r < n; ++r)
      ids->push_back(store.items().external(static_cast<index_t>(r)));
    ids_ = std::move(ids);
  }
  rows->items = ids_;
  for (std::size_t r = n_model_; r < n; ++r) {
    const auto& it = fresh_[r - n_model_];
    for (std::size_t j = 0; j < m.ials_factors; ++j)
      rows->ials_item.push_back(it.ials.size() == m.ials_factors ? it.ials[j] : 0.0f);
    const bool mf_folded = it.mf.size() == m.mf_factors && !it.mf.empty();
    for (std::size_t j = 0; j < m.mf_factors; ++j)
      rows->mf_item.push_back(mf_folded ? it.mf[j] : 0.0f);
    if (with_bias)
      rows->mf_item_bias.push_back(mf_folded ? it.mf_bias : 0.0f);
    if (with_content)
      rows->content.push_back(it.content);
  }
  auto s = model_->with_live(std::move(rows));
  if (!s)
    return nullptr;
  return std::make_shared<const partition_scorer>(std::move(*s));
}

} // namespace shardrec::dist
