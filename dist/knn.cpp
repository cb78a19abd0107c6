#include "dist/knn.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/partition.hpp"

namespace shardrec::dist {

namespace {

constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();

std::size_t id_bytes(const std::vector<std::string>& ids) {
  std::size_t n = 0;
  for (const auto& s : ids)
    n += s.size();
  return n;
}

// The matrix whose rows (side item) or columns (side user) are p's raters.
const interaction_matrix& rater_matrix(const partition_store& s, knn_side side) {
  return side == knn_side::item ? s.user_matrix() : s.item_matrix();
}
// The entities the rater matrix's cells name.
const id_map& entity_ids_of_rater_matrix(const partition_store& s, knn_side side) {
  return side == knn_side::item ? s.item_refs() : s.user_refs();
}

// Biases aligned with the rater matrix (the shape make_pair_context checks).
biases rater_matrix_biases(const partition_store& s, knn_side side,
                           const partition_biases& b) {
  biases out;
  out.mu = b.mu;
  if (side == knn_side::item) {
    out.user = b.user;
    out.item = b.item_ref;
  } else {
    out.user = b.user_ref;
    out.item = b.item;
  }
  out.user.resize(rater_matrix(s, side).n_users(), 0.0f);
  out.item.resize(rater_matrix(s, side).n_items(), 0.0f);
  return out;
}

template <class Block>
std::vector<Block> blocks_for(std::uint32_t from, std::uint32_t P) {
  std::vector<Block> out(P);
  for (std::uint32_t d = 0; d < P; ++d) {
    out[d].from = from;
    out[d].to = d;
  }
  return out;
}

} // namespace

// ---- Phase S0 ---------------------------------------------------------------

result<scale_partial> local_scale(const partition_store& s, knn_side side,
                                  const knn_config& cfg, const partition_biases* b) {
  SHARDREC_ASSERT(s.built());
  // x as make_pair_context forms it (knn.cpp transformed()), so the max
  // over all partitions is the max core sees.
  const auto& m = rater_matrix(s, side);
  scale_partial out;
  out.partition = s.partition();
  out.raters = side == knn_side::item ? m.n_users() : m.n_items();
  if (cfg.similarity == similarity_kind::pearson_baseline && !b)
    return make_error(errc::invalid_argument,
                      "local_scale: pearson_baseline needs biases");
  biases bb;
  if (b)
    bb = rater_matrix_biases(s, side, *b);
  for (index_t r = 0; r < out.raters; ++r) {
    auto cells = side == knn_side::item ? m.user_row(r) : m.item_col(r);
    double mean = 0;
    if (cfg.similarity == similarity_kind::adjusted_cosine && cells.size > 0) {
      double sum = 0;
      for (std::size_t k = 0; k < cells.size; ++k)
        sum += cells.value[k];
      mean = static_cast<float>(sum / static_cast<double>(cells.size));
    }
    for (std::size_t k = 0; k < cells.size; ++k) {
      double x = cells.value[k];
      if (cfg.similarity == similarity_kind::adjusted_cosine) {
        x -= mean;
      } else if (cfg.similarity == similarity_kind::pearson_baseline) {
        const index_t e = cells.index[k];
        x -= side == knn_side::item ? bb.predict(r, e) : bb.predict(e, r);
      }
      if (!std::isfinite(x))
        return make_error(errc::invalid_argument,
                          "local_scale: non-finite value at partition "
                              + std::to_string(s.partition()));
      out.max_abs = std::max(out.max_abs, std::abs(x));
    }
  }
  return out;
}

double global_scale(const std::vector<scale_partial>& parts) {
  double max_abs = 0;
  std::uint64_t raters = 0;
  for (const auto& p : parts) {
    max_abs = std::max(max_abs, p.max_abs);
    raters += p.raters;
  }
  return pair_scale(max_abs, raters);
}

result<pair_context> make_local_context(const partition_store& s, knn_side side,
                                        const knn_config& cfg, const partition_biases* b,
                                        double scale) {
  SHARDREC_ASSERT(s.built());
  if (!(scale > 0.0))
    return make_error(errc::invalid_argument, "make_local_context: scale must be > 0");
  biases bb;
  if (b)
    bb = rater_matrix_biases(s, side, *b);
  return make_pair_context(rater_matrix(s, side), side, cfg, b ? &bb : nullptr, scale);
}

// ---- Phase S1 ---------------------------------------------------------------

std::size_t rater_rows_block::payload_bytes() const {
  return id_bytes(ids) + (row_ptr.empty() ? 0 : (row_ptr.size() - 1) * 4)
         + entity.size() * 4 + q.size() * 8;
}

rater_rows_block make_rater_rows(const partition_store& s, const pair_context& ctx) {
  SHARDREC_ASSERT(s.built());
  const auto& m = rater_matrix(s, ctx.side);
  const id_map& names = entity_ids_of_rater_matrix(s, ctx.side);
  const std::size_t n_raters = ctx.side == knn_side::item ? m.n_users() : m.n_items();
  SHARDREC_ASSERT(ctx.q_ptr.size() == n_raters + 1);
  rater_rows_block out;
  out.side = ctx.side;
  out.kind = ctx.kind;
  out.from = s.partition();
  // Only the entities some rater touched go into the dictionary.
  std::vector<std::uint32_t> dict(names.size(), none);
  out.entity.reserve(ctx.q.size());
  out.q.reserve(ctx.q.size());
  for (index_t r = 0; r < n_raters; ++r) {
    auto cells = ctx.side == knn_side::item ? m.user_row(r) : m.item_col(r);
    if (cells.size == 0)
      continue;
    const std::int64_t* q = ctx.q.data() + ctx.q_ptr[r];
    for (std::size_t k = 0; k < cells.size; ++k) {
      auto& d = dict[cells.index[k]];
      if (d == none) {
        d = static_cast<std::uint32_t>(out.ids.size());
        out.ids.push_back(names.external(cells.index[k]));
      }
      out.entity.push_back(d);
      out.q.push_back(q[k]);
    }
    out.row_ptr.push_back(out.entity.size());
  }
  return out;
}

rows_gather::rows_gather(knn_side side, const knn_config& cfg, std::uint32_t partitions)
    : side_(side), partitions_(partitions), blocks_(partitions), have_(partitions, 0) {
  SHARDREC_ASSERT(partitions > 0);
  ctx_.side = side;
  ctx_.kind = cfg.similarity;
  ctx_.shrinkage = cfg.shrinkage;
  ctx_.min_support = cfg.min_support;
}

status rows_gather::add(rater_rows_block blk) {
  auto bad = [&](const std::string& what) -> status {
    return make_error(errc::bad_message, "rater_rows_block from partition "
                                             + std::to_string(blk.from) + ": " + what);
  };
  if (blk.side != side_)
    return bad("wrong side");
  if (blk.kind != ctx_.kind)
    return bad(std::string("similarity ") + to_string(blk.kind) + ", expected "
               + to_string(ctx_.kind));
  if (blk.from >= partitions_)
    return bad("partition out of range (P = " + std::to_string(partitions_) + ")");
  if (have_[blk.from])
    return bad("received twice");
  if (blk.row_ptr.empty() || blk.row_ptr.front() != 0
      || blk.row_ptr.back() != blk.entity.size() || blk.q.size() != blk.entity.size())
    return bad("row offsets do not match the cells");
  for (std::size_t r = 1; r < blk.row_ptr.size(); ++r)
    if (blk.row_ptr[r] < blk.row_ptr[r - 1])
      return bad("row offsets decrease at row " + std::to_string(r - 1));
  for (std::size_t k = 0; k < blk.entity.size(); ++k)
    if (blk.entity[k] >= blk.ids.size())
      return bad("cell " + std::to_string(k) + " names entity "
                 + std::to_string(blk.entity[k]) + " of "
                 + std::to_string(blk.ids.size()));
  have_[blk.from] = 1;
  blocks_[blk.from] = std::move(blk);
  return {};
}

std::vector<std::uint32_t> rows_gather::missing() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t p = 0; p < partitions_; ++p)
    if (!have_[p])
      out.push_back(p);
  return out;
}

result<gathered_raters> rows_gather::finish() {
  if (auto m = missing(); !m.empty()) {
    std::string list;
    for (auto p : m)
      list += (list.empty() ? "" : ", ") + std::to_string(p);
    return make_error(errc::invalid_argument,
                      "rows_gather: no rows from partition(s) " + list);
  }
  gathered_raters g;
  // Entities in ascending id order: index order is the lists' tie-break.
  {
    std::vector<std::string> all;
    for (const auto& b : blocks_)
      all.insert(all.end(), b.ids.begin(), b.ids.end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    g.ids_ = std::move(all);
  }
  std::size_t n_raters = 0, n_cells = 0;
  for (const auto& b : blocks_) {
    n_raters += b.row_ptr.size() - 1;
    n_cells += b.entity.size();
  }
  // Cells as events (value unused: q carries the numbers), rater by rater,
  // and q in the order rater_cells lists them (ascending entity).
  std::vector<event> cells;
  cells.reserve(n_cells);
  g.ctx_ = ctx_;
  g.ctx_.q_ptr.assign(1, 0);
  g.ctx_.q_ptr.reserve(n_raters + 1);
  g.ctx_.q.reserve(n_cells);
  std::vector<std::pair<index_t, std::int64_t>> row;
  index_t rater = 0;
  for (auto& b : blocks_) {
    std::vector<index_t> global(b.ids.size());
    for (std::size_t k = 0; k < b.ids.size(); ++k)
      global[k] = static_cast<index_t>(
          std::lower_bound(g.ids_.begin(), g.ids_.end(), b.ids[k]) - g.ids_.begin());
    for (std::size_t r = 0; r + 1 < b.row_ptr.size(); ++r, ++rater) {
      row.clear();
      for (auto k = b.row_ptr[r]; k < b.row_ptr[r + 1]; ++k)
        row.emplace_back(global[b.entity[k]], b.q[k]);
      std::sort(row.begin(), row.end());
      for (std::size_t k = 0; k < row.size(); ++k) {
        if (k > 0 && row[k].first == row[k - 1].first)
          return make_error(errc::bad_message, "rater_rows_block from partition "
                                                   + std::to_string(b.from)
                                                   + ": a row names entity '"
                                                   + g.ids_[row[k].first] + "' twice");
        event e;
        e.user = side_ == knn_side::item ? rater : row[k].first;
        e.item = side_ == knn_side::item ? row[k].first : rater;
        cells.push_back(e);
        g.ctx_.q.push_back(row[k].second);
      }
      g.ctx_.q_ptr.push_back(g.ctx_.q.size());
    }
    b = rater_rows_block{}; // consumed
  }
  const auto n_ent = g.ids_.size();
  g.m_ = side_ == knn_side::item
             ? interaction_matrix::build(n_raters, n_ent, cells, merge_policy::last)
             : interaction_matrix::build(n_ent, n_raters, cells, merge_policy::last);
  return g;
}

std::vector<entity_neighbors>
gathered_raters::neighbors(const std::vector<std::string>& entities, std::size_t keep,
                           unsigned threads) const {
  std::vector<entity_neighbors> out(entities.size());
  std::vector<index_t> rows;
  std::vector<std::size_t> at; // out index of each computed row
  for (std::size_t k = 0; k < entities.size(); ++k) {
    out[k].id = entities[k];
    auto it = std::lower_bound(ids_.begin(), ids_.end(), entities[k]);
    if (it != ids_.end() && *it == entities[k]) {
      rows.push_back(static_cast<index_t>(it - ids_.begin()));
      at.push_back(k);
    }
  }
  auto lists = compute_neighbors_of(m_, ctx_, rows, keep, threads);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    auto& dst = out[at[k]].neighbors;
    dst.reserve(lists[k].size());
    for (const auto& nb : lists[k])
      dst.push_back({ids_[nb.id], nb.similarity});
  }
  return out;
}

// ---- Phase R ----------------------------------------------------------------

std::size_t reverse_block::payload_bytes() const {
  return id_bytes(ids) + target.size() * 4 + source.size() * 4 + similarity.size() * 4;
}

std::vector<reverse_block> make_reverse_blocks(const std::vector<entity_neighbors>& lists,
                                               std::size_t k, std::uint32_t from,
                                               std::uint32_t partitions) {
  auto out = blocks_for<reverse_block>(from, partitions);
  std::vector<std::unordered_map<std::string, std::uint32_t>> dict(partitions);
  auto intern = [&](std::uint32_t d, const std::string& id) {
    auto [it, fresh] = dict[d].emplace(id, static_cast<std::uint32_t>(out[d].ids.size()));
    if (fresh)
      out[d].ids.push_back(id);
    return it->second;
  };
  for (const auto& l : lists) {
    const std::size_t len = k == 0 ? l.neighbors.size() : std::min(k, l.neighbors.size());
    for (std::size_t t = 0; t < len; ++t) {
      const auto& nb = l.neighbors[t];
      const auto d = partition_of(nb.id, partitions);
      out[d].target.push_back(intern(d, nb.id));
      out[d].source.push_back(intern(d, l.id));
      out[d].similarity.push_back(nb.similarity);
    }
  }
  return out;
}

} // namespace shardrec::dist
