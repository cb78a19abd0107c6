#include "dist/knn.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
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
// The matrix holding p's owned entities complete.
const interaction_matrix& entity_matrix(const partition_store& s, knn_side side) {
  return side == knn_side::item ? s.item_matrix() : s.user_matrix();
}
const id_map& entity_ids_of_rater_matrix(const partition_store& s, knn_side side) {
  return side == knn_side::item ? s.item_refs() : s.user_refs();
}
const id_map& owned_entities(const partition_store& s, knn_side side) {
  return side == knn_side::item ? s.items() : s.users();
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

// Splits local indices 0..n-1 by the owner of their external id.
std::vector<std::uint32_t> owners(const id_map& ids, std::uint32_t partitions) {
  std::vector<std::uint32_t> o(ids.size());
  for (std::size_t k = 0; k < ids.size(); ++k)
    o[k] = partition_of(ids.external(static_cast<index_t>(k)), partitions);
  return o;
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

// Interns local index `local` into a block dictionary; map[local] caches it.
std::uint32_t dict_index(std::vector<std::string>& ids, std::vector<std::uint32_t>& map,
                         const id_map& names, index_t local) {
  if (map[local] == none) {
    map[local] = static_cast<std::uint32_t>(ids.size());
    ids.push_back(names.external(local));
  }
  return map[local];
}

pair_stats& operator+=(pair_stats& a, const pair_stats& b) {
  a.n += b.n;
  a.sxy += b.sxy;
  a.sxx += b.sxx;
  a.syy += b.syy;
  a.sx += b.sx;
  a.sy += b.sy;
  return a;
}

} // namespace

// ---- Phase B ----------------------------------------------------------------

mean_partial local_mean(const partition_store& s) {
  SHARDREC_ASSERT(s.built());
  mean_partial m;
  m.partition = s.partition();
  const auto& um = s.user_matrix();
  for (index_t u = 0; u < um.n_users(); ++u) {
    auto row = um.user_row(u);
    for (std::size_t k = 0; k < row.size; ++k)
      m.sum += row.value[k];
    m.count += row.size;
  }
  return m;
}

float global_mean(std::vector<mean_partial> parts) {
  std::sort(parts.begin(), parts.end(), [](const mean_partial& a, const mean_partial& b) {
    return a.partition < b.partition;
  });
  double sum = 0;
  std::uint64_t count = 0;
  for (const auto& p : parts) {
    sum += p.sum;
    count += p.count;
  }
  return count == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(count));
}

std::size_t bias_block::payload_bytes() const {
  return id_bytes(ids) + values.size() * sizeof(float);
}

partition_biases init_biases(const partition_store& s, float mu) {
  SHARDREC_ASSERT(s.built());
  partition_biases b;
  b.mu = mu;
  b.user.assign(s.users().size(), 0.0f);
  b.item.assign(s.items().size(), 0.0f);
  b.item_ref.assign(s.item_refs().size(), 0.0f);
  b.user_ref.assign(s.user_refs().size(), 0.0f);
  return b;
}

std::vector<bias_block> item_bias_step(const partition_store& s,
                                       const baseline_config& cfg, partition_biases& b) {
  const auto& m = s.item_matrix();
  const auto P = s.partitions();
  const auto rater_owner = owners(s.user_refs(), P);
  auto out = blocks_for<bias_block>(s.partition(), P);
  std::vector<index_t> sent_to(P, none); // last owned item sent to d
  for (index_t i = 0; i < m.n_items(); ++i) {
    auto col = m.item_col(i);
    double sum = 0;
    // The same float expression as fit_biases, so equal inputs give equal terms.
    for (std::size_t k = 0; k < col.size; ++k)
      sum += col.value[k] - b.mu - b.user_ref[col.index[k]];
    b.item[i] = static_cast<float>(sum / (cfg.reg_item + static_cast<double>(col.size)));
    for (std::size_t k = 0; k < col.size; ++k) {
      const auto d = rater_owner[col.index[k]];
      if (sent_to[d] == i)
        continue;
      sent_to[d] = i;
      out[d].ids.push_back(s.items().external(i));
      out[d].values.push_back(b.item[i]);
    }
  }
  for (auto& blk : out)
    blk.side = bias_side::item;
  return out;
}

std::vector<bias_block> user_bias_step(const partition_store& s,
                                       const baseline_config& cfg, partition_biases& b) {
  const auto& m = s.user_matrix();
  const auto P = s.partitions();
  const auto item_owner = owners(s.item_refs(), P);
  auto out = blocks_for<bias_block>(s.partition(), P);
  std::vector<index_t> sent_to(P, none);
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto row = m.user_row(u);
    double sum = 0;
    for (std::size_t k = 0; k < row.size; ++k)
      sum += row.value[k] - b.mu - b.item_ref[row.index[k]];
    b.user[u] = static_cast<float>(sum / (cfg.reg_user + static_cast<double>(row.size)));
    for (std::size_t k = 0; k < row.size; ++k) {
      const auto d = item_owner[row.index[k]];
      if (sent_to[d] == u)
        continue;
      sent_to[d] = u;
      out[d].ids.push_back(s.users().external(u));
      out[d].values.push_back(b.user[u]);
    }
  }
  for (auto& blk : out)
    blk.side = bias_side::user;
  return out;
}

status receive(const partition_store& s, partition_biases& b, const bias_block& blk) {
  if (blk.to != s.partition() || blk.ids.size() != blk.values.size())
    return make_error(errc::bad_message, "bias_block from " + std::to_string(blk.from)
                                             + ": addressed to " + std::to_string(blk.to)
                                             + ", ids/values sizes "
                                             + std::to_string(blk.ids.size()) + "/"
                                             + std::to_string(blk.values.size()));
  const bool item = blk.side == bias_side::item;
  const id_map& ids = item ? s.item_refs() : s.user_refs();
  auto& dst = item ? b.item_ref : b.user_ref;
  SHARDREC_ASSERT(dst.size() == ids.size());
  std::vector<index_t> where(blk.ids.size());
  for (std::size_t k = 0; k < blk.ids.size(); ++k) {
    auto i = ids.find(blk.ids[k]);
    if (!i)
      return make_error(errc::bad_message, std::string("bias_block field 'ids': ")
                                               + (item ? "item '" : "user '") + blk.ids[k]
                                               + "' not held by partition "
                                               + std::to_string(s.partition()));
    where[k] = *i;
  }
  for (std::size_t k = 0; k < where.size(); ++k)
    dst[where[k]] = blk.values[k];
  return {};
}

// ---- Phase S ----------------------------------------------------------------

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

std::size_t stat_width(similarity_kind k) {
  switch (k) {
    case similarity_kind::jaccard: return 1;
    case similarity_kind::cosine: return 2;
    case similarity_kind::adjusted_cosine:
    case similarity_kind::pearson_baseline: return 4;
    case similarity_kind::pearson: break;
  }
  return 6;
}

std::size_t pair_block::payload_bytes() const {
  return id_bytes(ids) + row_entity.size() * 4 + other.size() * 4 + stats.size() * 8;
}

std::vector<pair_block> make_pair_blocks(const partition_store& s,
                                         const pair_context& ctx,
                                         std::size_t chunk_rows) {
  SHARDREC_ASSERT(s.built());
  const auto& m = rater_matrix(s, ctx.side);
  const id_map& names = entity_ids_of_rater_matrix(s, ctx.side);
  const auto P = s.partitions();
  const std::size_t n_ent = names.size();
  const std::size_t n_raters = ctx.side == knn_side::item ? m.n_users() : m.n_items();
  const std::size_t width = stat_width(ctx.kind);
  const auto owner = owners(names, P);
  std::vector<index_t> raters(n_raters);
  std::iota(raters.begin(), raters.end(), index_t{0});
  auto out = blocks_for<pair_block>(s.partition(), P);
  std::vector<std::vector<std::uint32_t>> dict(P);
  for (auto& blk : out) {
    blk.side = ctx.side;
    blk.kind = ctx.kind;
    blk.row_ptr.assign(1, 0);
  }
  chunk_rows = std::max<std::size_t>(chunk_rows, 1);
  for (std::size_t begin = 0; begin < n_ent; begin += chunk_rows) {
    const auto end = std::min(n_ent, begin + chunk_rows);
    auto sums = accumulate_pairs(m, ctx, raters, static_cast<index_t>(begin),
                                 static_cast<index_t>(end));
    for (std::size_t row = 0; row + 1 < sums.row_ptr.size(); ++row) {
      if (sums.row_ptr[row] == sums.row_ptr[row + 1])
        continue;
      const auto a = static_cast<index_t>(begin + row);
      const auto d = owner[a];
      auto& blk = out[d];
      auto& map = dict[d];
      if (map.empty())
        map.assign(n_ent, none);
      blk.row_entity.push_back(dict_index(blk.ids, map, names, a));
      for (auto k = sums.row_ptr[row]; k < sums.row_ptr[row + 1]; ++k) {
        blk.other.push_back(dict_index(blk.ids, map, names, sums.other[k]));
        const auto& st = sums.stats[k];
        const std::int64_t f[6] = {st.n, st.sxy, st.sxx, st.syy, st.sx, st.sy};
        blk.stats.insert(blk.stats.end(), f, f + width);
      }
      blk.row_ptr.push_back(blk.other.size());
    }
  }
  return out;
}

bool needs_totals(similarity_kind k) {
  return k == similarity_kind::cosine || k == similarity_kind::jaccard;
}

std::size_t totals_block::payload_bytes() const {
  return id_bytes(ids) + n.size() * 8 + sxx.size() * 8;
}

totals_block make_totals_block(const partition_store& s, knn_side side, double scale) {
  SHARDREC_ASSERT(s.built());
  const auto& m = entity_matrix(s, side);
  const id_map& ids = owned_entities(s, side);
  totals_block out;
  out.side = side;
  out.from = s.partition();
  out.ids.reserve(ids.size());
  for (index_t e = 0; e < ids.size(); ++e) {
    auto cells = side == knn_side::item ? m.item_col(e) : m.user_row(e);
    std::int64_t sxx = 0;
    // cosine and jaccard quantise the raw value (knn.cpp: transformed()).
    for (std::size_t k = 0; k < cells.size; ++k) {
      const std::int64_t q = std::llround(static_cast<double>(cells.value[k]) * scale);
      sxx += q * q;
    }
    out.ids.push_back(ids.external(e));
    out.n.push_back(static_cast<std::int64_t>(cells.size));
    out.sxx.push_back(sxx);
  }
  return out;
}

neighbor_merger::neighbor_merger(const partition_store& s, knn_side side,
                                 const knn_config& cfg)
    : side_(side), partition_(s.partition()), owned_(owned_entities(s, side)) {
  SHARDREC_ASSERT(s.built());
  ctx_.side = side;
  ctx_.kind = cfg.similarity;
  ctx_.shrinkage = cfg.shrinkage;
  ctx_.min_support = cfg.min_support;
  owned_key_.resize(owned_.size());
  for (index_t e = 0; e < owned_.size(); ++e)
    owned_key_[e] = known_.intern(owned_.external(e));
  rows_.resize(owned_.size());
  totals_.resize(known_.size());
  has_total_.resize(known_.size(), 0);
}

status neighbor_merger::add(const pair_block& blk) {
  const std::size_t width = stat_width(ctx_.kind);
  auto bad = [&](const std::string& what) {
    return make_error(errc::bad_message, "pair_block from " + std::to_string(blk.from)
                                             + " to partition "
                                             + std::to_string(partition_) + ": " + what);
  };
  if (blk.side != side_ || blk.kind != ctx_.kind)
    return bad("side or similarity kind differs from the merger's");
  if (blk.to != partition_)
    return bad("addressed to " + std::to_string(blk.to));
  if (blk.row_ptr.size() != blk.row_entity.size() + 1 || blk.row_ptr.front() != 0
      || blk.row_ptr.back() != blk.other.size()
      || blk.stats.size() != blk.other.size() * width)
    return bad("array sizes do not match");
  for (std::size_t r = 0; r + 1 < blk.row_ptr.size(); ++r)
    if (blk.row_ptr[r] > blk.row_ptr[r + 1])
      return bad("field 'row_ptr' decreases");
  for (auto k : blk.other)
    if (k >= blk.ids.size())
      return bad("field 'other' outside the dictionary");
  std::vector<index_t> rows(blk.row_entity.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (blk.row_entity[r] >= blk.ids.size())
      return bad("field 'row_entity' outside the dictionary");
    auto e = owned_.find(blk.ids[blk.row_entity[r]]);
    if (!e)
      return bad("row entity '" + blk.ids[blk.row_entity[r]] + "' is not owned here");
    rows[r] = *e;
  }
  // Checked; from here on the block is applied whole.
  std::vector<std::uint32_t> key(blk.ids.size());
  for (std::size_t k = 0; k < blk.ids.size(); ++k)
    key[k] = known_.intern(blk.ids[k]);
  totals_.resize(known_.size());
  has_total_.resize(known_.size(), 0);
  std::vector<entry> in, merged;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    in.clear();
    for (auto k = blk.row_ptr[r]; k < blk.row_ptr[r + 1]; ++k) {
      std::int64_t f[6] = {0, 0, 0, 0, 0, 0};
      std::copy_n(blk.stats.begin() + static_cast<std::ptrdiff_t>(k * width), width, f);
      in.push_back({key[blk.other[k]], {f[0], f[1], f[2], f[3], f[4], f[5]}});
    }
    std::sort(in.begin(), in.end(),
              [](const entry& a, const entry& b) { return a.other < b.other; });
    auto& row = rows_[rows[r]];
    merged.clear();
    merged.reserve(row.size() + in.size());
    std::size_t a = 0, b = 0;
    while (a < row.size() || b < in.size()) {
      if (b == in.size() || (a < row.size() && row[a].other < in[b].other)) {
        merged.push_back(row[a++]);
      } else if (a == row.size() || in[b].other < row[a].other) {
        merged.push_back(in[b++]);
      } else {
        merged.push_back(row[a++]);
        merged.back().stats += in[b++].stats;
      }
    }
    row.swap(merged);
  }
  return {};
}

status neighbor_merger::add(const totals_block& blk) {
  if (blk.side != side_ || blk.n.size() != blk.ids.size()
      || blk.sxx.size() != blk.ids.size())
    return make_error(errc::bad_message, "totals_block from " + std::to_string(blk.from)
                                             + ": wrong side or array sizes");
  for (std::size_t k = 0; k < blk.ids.size(); ++k) {
    const auto e = known_.intern(blk.ids[k]);
    totals_.resize(known_.size());
    has_total_.resize(known_.size(), 0);
    // Each entity has one owner, which sends its complete totals once.
    totals_[e] = {blk.n[k], blk.sxx[k]};
    has_total_[e] = 1;
  }
  return {};
}

result<std::vector<entity_neighbors>> neighbor_merger::finalize(std::size_t keep) const {
  const bool totals = needs_totals(ctx_.kind);
  // Rank of every known entity in id order: the tie-break of every list.
  std::vector<std::uint32_t> order(known_.size()), rank(known_.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return known_.external(a) < known_.external(b);
  });
  for (std::uint32_t k = 0; k < order.size(); ++k)
    rank[order[k]] = k;
  const entity_total zero{};
  auto total_of = [&](std::uint32_t e) {
    return totals && e < totals_.size() ? totals_[e] : zero;
  };
  std::vector<entity_neighbors> out(owned_.size());
  std::vector<neighbor> list; // id = known_ index
  for (index_t a = 0; a < owned_.size(); ++a) {
    out[a].id = owned_.external(a);
    const auto ka = owned_key_[a];
    if (totals && !rows_[a].empty() && !(ka < has_total_.size() && has_total_[ka]))
      return make_error(errc::invalid_argument,
                        "neighbor_merger::finalize: no totals for '" + out[a].id + "'");
    list.clear();
    for (const auto& en : rows_[a]) {
      if (totals && !(en.other < has_total_.size() && has_total_[en.other]))
        return make_error(errc::invalid_argument,
                          "neighbor_merger::finalize: no totals for '"
                              + known_.external(en.other) + "'");
      const float sim = pair_similarity(ctx_, en.stats, total_of(ka), total_of(en.other));
      if (sim > 0.0f)
        list.push_back({en.other, sim});
    }
    auto before = [&](const neighbor& x, const neighbor& y) {
      if (x.similarity != y.similarity)
        return x.similarity > y.similarity;
      return rank[x.id] < rank[y.id];
    };
    if (keep > 0 && list.size() > keep) {
      std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(keep),
                        list.end(), before);
      list.resize(keep);
    } else {
      std::sort(list.begin(), list.end(), before);
    }
    out[a].neighbors.reserve(list.size());
    for (const auto& nb : list)
      out[a].neighbors.push_back({known_.external(nb.id), nb.similarity});
  }
  return out;
}

// ---- Phase S by row exchange -------------------------------------------------

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

user_query make_user_query(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return user_query{std::move(items)};
}

item_knn_scorer::item_knn_scorer(const partition_store& s) : owned_(s.items()) {
  SHARDREC_ASSERT(s.built());
  const auto& m = s.item_matrix();
  degree_.resize(owned_.size());
  for (index_t i = 0; i < owned_.size(); ++i)
    degree_[i] = static_cast<float>(m.item_degree(i));
  rev_.resize(owned_.size());
}

status item_knn_scorer::add(const reverse_block& blk) {
  const auto n = blk.target.size();
  if (blk.source.size() != n || blk.similarity.size() != n)
    return make_error(errc::bad_message, "reverse_block from " + std::to_string(blk.from)
                                             + ": array sizes differ");
  std::vector<index_t> where(n);
  for (std::size_t k = 0; k < n; ++k) {
    if (blk.target[k] >= blk.ids.size() || blk.source[k] >= blk.ids.size())
      return make_error(errc::bad_message, "reverse_block from "
                                               + std::to_string(blk.from)
                                               + ": index outside the dictionary");
    auto i = owned_.find(blk.ids[blk.target[k]]);
    if (!i)
      return make_error(errc::bad_message,
                        "reverse_block from " + std::to_string(blk.from) + ": item '"
                            + blk.ids[blk.target[k]] + "' is not owned here");
    where[k] = *i;
  }
  for (std::size_t k = 0; k < n; ++k)
    rev_[where[k]].push_back({blk.ids[blk.source[k]], blk.similarity[k]});
  return {};
}

void item_knn_scorer::finalize() {
  std::vector<std::pair<std::string, std::pair<index_t, float>>> all;
  for (index_t i = 0; i < rev_.size(); ++i) {
    std::sort(rev_[i].begin(), rev_[i].end(),
              [](const source& a, const source& b) { return a.id < b.id; });
    for (const auto& src : rev_[i])
      all.push_back({src.id, {i, src.similarity}});
  }
  // Stable by item within each j: score_owned adds per item in query order,
  // the order of items within fwd_[j] does not matter.
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  fwd_ids_.clear();
  fwd_.clear();
  for (auto& [j, entry] : all) {
    if (fwd_ids_.empty() || fwd_ids_.back() != j) {
      fwd_ids_.push_back(j);
      fwd_.emplace_back();
    }
    fwd_.back().push_back(entry);
  }
}

std::vector<float> item_knn_scorer::score_owned(const user_query& q) const {
  if (q.items.empty())
    return degree_;
  std::vector<float> out(owned_.size(), 0.0f);
  // Both sorted: a merge walk visits the query's items in query order.
  std::size_t f = 0;
  for (const auto& j : q.items) {
    while (f < fwd_ids_.size() && fwd_ids_[f] < j)
      ++f;
    if (f == fwd_ids_.size())
      break;
    if (fwd_ids_[f] != j)
      continue;
    for (const auto& [i, sim] : fwd_[f])
      out[i] += sim;
  }
  return out;
}

result<float> item_knn_scorer::score(const user_query& q, std::string_view item) const {
  auto i = owned_.find(item);
  if (!i)
    return make_error(errc::unknown_id,
                      "item_knn_scorer: item '" + std::string(item) + "' not owned");
  if (q.items.empty())
    return degree_[*i];
  float s = 0.0f;
  const auto& rev = rev_[*i];
  std::size_t a = 0, b = 0;
  while (a < q.items.size() && b < rev.size()) {
    if (q.items[a] < rev[b].id) {
      ++a;
    } else if (rev[b].id < q.items[a]) {
      ++b;
    } else {
      s += rev[b].similarity;
      ++a;
      ++b;
    }
  }
  return s;
}

result<std::vector<external_contribution>>
item_knn_scorer::explain(const user_query& q, std::string_view item,
                         std::size_t max) const {
  auto i = owned_.find(item);
  if (!i)
    return make_error(errc::unknown_id,
                      "item_knn_scorer: item '" + std::string(item) + "' not owned");
  std::vector<external_contribution> out;
  const auto& rev = rev_[*i];
  std::size_t a = 0, b = 0;
  while (a < q.items.size() && b < rev.size()) {
    if (q.items[a] < rev[b].id) {
      ++a;
    } else if (rev[b].id < q.items[a]) {
      ++b;
    } else {
      out.push_back({rev[b].id, rev[b].similarity});
      ++a;
      ++b;
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& x, const auto& y) { return x.weight > y.weight; });
  if (out.size() > max)
    out.resize(max);
  return out;
}

user_knn_scorer::user_knn_scorer(const partition_store& s)
    : user_refs_(s.user_refs()), items_(s.item_matrix()) {
  SHARDREC_ASSERT(s.built());
}

std::vector<float>
user_knn_scorer::score_owned(const std::vector<external_neighbor>& neighbors,
                             bool user_has_items) const {
  std::vector<float> out(items_.n_items(), 0.0f);
  if (!user_has_items) {
    for (index_t i = 0; i < items_.n_items(); ++i)
      out[i] = static_cast<float>(items_.item_degree(i));
    return out;
  }
  for (const auto& nb : neighbors) {
    auto v = user_refs_.find(nb.id);
    if (!v)
      continue;
    auto row = items_.user_row(*v);
    for (std::size_t k = 0; k < row.size; ++k)
      out[row.index[k]] += nb.similarity;
  }
  return out;
}

std::vector<external_contribution>
explain_user_knn(const user_query& q, std::string_view item,
                 const std::vector<neighbor_items>& neighbors, std::size_t max) {
  std::vector<external_contribution> out;
  if (max == 0)
    return out;
  std::vector<double> weight(q.items.size(), 0.0);
  for (const auto& nb : neighbors) {
    if (!std::binary_search(nb.items.begin(), nb.items.end(), item))
      continue;
    std::size_t a = 0, b = 0;
    while (a < q.items.size() && b < nb.items.size()) {
      if (q.items[a] < nb.items[b]) {
        ++a;
      } else if (nb.items[b] < q.items[a]) {
        ++b;
      } else {
        if (q.items[a] != item)
          weight[a] += nb.similarity;
        ++a;
        ++b;
      }
    }
  }
  for (std::size_t k = 0; k < q.items.size(); ++k)
    if (weight[k] > 0.0)
      out.push_back({q.items[k], static_cast<float>(weight[k])});
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& x, const auto& y) { return x.weight > y.weight; });
  if (out.size() > max)
    out.resize(max);
  return out;
}

} // namespace shardrec::dist
