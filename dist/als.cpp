#include "dist/als.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Cholesky>

#include "core/parallel.hpp"
#include "core/partition.hpp"

namespace shardrec::dist {

namespace {

constexpr int side_index(als_side s) {
  return static_cast<int>(s);
}
constexpr als_side other_side(als_side s) {
  return s == als_side::users ? als_side::items : als_side::users;
}
const char* side_name(als_side s) {
  return s == als_side::users ? "users" : "items";
}

error bad_message(const std::string& what) {
  return make_error(errc::bad_message, "dist_als: " + what);
}

// Owned rows of a side (their ids) and the refs of the other side's matrix.
const id_map& owned_ids(const partition_store& s, als_side side) {
  return side == als_side::users ? s.users() : s.items();
}
const id_map& ref_ids(const partition_store& s, als_side side) {
  return side == als_side::users ? s.user_refs() : s.item_refs();
}

std::vector<std::uint64_t> keys_of(const id_map& ids) {
  std::vector<std::uint64_t> keys(ids.size());
  for (std::size_t r = 0; r < ids.size(); ++r)
    keys[r] = stable_hash(ids.external(static_cast<index_t>(r)));
  return keys;
}

// Checks one-per-partition delivery of a merge's inputs; returns the input
// positions in partition order.
template <class M>
result<std::vector<std::size_t>>
by_partition(const std::vector<M>& parts, std::uint32_t partitions, const char* what) {
  std::vector<std::size_t> at(partitions, parts.size());
  for (std::size_t j = 0; j < parts.size(); ++j) {
    auto f = parts[j].from;
    if (f >= partitions)
      return bad_message(std::string(what) + ": partition " + std::to_string(f)
                         + " out of range");
    if (at[f] != parts.size())
      return bad_message(std::string(what) + ": partition " + std::to_string(f)
                         + " twice");
    at[f] = j;
  }
  for (std::uint32_t p = 0; p < partitions; ++p)
    if (at[p] == parts.size())
      return bad_message(std::string(what) + ": partition " + std::to_string(p)
                         + " missing");
  return at;
}

} // namespace

// ---- census and merges ----

als_census census(const partition_store& store) {
  SHARDREC_ASSERT(store.built());
  als_census c;
  c.from = store.partition();
  c.users = store.users().size();
  c.items = store.items().size();
  const auto& m = store.user_matrix();
  c.ratings = m.nnz();
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto row = m.user_row(u);
    for (std::size_t j = 0; j < row.size; ++j)
      c.rating_sum += row.value[j];
  }
  return c;
}

result<als_globals> merge_census(const std::vector<als_census>& parts,
                                 std::uint32_t partitions) {
  auto order = by_partition(parts, partitions, "census");
  if (!order)
    return order.err();
  als_globals g;
  g.partitions = partitions;
  std::uint64_t ratings = 0;
  double sum = 0.0;
  for (auto j : *order) {
    g.n_users += parts[j].users;
    g.n_items += parts[j].items;
    ratings += parts[j].ratings;
    sum += parts[j].rating_sum;
  }
  g.mu = ratings > 0 ? sum / static_cast<double>(ratings) : 0.0;
  return g;
}

template <class T> std::size_t payload_bytes(const factor_block<T>& b) {
  std::size_t n = b.values.size() * sizeof(T);
  for (const auto& id : b.ids)
    n += id.size();
  return n;
}
template std::size_t payload_bytes(const factor_block<float>&);
template std::size_t payload_bytes(const factor_block<double>&);

result<gram_total> sum_gram(const std::vector<gram_partial>& parts,
                            std::uint32_t partitions) {
  auto order = by_partition(parts, partitions, "gram");
  if (!order)
    return order.err();
  const auto& first = parts[(*order)[0]];
  gram_total t;
  t.side = first.side;
  t.version = first.version;
  t.k = first.k;
  t.gram.assign(static_cast<std::size_t>(t.k) * t.k, 0.0);
  for (auto j : *order) {
    const auto& p = parts[j];
    if (p.side != t.side || p.version != t.version || p.k != t.k
        || p.gram.size() != t.gram.size())
      return bad_message("gram: partition " + std::to_string(p.from)
                         + " disagrees on side, version or k");
    for (std::size_t c = 0; c < t.gram.size(); ++c)
      t.gram[c] += p.gram[c];
  }
  return t;
}

result<double> sum_loss(const std::vector<loss_partial>& parts,
                        std::uint32_t partitions) {
  auto order = by_partition(parts, partitions, "loss");
  if (!order)
    return order.err();
  double s = 0.0;
  for (auto j : *order) {
    if (parts[j].version != parts[(*order)[0]].version)
      return bad_message("loss: partitions disagree on the iteration");
    s += parts[j].loss;
  }
  return s;
}

// ---- exchange ----

template <class T>
als_exchange<T>::als_exchange(const partition_store& store, std::uint32_t width)
    : store_(store), width_(width) {
  SHARDREC_ASSERT(store.built());
  const std::uint32_t parts = store.partitions();
  for (als_side side : {als_side::users, als_side::items}) {
    const int s = side_index(side);
    // Who owns each row of the other side that our rows of `side` touch, and
    // who owns each ref of `side` (the rows we receive).
    const id_map& other_refs = ref_ids(store, other_side(side));
    std::vector<std::uint32_t> other_owner(other_refs.size());
    for (std::size_t j = 0; j < other_refs.size(); ++j)
      other_owner[j] = partition_of(other_refs.external(static_cast<index_t>(j)), parts);

    send_[s].assign(parts, {});
    std::vector<index_t> mark(parts, 0); // last row + 1 that was sent to p
    const auto& m = side == als_side::users ? store.user_matrix() : store.item_matrix();
    const std::size_t n = owned_ids(store, side).size();
    for (std::size_t r = 0; r < n; ++r) {
      auto row = side == als_side::users ? m.user_row(static_cast<index_t>(r))
                                         : m.item_col(static_cast<index_t>(r));
      for (std::size_t j = 0; j < row.size; ++j) {
        auto p = other_owner[row.index[j]];
        if (mark[p] != r + 1) {
          mark[p] = static_cast<index_t>(r + 1);
          send_[s][p].push_back(static_cast<index_t>(r));
        }
      }
    }

    const id_map& refs = ref_ids(store, side);
    ref_owner_[s].resize(refs.size());
    for (std::size_t j = 0; j < refs.size(); ++j)
      ref_owner_[s][j] = partition_of(refs.external(static_cast<index_t>(j)), parts);
    auto keys = keys_of(refs);
    auto order = key_order(keys.data(), keys.size());
    ref_pos_[s].resize(refs.size());
    for (std::size_t pos = 0; pos < order.size(); ++pos)
      ref_pos_[s][order[pos]] = static_cast<index_t>(pos);
    // Zero: a ref row no block brings stays zero (see complete()).
    received_[s].setZero(static_cast<Eigen::Index>(refs.size()), width_);
    filled_[s].assign(refs.size(), 0);
    got_from_[s].assign(parts, 0);
    last_ids_[s].assign(parts, {});
    last_at_[s].assign(parts, {});
  }
  // Owned rows of each side over the other side's key positions (needs
  // ref_pos_ of both sides, hence a second pass).
  for (als_side side : {als_side::users, als_side::items}) {
    const int s = side_index(side);
    const auto& pos = ref_pos_[side_index(other_side(side))];
    const auto& m = side == als_side::users ? store.user_matrix() : store.item_matrix();
    const std::size_t n = owned_ids(store, side).size();
    ptr_[s].assign(1, 0);
    std::vector<std::pair<index_t, float>> cells;
    for (std::size_t r = 0; r < n; ++r) {
      auto row = side == als_side::users ? m.user_row(static_cast<index_t>(r))
                                         : m.item_col(static_cast<index_t>(r));
      cells.clear();
      for (std::size_t j = 0; j < row.size; ++j)
        cells.emplace_back(pos[row.index[j]], row.value[j]);
      std::sort(cells.begin(), cells.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& c : cells) {
        cell_[s].push_back(c.first);
        value_[s].push_back(c.second);
      }
      ptr_[s].push_back(cell_[s].size());
    }
  }
}

template <class T> std::size_t als_exchange<T>::min_payload_bytes(als_side side) const {
  const id_map& ids = owned_ids(store_, side);
  std::size_t n = 0;
  for (const auto& rows : send_[side_index(side)])
    for (index_t r : rows)
      n += ids.external(r).size() + width_ * sizeof(T);
  return n;
}

template <class T>
std::vector<factor_block<T>> als_exchange<T>::make_blocks(als_side side,
                                                          std::uint32_t version,
                                                          const rows_t& owned) const {
  // Every partition a group of its own: block p holds send[p], ascending.
  std::vector<std::uint32_t> self_led(store_.partitions());
  for (std::uint32_t p = 0; p < self_led.size(); ++p)
    self_led[p] = p;
  return make_group_blocks(side, version, owned, self_led);
}

template <class T>
status als_exchange<T>::receive(const factor_block<T>& b, std::uint32_t version_expected,
                                bool group) {
  constexpr index_t skip = ~index_t{0}; // a group block's row not needed here
  const int s = side_index(b.side);
  const std::string from =
      " (block from partition " + std::to_string(b.from) + ", " + side_name(b.side) + ")";
  if ((group ? b.to >= store_.partitions() : b.to != store_.partition())
      || b.from >= store_.partitions())
    return bad_message("block addressed to partition " + std::to_string(b.to)
                       + " reached " + std::to_string(store_.partition()) + from);
  if (b.width != width_ || b.values.size() != b.ids.size() * width_)
    return bad_message("width " + std::to_string(b.width) + " or value count "
                       + std::to_string(b.values.size()) + " does not match "
                       + std::to_string(width_) + " per row" + from);
  if (b.version != version_expected)
    return bad_message("version " + std::to_string(b.version) + ", expected "
                       + std::to_string(version_expected) + from);
  if (got_from_[s][b.from])
    return bad_message("second block" + from);
  const id_map& refs = ref_ids(store_, b.side);
  // at[j]: where row j of the block goes (skip: not needed here). Rows are
  // marked as they are checked (a row twice in one block is an error too)
  // and unmarked if the block is rejected.
  std::vector<index_t> at;
  at.reserve(b.ids.size());
  auto reject = [&](const std::string& why) {
    for (index_t pos : at)
      if (pos != skip)
        filled_[s][pos] = 0;
    return bad_message(why + from);
  };
  const bool known = !b.ids.empty() && b.ids == last_ids_[s][b.from];
  if (known) {
    // Checked when first accepted: needed here (or skipped), owned by the
    // sender, no row twice.
    for (index_t pos : last_at_[s][b.from]) {
      if (pos != skip) {
        if (filled_[s][pos])
          return reject("a row received twice");
        filled_[s][pos] = 1;
      }
      at.push_back(pos);
    }
  } else {
    for (const auto& id : b.ids) {
      auto idx = refs.find(id);
      if (!idx) {
        if (!group)
          return reject("row '" + id + "' is not needed here");
        at.push_back(skip);
        continue;
      }
      if (ref_owner_[s][*idx] != b.from)
        return reject("row '" + id + "' is not owned by the sender");
      index_t pos = ref_pos_[s][*idx];
      if (filled_[s][pos])
        return reject("row '" + id + "' received twice");
      filled_[s][pos] = 1;
      at.push_back(pos);
    }
    last_ids_[s][b.from] = b.ids;
    last_at_[s][b.from] = at;
  }
  std::size_t taken = 0;
  for (std::size_t j = 0; j < at.size(); ++j)
    if (at[j] != skip) {
      std::copy_n(b.values.data() + j * width_, width_, received_[s].row(at[j]).data());
      ++taken;
    }
  got_from_[s][b.from] = 1;
  rows_in_[s] += taken;
  ++blocks_in_[s];
  return {};
}

template <class T>
std::vector<factor_block<T>>
als_exchange<T>::make_group_blocks(als_side side, std::uint32_t version,
                                   const rows_t& owned,
                                   const std::vector<std::uint32_t>& leader_of) const {
  SHARDREC_ASSERT(leader_of.size() == store_.partitions());
  const id_map& ids = owned_ids(store_, side);
  SHARDREC_ASSERT(static_cast<std::size_t>(owned.rows()) == ids.size());
  SHARDREC_ASSERT(owned.cols() == static_cast<Eigen::Index>(width_));
  const auto& send = send_[side_index(side)];
  std::vector<std::uint32_t> leaders(leader_of);
  std::sort(leaders.begin(), leaders.end());
  leaders.erase(std::unique(leaders.begin(), leaders.end()), leaders.end());
  std::vector<factor_block<T>> out;
  std::vector<char> take(ids.size());
  for (auto leader : leaders) {
    SHARDREC_ASSERT(leader < store_.partitions() && leader_of[leader] == leader);
    std::fill(take.begin(), take.end(), 0);
    for (std::uint32_t p = 0; p < send.size(); ++p)
      if (leader_of[p] == leader)
        for (index_t r : send[p])
          take[r] = 1;
    factor_block<T> b;
    b.from = store_.partition();
    b.to = leader;
    b.side = side;
    b.version = version;
    b.width = width_;
    for (std::size_t r = 0; r < take.size(); ++r)
      if (take[r]) {
        b.ids.push_back(ids.external(static_cast<index_t>(r)));
        b.values.insert(b.values.end(), owned.row(static_cast<Eigen::Index>(r)).data(),
                        owned.row(static_cast<Eigen::Index>(r)).data() + width_);
      }
    out.push_back(std::move(b));
  }
  return out;
}

template <class T> bool als_exchange<T>::complete(als_side side) const {
  // Every partition's block; not necessarily every ref row: while events
  // stream in, the partitions copy their stores for a run at slightly
  // different moments, so an event's user side may be in its user's copy
  // and not yet its item side in the item's (the owner then does not know
  // the row is needed). Such a row stays zero: its cells weigh nothing in
  // this run and count in the next. Without concurrent events every ref row
  // arrives (the equality tests hold it to that).
  const int s = side_index(side);
  return blocks_in_[s] == store_.partitions();
}

template <class T> void als_exchange<T>::reset(als_side side) {
  const int s = side_index(side);
  std::fill(filled_[s].begin(), filled_[s].end(), 0);
  std::fill(got_from_[s].begin(), got_from_[s].end(), 0);
  rows_in_[s] = blocks_in_[s] = 0;
}

template class als_exchange<float>;
template class als_exchange<double>;

// ---- implicit ALS ----

ials_partition::ials_partition(const partition_store& store, const ials_config& cfg,
                               const als_globals& globals)
    : cfg_(cfg), globals_(globals), ex_(store, static_cast<std::uint32_t>(cfg.factors)) {
  SHARDREC_ASSERT(validate(cfg).ok());
  SHARDREC_ASSERT(globals.partitions == store.partitions());
  cfg_.user_keys = cfg_.item_keys = nullptr;
  const auto k = static_cast<Eigen::Index>(cfg.factors);
  for (als_side side : {als_side::users, als_side::items}) {
    const id_map& ids = owned_ids(store, side);
    auto& own = own_[side_index(side)];
    own.resize(static_cast<Eigen::Index>(ids.size()), k);
    auto keys = keys_of(ids);
    ials_init_keyed_rows(cfg.seed, side_index(side), keys.data(), ials_init_std(cfg),
                         own);
  }
}

std::vector<ials_block> ials_partition::make_blocks(als_side fixed) const {
  return ex_.make_blocks(fixed, version_[side_index(fixed)], own_[side_index(fixed)]);
}

gram_partial ials_partition::make_gram_partial(als_side fixed) const {
  const auto& own = own_[side_index(fixed)];
  const auto k = static_cast<Eigen::Index>(cfg_.factors);
  gram_partial g;
  g.from = ex_.store().partition();
  g.side = fixed;
  g.version = version_[side_index(fixed)];
  g.k = static_cast<std::uint32_t>(k);
  g.gram.assign(static_cast<std::size_t>(k * k), 0.0);
  if (own.rows() > 0)
    Eigen::Map<Eigen::MatrixXd>(g.gram.data(), k, k) = ials_gram_partial(own);
  return g;
}

std::vector<ials_block>
ials_partition::make_group_blocks(als_side fixed,
                                  const std::vector<std::uint32_t>& leader_of) const {
  return ex_.make_group_blocks(fixed, version_[side_index(fixed)],
                               own_[side_index(fixed)], leader_of);
}

status ials_partition::receive(const ials_block& b, bool group) {
  // A block of items feeds the user solve of the same iteration; a block of
  // users feeds the item solve that follows it.
  std::uint32_t expected = b.side == als_side::items ? version_[0] : version_[1] + 1;
  return ex_.receive(b, expected, group);
}

status ials_partition::solve(als_side solving, const gram_total& gram) {
  const als_side fixed = other_side(solving);
  const auto k = static_cast<Eigen::Index>(cfg_.factors);
  if (!ex_.complete(fixed))
    return bad_message(std::string("solve ") + side_name(solving) + ": blocks of "
                       + side_name(fixed) + " missing");
  std::uint32_t expected = solving == als_side::users ? version_[0] : version_[1] + 1;
  if (gram.side != fixed || gram.version != expected || gram.k != k
      || gram.gram.size() != static_cast<std::size_t>(k * k))
    return bad_message(std::string("solve ") + side_name(solving)
                       + ": gram of the wrong side, version or size");
  // The core rounds its double Gram to float once; so do we. Symmetric, so
  // the row-major vector maps as it is.
  Eigen::Map<const Eigen::MatrixXd> g(gram.gram.data(), k, k);
  Eigen::MatrixXf gram_f = g.cast<float>();
  if (solving == als_side::items)
    last_gram_users_ = g;

  const auto& other = ex_.received(fixed);
  const std::size_t n_other =
      solving == als_side::users ? globals_.n_items : globals_.n_users;
  auto& own = own_[side_index(solving)];
  parallel_for(
      static_cast<std::size_t>(own.rows()), cfg_.threads,
      [&](std::size_t b, std::size_t e) {
        ials_row_solver solver(gram_f, other, cfg_, n_other);
        for (std::size_t r = b; r < e; ++r)
          solver.solve(ex_.row(solving, static_cast<index_t>(r)),
                       own.row(static_cast<Eigen::Index>(r)).data());
      },
      32);
  ex_.reset(fixed);
  ++version_[side_index(solving)];
  return {};
}

result<ials_fold_in_data>
ials_partition::fold_in_data(const gram_total& item_gram) const {
  const auto k = static_cast<Eigen::Index>(cfg_.factors);
  if (!ex_.complete(als_side::items))
    return bad_message("fold-in data: blocks of items missing");
  if (item_gram.side != als_side::items || item_gram.version != version_[0]
      || item_gram.k != k || item_gram.gram.size() != static_cast<std::size_t>(k * k))
    return bad_message("fold-in data: gram of the wrong side, version or size");
  ials_fold_in_data d;
  d.cfg = cfg_;
  d.cfg.user_keys = d.cfg.item_keys = nullptr;
  d.n_items = globals_.n_items;
  d.items = ex_.received(als_side::items);
  // Rounded to float once, as solve() does.
  Eigen::Map<const Eigen::MatrixXd> g(item_gram.gram.data(), k, k);
  d.gram = g.cast<float>();
  d.ref_row = ex_.ref_positions(als_side::items);
  d.n_users = globals_.n_users;
  // The Gram the last item half-step solved with (that of the final user
  // factors), rounded to float as solve() does.
  if (last_gram_users_.rows() == k && last_gram_users_.cols() == k)
    d.user_gram = last_gram_users_.cast<float>();
  return d;
}

result<mf_fold_in_data> mf_partition::fold_in_data() const {
  if (!ex_.complete(als_side::items))
    return bad_message("fold-in data: blocks of items missing");
  mf_fold_in_data d;
  d.cfg = cfg_;
  d.cfg.user_keys = d.cfg.item_keys = nullptr;
  d.mu = globals_.mu;
  d.items = ex_.received(als_side::items);
  d.ref_row = ex_.ref_positions(als_side::items);
  return d;
}

loss_partial ials_partition::make_loss_partial() const {
  SHARDREC_ASSERT(version_[0] == version_[1] && version_[1] > 0);
  const auto& store = ex_.store();
  const auto& users = own_[0];
  const auto& items = own_[1];
  const auto& ref_users = ex_.received(als_side::users);
  // Owned items: y^T G_U y counts every cell of the column as unobserved
  // (the core's trace(G_U G_I), split by item), then the observed cells'
  // correction and the regulariser; owned users: their regulariser.
  double loss = 0.0;
  for (index_t i = 0; i < ex_.rows(als_side::items); ++i) {
    Eigen::VectorXd y = items.row(i).cast<double>().transpose();
    loss += y.dot(last_gram_users_ * y);
    auto col = ex_.row(als_side::items, i);
    for (std::size_t j = 0; j < col.size; ++j) {
      double r = cfg_.binary ? 1.0 : col.value[j];
      if (r <= 0)
        continue;
      double s = ref_users.row(col.index[j]).cast<double>().dot(y);
      double c = 1 + cfg_.alpha * r;
      loss += c * (1 - s) * (1 - s) - s * s;
    }
    loss += ials_regularization(col, globals_.n_users, cfg_) * y.squaredNorm();
  }
  for (index_t u = 0; u < ex_.rows(als_side::users); ++u)
    loss += ials_regularization(ex_.row(als_side::users, u), globals_.n_items, cfg_)
            * users.row(u).cast<double>().squaredNorm();
  return {store.partition(), version_[1], loss};
}

// ---- explicit MF, ALS ----

status validate_dist(const mf_config& cfg) {
  return validate(cfg);
}

result<gibbs_priors> draw_gibbs_priors(const std::vector<gibbs_stats>& parts,
                                       std::uint32_t partitions, const mf_config& cfg,
                                       int sweep) {
  auto at = by_partition(parts, partitions, "gibbs_stats");
  if (!at)
    return at.err();
  const auto d = static_cast<Eigen::Index>(cfg.factors + 1);
  const auto width = static_cast<std::size_t>(d);
  auto well_formed = [&](const mf_row_moments& m) {
    return m.n == 0 ? m.sum.empty() && m.outer.empty()
                    : m.sum.size() == width && m.outer.size() == width * width;
  };
  std::uint64_t cells = 0;
  exact_sum sse;
  mf_row_moments users, items;
  for (const auto& p : parts) {
    if (sweep < 1 || p.version != static_cast<std::uint32_t>(sweep - 1))
      return bad_message("gibbs_stats: partition " + std::to_string(p.from) + " sent version "
                         + std::to_string(p.version) + " for sweep " + std::to_string(sweep));
    if (!well_formed(p.users) || !well_formed(p.items))
      return bad_message("gibbs_stats: partition " + std::to_string(p.from)
                         + " sent moments of another width than " + std::to_string(width));
    cells += p.cells;
    sse.add(p.sse);
    merge(users, p.users);
    merge(items, p.items);
  }
  if (!(sse.value() >= 0.0) || !std::isfinite(sse.value()))
    return bad_message("gibbs_stats: the squared error summed to " +
                       std::to_string(sse.value()) + " (a partition sent a bad one, or the "
                       "chain diverged)");
  gibbs_priors g;
  g.sweep = static_cast<std::uint32_t>(sweep);
  mf_sweep_stream stream(cfg.seed, sweep);
  const double alpha = stream.alpha(static_cast<double>(cells), sse.value());
  stream.hyper(users, d, g.users);
  stream.hyper(items, d, g.items);
  g.users.alpha = g.items.alpha = alpha;
  return g;
}

mf_partition::mf_partition(const partition_store& store, const mf_config& cfg,
                           const als_globals& globals)
    : cfg_(cfg), globals_(globals),
      ex_(store, static_cast<std::uint32_t>(cfg.factors + 1)) {
  SHARDREC_ASSERT(validate_dist(cfg).ok());
  SHARDREC_ASSERT(globals.partitions == store.partitions());
  cfg_.user_keys = cfg_.item_keys = nullptr;
  for (als_side side : {als_side::users, als_side::items}) {
    const id_map& ids = owned_ids(store, side);
    auto& own = own_[side_index(side)];
    own.resize(static_cast<Eigen::Index>(ids.size()),
               static_cast<Eigen::Index>(cfg.factors + 1));
    keys_[side_index(side)] = keys_of(ids);
    mf_init_keyed_rows(cfg, side_index(side), keys_[side_index(side)].data(), own);
    if (cfg.solver == mf_solver::gibbs)
      sum_[side_index(side)] = mf_rows::Zero(own.rows(), own.cols());
  }
}

std::vector<mf_block> mf_partition::make_blocks(als_side fixed) const {
  return ex_.make_blocks(fixed, version_[side_index(fixed)], own_[side_index(fixed)]);
}

std::vector<mf_block>
mf_partition::make_group_blocks(als_side fixed,
                                    const std::vector<std::uint32_t>& leader_of) const {
  return ex_.make_group_blocks(fixed, version_[side_index(fixed)],
                               own_[side_index(fixed)], leader_of);
}

status mf_partition::receive(const mf_block& b, bool group) {
  std::uint32_t expected = b.side == als_side::items ? version_[0] : version_[1] + 1;
  return ex_.receive(b, expected, group);
}

bool mf_partition::next_sweep_samples() const {
  return cfg_.solver == mf_solver::gibbs
         && static_cast<int>(version_[0]) + 1 > cfg_.warm_start;
}

status mf_partition::solve(als_side solving, const gibbs_priors* priors) {
  const als_side fixed = other_side(solving);
  if (!ex_.complete(fixed))
    return bad_message(std::string("solve ") + side_name(solving) + ": blocks of "
                       + side_name(fixed) + " missing");
  const int sweep = static_cast<int>(version_[side_index(solving)]) + 1;
  const bool sample = cfg_.solver == mf_solver::gibbs && sweep > cfg_.warm_start;
  const auto d = static_cast<Eigen::Index>(cfg_.factors + 1);
  if (sample) {
    if (solving == als_side::users) {
      auto sized = [&](const mf_gibbs_prior& p) {
        return p.lambda.rows() == d && p.lambda.cols() == d && p.lambda_mu.size() == d;
      };
      if (!priors || priors->sweep != static_cast<std::uint32_t>(sweep)
          || !sized(priors->users) || !sized(priors->items))
        return bad_message("solve users: sweep " + std::to_string(sweep)
                           + " needs its Gibbs priors ("
                           + (priors ? "got sweep " + std::to_string(priors->sweep)
                                           + " or rows of another width"
                                     : std::string("none given"))
                           + ")");
      // The row solves need a positive noise precision and a positive
      // definite Lambda (then Lambda + alpha Z^T Z is one).
      for (const auto* p : {&priors->users, &priors->items})
        if (!(p->alpha > 0.0) || !std::isfinite(p->alpha) || !p->lambda.allFinite()
            || !p->lambda_mu.allFinite()
            || Eigen::LLT<Eigen::MatrixXd>(p->lambda).info() != Eigen::Success)
          return bad_message("solve users: sweep " + std::to_string(sweep)
                             + ": Gibbs priors with a noise precision that is not positive "
                               "or a precision matrix that is not positive definite");
      priors_ = *priors;
    } else if (priors_.sweep != static_cast<std::uint32_t>(sweep)) {
      return bad_message("solve items: no Gibbs priors for sweep " + std::to_string(sweep));
    }
  }
  const auto& other = ex_.received(fixed);
  auto& own = own_[side_index(solving)];
  const auto& keys = keys_[side_index(solving)];
  parallel_for(
      static_cast<std::size_t>(own.rows()), cfg_.threads,
      [&](std::size_t b, std::size_t e) {
        if (sample) {
          mf_gibbs_row_solver solver(
              cfg_, globals_.mu, solving == als_side::users ? priors_.users : priors_.items,
              sweep, side_index(solving));
          for (std::size_t r = b; r < e; ++r)
            solver.solve(ex_.row(solving, static_cast<index_t>(r)), other, keys[r],
                         own.row(static_cast<Eigen::Index>(r)).data());
        } else {
          mf_als_row_solver solver(cfg_, globals_.mu);
          for (std::size_t r = b; r < e; ++r)
            solver.solve(ex_.row(solving, static_cast<index_t>(r)), other,
                         own.row(static_cast<Eigen::Index>(r)).data());
        }
      },
      32);
  ex_.reset(fixed);
  ++version_[side_index(solving)];
  if (cfg_.solver == mf_solver::gibbs && solving == als_side::items) {
    // The posterior mean, as the core takes it: the samples after burn-in.
    if (sweep > cfg_.burn_in) {
      sum_[0] += own_[0];
      sum_[1] += own_[1];
      ++kept_;
    }
    if (sweep == cfg_.iterations && kept_ > 0) {
      own_[0] = sum_[0] / static_cast<double>(kept_);
      own_[1] = sum_[1] / static_cast<double>(kept_);
    }
  }
  return {};
}

result<gibbs_stats> mf_partition::make_gibbs_stats() const {
  if (!ex_.complete(als_side::items))
    return bad_message("gibbs stats: blocks of items missing");
  const auto k = static_cast<Eigen::Index>(cfg_.factors);
  const auto d = k + 1;
  gibbs_stats g;
  g.from = ex_.store().partition();
  g.version = version_[0];
  const auto& items = ex_.received(als_side::items);
  for (index_t u = 0; u < ex_.rows(als_side::users); ++u) {
    auto row = ex_.row(als_side::users, u);
    if (row.size == 0)
      continue;
    const double* pu = own_[0].row(static_cast<Eigen::Index>(u)).data();
    for (std::size_t j = 0; j < row.size; ++j)
      g.sse.add(mf_squared_residual(
          row.value[j], pu, items.row(static_cast<Eigen::Index>(row.index[j])).data(), k,
          globals_.mu));
    g.cells += row.size;
    add_row(g.users, pu, d);
  }
  for (index_t i = 0; i < ex_.rows(als_side::items); ++i)
    if (ex_.row(als_side::items, i).size > 0)
      add_row(g.items, own_[1].row(static_cast<Eigen::Index>(i)).data(), d);
  return g;
}

loss_partial mf_partition::make_loss_partial() const {
  SHARDREC_ASSERT(version_[0] == version_[1] && version_[1] > 0);
  const auto& store = ex_.store();
  const auto k = static_cast<Eigen::Index>(cfg_.factors);
  const auto& ref_users = ex_.received(als_side::users);
  const double mu = globals_.mu;
  // Squared errors of the owned items' cells (each cell counted once, at its
  // item's partition) plus reg * degree * |x|^2 of every owned row, bias
  // included, as in mf.hpp.
  double sse = 0.0, penalty = 0.0;
  for (index_t i = 0; i < ex_.rows(als_side::items); ++i) {
    auto qi = own_[1].row(i);
    auto col = ex_.row(als_side::items, i);
    for (std::size_t j = 0; j < col.size; ++j) {
      auto pu = ref_users.row(col.index[j]);
      double pred = mu + pu[k] + qi[k] + pu.head(k).dot(qi.head(k));
      double r = col.value[j] - pred;
      sse += r * r;
    }
    penalty += static_cast<double>(col.size) * qi.squaredNorm();
  }
  for (index_t u = 0; u < ex_.rows(als_side::users); ++u)
    penalty += static_cast<double>(ex_.row(als_side::users, u).size)
               * own_[0].row(u).squaredNorm();
  return {store.partition(), version_[1], sse + cfg_.reg * penalty};
}

} // namespace shardrec::dist
