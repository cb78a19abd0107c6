#include "core/knn.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/parallel.hpp"

namespace shardrec::core {

namespace {

__extension__ typedef __int128 int128;

std::size_t entity_count(const interaction_matrix& m, knn_side side) {
  return side == knn_side::item ? m.n_items() : m.n_users();
}
std::size_t rater_count(const interaction_matrix& m, knn_side side) {
  return side == knn_side::item ? m.n_users() : m.n_items();
}
// The entities a rater touched (ascending).
interaction_matrix::span rater_cells(const interaction_matrix& m, knn_side side,
                                     index_t r) {
  return side == knn_side::item ? m.user_row(r) : m.item_col(r);
}
// The raters of an entity (ascending).
interaction_matrix::span entity_cells(const interaction_matrix& m, knn_side side,
                                      index_t e) {
  return side == knn_side::item ? m.item_col(e) : m.user_row(e);
}

double transformed(const pair_context& ctx, index_t r, index_t e, float v) {
  switch (ctx.kind) {
    case similarity_kind::adjusted_cosine:
      return static_cast<double>(v) - static_cast<double>(ctx.rater_mean[r]);
    case similarity_kind::pearson_baseline: {
      float b =
          ctx.side == knn_side::item ? ctx.bias.predict(r, e) : ctx.bias.predict(e, r);
      return static_cast<double>(v) - static_cast<double>(b);
    }
    case similarity_kind::cosine:
    case similarity_kind::pearson:
    case similarity_kind::jaccard: break;
  }
  return static_cast<double>(v);
}

// The (similarity desc, id asc) total order of every neighbour list.
bool before(const neighbor& a, const neighbor& b) {
  if (a.similarity != b.similarity)
    return a.similarity > b.similarity;
  return a.id < b.id;
}

// Scratch of one accumulating thread: a dense row of pair_stats over all
// entities (all zero between rows) and the entities touched in this row.
struct workspace {
  std::vector<pair_stats> acc;
  std::vector<index_t> touched;
};

template <stat_level L>
void accumulate_row(const interaction_matrix& m, const pair_context& ctx,
                    const char* mask, index_t a, workspace& w) {
  auto col = entity_cells(m, ctx.side, a);
  for (std::size_t c = 0; c < col.size; ++c) {
    const index_t r = col.index[c];
    if (mask && !mask[r])
      continue;
    auto row = rater_cells(m, ctx.side, r);
    const std::int64_t* q = ctx.q.data() + ctx.q_ptr[r];
    // a's own quantised value is read from the same array as b's, so the
    // pairs (a, b) and (b, a) see identical numbers.
    auto pos = static_cast<std::size_t>(
        std::lower_bound(row.index, row.index + row.size, a) - row.index);
    SHARDREC_ASSERT(pos < row.size && row.index[pos] == a);
    const std::int64_t qa = q[pos];
    for (std::size_t k = 0; k < row.size; ++k) {
      const index_t b = row.index[k];
      if (b == a)
        continue;
      auto& s = w.acc[b];
      if (s.n == 0)
        w.touched.push_back(b);
      add_corater<L>(s, qa, q[k]);
    }
  }
}

// Replaces `out` by the sums of rows [entity_begin, entity_end) over the
// raters in `mask` (nullptr = every rater); reuses out's and w's capacity.
void accumulate_into(const interaction_matrix& m, const pair_context& ctx,
                     const char* mask, index_t entity_begin, index_t entity_end,
                     workspace& w, pair_sums& out) {
  const auto n_ent = entity_count(m, ctx.side);
  SHARDREC_ASSERT(entity_begin <= entity_end && entity_end <= n_ent);
  SHARDREC_ASSERT(ctx.q_ptr.size() == rater_count(m, ctx.side) + 1);
  out.entity_begin = entity_begin;
  out.entity_end = entity_end;
  out.row_ptr.assign(1, 0);
  out.other.clear();
  out.stats.clear();
  if (w.acc.size() != n_ent)
    w.acc.assign(n_ent, pair_stats{});
  for (index_t a = entity_begin; a < entity_end; ++a) {
    w.touched.clear();
    switch (level_of(ctx.kind)) {
      case stat_level::count:
        accumulate_row<stat_level::count>(m, ctx, mask, a, w);
        break;
      case stat_level::dot: accumulate_row<stat_level::dot>(m, ctx, mask, a, w); break;
      case stat_level::corated_norms:
        accumulate_row<stat_level::corated_norms>(m, ctx, mask, a, w);
        break;
      case stat_level::all: accumulate_row<stat_level::all>(m, ctx, mask, a, w); break;
    }
    // Emit in ascending order: a scan of the dense row when most entities
    // were touched, a sort of the touched list otherwise.
    if (w.touched.size() * 16 > n_ent) {
      for (index_t b = 0; b < n_ent; ++b)
        if (w.acc[b].n != 0) {
          out.other.push_back(b);
          out.stats.push_back(w.acc[b]);
          w.acc[b] = pair_stats{};
        }
    } else {
      std::sort(w.touched.begin(), w.touched.end());
      for (auto b : w.touched) {
        out.other.push_back(b);
        out.stats.push_back(w.acc[b]);
        w.acc[b] = pair_stats{};
      }
    }
    out.row_ptr.push_back(out.other.size());
  }
}

std::vector<char> rater_mask(const interaction_matrix& m, knn_side side,
                             const std::vector<index_t>& raters) {
  std::vector<char> mask(rater_count(m, side), 0);
  for (auto r : raters) {
    SHARDREC_ASSERT(r < mask.size() && !mask[r]);
    mask[r] = 1;
  }
  return mask;
}

std::vector<entity_total> totals_masked(const interaction_matrix& m,
                                        const pair_context& ctx, const char* mask) {
  std::vector<entity_total> t(entity_count(m, ctx.side));
  const auto n_r = rater_count(m, ctx.side);
  for (index_t r = 0; r < n_r; ++r) {
    if (mask && !mask[r])
      continue;
    auto row = rater_cells(m, ctx.side, r);
    const std::int64_t* q = ctx.q.data() + ctx.q_ptr[r];
    for (std::size_t k = 0; k < row.size; ++k) {
      auto& e = t[row.index[k]];
      e.n += 1;
      e.sxx += q[k] * q[k];
    }
  }
  return t;
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

std::optional<similarity_kind> parse_similarity(std::string_view s) {
  for (auto k : {similarity_kind::cosine, similarity_kind::adjusted_cosine,
                 similarity_kind::pearson, similarity_kind::pearson_baseline,
                 similarity_kind::jaccard})
    if (s == to_string(k))
      return k;
  return std::nullopt;
}

const char* to_string(similarity_kind k) {
  switch (k) {
    case similarity_kind::cosine: return "cosine";
    case similarity_kind::adjusted_cosine: return "adjusted_cosine";
    case similarity_kind::pearson: return "pearson";
    case similarity_kind::pearson_baseline: return "pearson_baseline";
    case similarity_kind::jaccard: return "jaccard";
  }
  return "?";
}

stat_level level_of(similarity_kind k) {
  switch (k) {
    case similarity_kind::jaccard: return stat_level::count;
    case similarity_kind::cosine: return stat_level::dot;
    case similarity_kind::adjusted_cosine:
    case similarity_kind::pearson_baseline: return stat_level::corated_norms;
    case similarity_kind::pearson: break;
  }
  return stat_level::all;
}

double pair_scale(double max_abs, std::size_t n_raters) {
  constexpr int max_exp = 40;
  const double n = static_cast<double>(std::max<std::size_t>(n_raters, 1));
  if (!(max_abs > 0.0))
    return std::ldexp(1.0, max_exp);
  // (max_abs * scale + 0.5)^2 * n <= 2^62 with room for the rounding of llround.
  const double limit = std::sqrt(std::ldexp(1.0, 61) / n) / max_abs;
  int e = static_cast<int>(std::floor(std::log2(limit)));
  while (std::ldexp(1.0, e) > limit)
    --e;
  return std::ldexp(1.0, std::min(e, max_exp));
}

result<pair_context> make_pair_context(const interaction_matrix& m, knn_side side,
                                       const knn_config& cfg, const biases* b,
                                       double scale) {
  pair_context ctx;
  ctx.side = side;
  ctx.kind = cfg.similarity;
  ctx.shrinkage = cfg.shrinkage;
  ctx.min_support = cfg.min_support;
  if (!(cfg.shrinkage >= 0.0f))
    return make_error(errc::invalid_argument, "knn_config.shrinkage must be >= 0");
  const auto n_r = rater_count(m, side);
  if (cfg.similarity == similarity_kind::pearson_baseline) {
    if (!b)
      return make_error(errc::invalid_argument,
                        "make_pair_context: pearson_baseline needs biases");
    if (b->user.size() != m.n_users() || b->item.size() != m.n_items())
      return make_error(
          errc::invalid_argument,
          "make_pair_context: biases shape (" + std::to_string(b->user.size())
              + " users, " + std::to_string(b->item.size())
              + " items) does not match the matrix (" + std::to_string(m.n_users()) + ", "
              + std::to_string(m.n_items()) + ")");
    ctx.bias = *b;
  }
  if (cfg.similarity == similarity_kind::adjusted_cosine) {
    ctx.rater_mean.assign(n_r, 0.0f);
    for (index_t r = 0; r < n_r; ++r) {
      auto row = rater_cells(m, side, r);
      double s = 0;
      for (std::size_t k = 0; k < row.size; ++k)
        s += row.value[k];
      if (row.size > 0)
        ctx.rater_mean[r] = static_cast<float>(s / static_cast<double>(row.size));
    }
  }
  ctx.q_ptr.assign(n_r + 1, 0);
  for (index_t r = 0; r < n_r; ++r)
    ctx.q_ptr[r + 1] = ctx.q_ptr[r] + rater_cells(m, side, r).size;
  std::vector<double> x(ctx.q_ptr[n_r]);
  double max_abs = 0;
  for (index_t r = 0; r < n_r; ++r) {
    auto row = rater_cells(m, side, r);
    for (std::size_t k = 0; k < row.size; ++k) {
      double v = transformed(ctx, r, row.index[k], row.value[k]);
      if (!std::isfinite(v))
        return make_error(errc::invalid_argument,
                          "make_pair_context: non-finite value for rater "
                              + std::to_string(r) + ", entity "
                              + std::to_string(row.index[k]));
      x[ctx.q_ptr[r] + k] = v;
      max_abs = std::max(max_abs, std::abs(v));
    }
  }
  ctx.scale = scale > 0.0 ? scale : pair_scale(max_abs, n_r);
  const double qmax = max_abs * ctx.scale + 0.5;
  if (qmax * qmax * static_cast<double>(std::max<std::size_t>(n_r, 1))
      > std::ldexp(1.0, 62))
    return make_error(errc::invalid_argument, "make_pair_context: scale "
                                                  + std::to_string(ctx.scale)
                                                  + " overflows 64-bit sums for max |x| "
                                                  + std::to_string(max_abs));
  ctx.q.resize(x.size());
  for (std::size_t k = 0; k < x.size(); ++k)
    ctx.q[k] = std::llround(x[k] * ctx.scale);
  return ctx;
}

pair_sums accumulate_pairs(const interaction_matrix& m, const pair_context& ctx,
                           const std::vector<index_t>& raters, index_t entity_begin,
                           index_t entity_end) {
  auto mask = rater_mask(m, ctx.side, raters);
  workspace w;
  pair_sums out;
  accumulate_into(m, ctx, mask.data(), entity_begin, entity_end, w, out);
  return out;
}

std::vector<entity_total> accumulate_totals(const interaction_matrix& m,
                                            const pair_context& ctx,
                                            const std::vector<index_t>& raters) {
  auto mask = rater_mask(m, ctx.side, raters);
  return totals_masked(m, ctx, mask.data());
}

status merge(pair_sums& into, const pair_sums& from) {
  if (into.entity_begin != from.entity_begin || into.entity_end != from.entity_end
      || into.row_ptr.size() != from.row_ptr.size())
    return make_error(errc::invalid_argument,
                      "merge(pair_sums): entity rows ["
                          + std::to_string(into.entity_begin) + ", "
                          + std::to_string(into.entity_end) + ") vs ["
                          + std::to_string(from.entity_begin) + ", "
                          + std::to_string(from.entity_end) + ")");
  pair_sums out;
  out.entity_begin = into.entity_begin;
  out.entity_end = into.entity_end;
  out.row_ptr.reserve(into.row_ptr.size());
  out.row_ptr.push_back(0);
  // Exact size first: the pieces are large and a growing vector would copy.
  std::size_t total = 0;
  for (std::size_t row = 0; row + 1 < into.row_ptr.size(); ++row) {
    auto a = into.row_ptr[row], ae = into.row_ptr[row + 1];
    auto b = from.row_ptr[row], be = from.row_ptr[row + 1];
    total += (ae - a) + (be - b);
    while (a < ae && b < be) {
      if (into.other[a] < from.other[b]) {
        ++a;
      } else if (from.other[b] < into.other[a]) {
        ++b;
      } else {
        --total;
        ++a;
        ++b;
      }
    }
  }
  out.other.reserve(total);
  out.stats.reserve(total);
  for (std::size_t row = 0; row + 1 < into.row_ptr.size(); ++row) {
    auto a = into.row_ptr[row], ae = into.row_ptr[row + 1];
    auto b = from.row_ptr[row], be = from.row_ptr[row + 1];
    while (a < ae || b < be) {
      if (b == be || (a < ae && into.other[a] < from.other[b])) {
        out.other.push_back(into.other[a]);
        out.stats.push_back(into.stats[a++]);
      } else if (a == ae || from.other[b] < into.other[a]) {
        out.other.push_back(from.other[b]);
        out.stats.push_back(from.stats[b++]);
      } else {
        out.other.push_back(into.other[a]);
        out.stats.push_back(into.stats[a++]);
        out.stats.back() += from.stats[b++];
      }
    }
    out.row_ptr.push_back(out.other.size());
  }
  into = std::move(out);
  return {};
}

status merge(std::vector<entity_total>& into, const std::vector<entity_total>& from) {
  if (into.size() != from.size())
    return make_error(errc::invalid_argument, "merge(entity totals): sizes "
                                                  + std::to_string(into.size()) + " and "
                                                  + std::to_string(from.size()));
  for (std::size_t k = 0; k < into.size(); ++k) {
    into[k].n += from[k].n;
    into[k].sxx += from[k].sxx;
  }
  return {};
}

float pair_similarity(const pair_context& ctx, const pair_stats& s,
                      const entity_total& ta, const entity_total& tb) {
  if (s.n <= 0 || static_cast<std::uint64_t>(s.n) < ctx.min_support)
    return 0.0f;
  double sim = 0.0;
  switch (ctx.kind) {
    case similarity_kind::cosine: {
      double den = std::sqrt(static_cast<double>(ta.sxx) * static_cast<double>(tb.sxx));
      sim = den > 0.0 ? static_cast<double>(s.sxy) / den : 0.0;
      break;
    }
    case similarity_kind::adjusted_cosine:
    case similarity_kind::pearson_baseline: {
      double den = std::sqrt(static_cast<double>(s.sxx) * static_cast<double>(s.syy));
      sim = den > 0.0 ? static_cast<double>(s.sxy) / den : 0.0;
      break;
    }
    case similarity_kind::pearson: {
      // Exact centring in 128 bits: n * sxy stays below 2^32 * 2^61.
      const int128 n = s.n;
      const int128 num = n * s.sxy - int128{s.sx} * s.sy;
      const int128 va = n * s.sxx - int128{s.sx} * s.sx;
      const int128 vb = n * s.syy - int128{s.sy} * s.sy;
      if (va > 0 && vb > 0)
        sim = static_cast<double>(num)
              / std::sqrt(static_cast<double>(va) * static_cast<double>(vb));
      break;
    }
    case similarity_kind::jaccard: {
      const std::int64_t uni = ta.n + tb.n - s.n;
      sim = uni > 0 ? static_cast<double>(s.n) / static_cast<double>(uni) : 0.0;
      break;
    }
  }
  sim = std::clamp(sim, -1.0, 1.0);
  const double n = static_cast<double>(s.n);
  sim *= n / (n + static_cast<double>(ctx.shrinkage));
  return static_cast<float>(sim);
}

neighbor_lists finalize_neighbors(const pair_sums& sums,
                                  const std::vector<entity_total>& totals,
                                  const pair_context& ctx, std::size_t keep) {
  SHARDREC_ASSERT(sums.entity_end <= totals.size());
  SHARDREC_ASSERT(sums.row_ptr.size() == sums.entity_end - sums.entity_begin + 1u);
  neighbor_lists out(sums.entity_end - sums.entity_begin);
  for (std::size_t row = 0; row < out.size(); ++row) {
    const index_t a = sums.entity_begin + static_cast<index_t>(row);
    auto& list = out[row];
    for (auto k = sums.row_ptr[row]; k < sums.row_ptr[row + 1]; ++k) {
      const index_t b = sums.other[k];
      float s = pair_similarity(ctx, sums.stats[k], totals[a], totals[b]);
      if (s > 0.0f)
        list.push_back({b, s});
    }
    if (keep > 0 && list.size() > keep) {
      std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(keep),
                        list.end(), before);
      list.resize(keep);
    } else {
      std::sort(list.begin(), list.end(), before);
    }
    list.shrink_to_fit();
  }
  return out;
}

neighbor_lists compute_neighbors_of(const interaction_matrix& m, const pair_context& ctx,
                                    const std::vector<index_t>& entities,
                                    std::size_t keep, unsigned threads) {
  const auto n = entity_count(m, ctx.side);
  const auto totals = totals_masked(m, ctx, nullptr);
  neighbor_lists out(entities.size());
  // Rows are independent, so the result does not depend on the thread count.
  // Each row is accumulated and finalised on its own, so the memory held is
  // one dense row and one sparse row per thread.
  parallel_for(
      entities.size(), threads,
      [&](std::size_t b, std::size_t e) {
        workspace w;
        pair_sums sums;
        for (auto k = b; k < e; ++k) {
          const index_t a = entities[k];
          SHARDREC_ASSERT(a < n);
          accumulate_into(m, ctx, nullptr, a, a + 1, w, sums);
          out[k] = std::move(finalize_neighbors(sums, totals, ctx, keep)[0]);
        }
      },
      64);
  return out;
}

neighbor_lists compute_neighbors(const interaction_matrix& m, const pair_context& ctx,
                                 std::size_t keep, unsigned threads) {
  std::vector<index_t> all(entity_count(m, ctx.side));
  for (std::size_t a = 0; a < all.size(); ++a)
    all[a] = static_cast<index_t>(a);
  return compute_neighbors_of(m, ctx, all, keep, threads);
}

namespace {

neighbor_lists side_neighbors(const interaction_matrix& m, const knn_config& cfg,
                              knn_side side, const biases* b, std::size_t keep) {
  biases fitted;
  if (cfg.similarity == similarity_kind::pearson_baseline && !b) {
    fitted = fit_biases(m, cfg.baseline);
    b = &fitted;
  }
  auto ctx = make_pair_context(m, side, cfg, b);
  SHARDREC_ASSERT(ctx.ok()); // biases come from this matrix; see make_pair_context
  return compute_neighbors(m, *ctx, keep, cfg.threads);
}

// Neighbour lists in one CSR block; list e is [ptr[e], ptr[e+1]).
struct neighbor_table {
  std::vector<std::uint64_t> ptr;
  std::vector<neighbor> nb;

  explicit neighbor_table(const neighbor_lists& lists) {
    ptr.reserve(lists.size() + 1);
    ptr.push_back(0);
    for (const auto& l : lists) {
      nb.insert(nb.end(), l.begin(), l.end());
      ptr.push_back(nb.size());
    }
  }
  const neighbor* begin(index_t e) const { return nb.data() + ptr[e]; }
  std::size_t size(index_t e) const { return ptr[e + 1] - ptr[e]; }
};

class knn_model final : public model {
public:
  knn_model(knn_side side, interaction_matrix train, const neighbor_lists& pool, biases b,
            const knn_config& cfg)
      : side_(side), train_(std::move(train)), table_(pool), b_(std::move(b)),
        k_(cfg.neighbors), baseline_correction_(cfg.baseline_correction) {
    bool any = false;
    for (index_t u = 0; u < train_.n_users(); ++u) {
      auto row = train_.user_row(u);
      for (std::size_t k = 0; k < row.size; ++k) {
        lo_ = any ? std::min(lo_, row.value[k]) : row.value[k];
        hi_ = any ? std::max(hi_, row.value[k]) : row.value[k];
        any = true;
      }
    }
  }

  std::string name() const override {
    return side_ == knn_side::item ? "itemknn" : "userknn";
  }
  std::size_t n_items() const override { return train_.n_items(); }
  bool predicts_ratings() const override { return true; }

  float predict(index_t user, index_t item) const override {
    const float base = b_.predict(user, item);
    if (user >= train_.n_users() || item >= train_.n_items())
      return std::clamp(base, lo_, hi_);
    const index_t e = side_ == knn_side::item ? item : user;
    const neighbor* list = table_.begin(e);
    const std::size_t len = table_.size(e);
    double num = 0, den = 0;
    std::size_t found = 0;
    for (std::size_t k = 0; k < len && (k_ == 0 || found < k_); ++k) {
      const index_t o = list[k].id;
      const index_t u = side_ == knn_side::item ? user : o;
      const index_t i = side_ == knn_side::item ? o : item;
      const float* r = train_.find(u, i);
      if (!r)
        continue;
      const double s = list[k].similarity;
      num += s
             * (baseline_correction_ ? static_cast<double>(*r - b_.predict(u, i))
                                     : static_cast<double>(*r));
      den += s;
      ++found;
    }
    if (den <= 0.0)
      return std::clamp(base, lo_, hi_);
    double p = num / den + (baseline_correction_ ? static_cast<double>(base) : 0.0);
    return std::clamp(static_cast<float>(p), lo_, hi_);
  }

  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override {
    SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == train_.n_items());
    if (user >= train_.n_users() || train_.user_degree(user) == 0) {
      for (index_t i = 0; i < train_.n_items(); ++i)
        out[i] = static_cast<float>(train_.item_degree(i));
      return;
    }
    out.setZero();
    if (side_ == knn_side::item) {
      auto row = train_.user_row(user);
      for (std::size_t k = 0; k < row.size; ++k) {
        const neighbor* l = table_.begin(row.index[k]);
        const std::size_t len = top(row.index[k]);
        for (std::size_t t = 0; t < len; ++t)
          out[l[t].id] += l[t].similarity;
      }
    } else {
      const neighbor* l = table_.begin(user);
      const std::size_t len = top(user);
      for (std::size_t t = 0; t < len; ++t) {
        auto row = train_.user_row(l[t].id);
        for (std::size_t k = 0; k < row.size; ++k)
          out[row.index[k]] += l[t].similarity;
      }
    }
  }

  std::vector<contribution> explain(index_t user, index_t item,
                                    std::size_t max) const override {
    std::vector<contribution> out;
    if (user >= train_.n_users() || item >= train_.n_items() || max == 0)
      return out;
    auto row = train_.user_row(user);
    if (side_ == knn_side::item) {
      for (std::size_t k = 0; k < row.size; ++k) {
        const neighbor* l = table_.begin(row.index[k]);
        const std::size_t len = top(row.index[k]);
        for (std::size_t t = 0; t < len; ++t)
          if (l[t].id == item) {
            out.push_back({row.index[k], l[t].similarity});
            break;
          }
      }
    } else {
      // weight[k] belongs to the user's k-th item.
      std::vector<double> weight(row.size, 0.0);
      const neighbor* l = table_.begin(user);
      const std::size_t len = top(user);
      for (std::size_t t = 0; t < len; ++t) {
        if (!train_.find(l[t].id, item))
          continue;
        auto other = train_.user_row(l[t].id);
        std::size_t a = 0, b = 0;
        while (a < row.size && b < other.size) {
          if (row.index[a] < other.index[b]) {
            ++a;
          } else if (other.index[b] < row.index[a]) {
            ++b;
          } else {
            if (row.index[a] != item)
              weight[a] += l[t].similarity;
            ++a;
            ++b;
          }
        }
      }
      for (std::size_t k = 0; k < row.size; ++k)
        if (weight[k] > 0.0)
          out.push_back({row.index[k], static_cast<float>(weight[k])});
    }
    std::sort(out.begin(), out.end(), [](const contribution& a, const contribution& b) {
      if (a.weight != b.weight)
        return a.weight > b.weight;
      return a.item < b.item;
    });
    if (out.size() > max)
      out.resize(max);
    return out;
  }

private:
  // Length of the top-k prefix of entity e's list.
  std::size_t top(index_t e) const {
    return k_ == 0 ? table_.size(e) : std::min(k_, table_.size(e));
  }

  knn_side side_;
  interaction_matrix train_;
  neighbor_table table_;
  biases b_;
  std::size_t k_;
  bool baseline_correction_;
  float lo_ = 1.0f, hi_ = 5.0f;
};

std::unique_ptr<model> train_side(const interaction_matrix& train, const knn_config& cfg,
                                  knn_side side) {
  biases b = fit_biases(train, cfg.baseline);
  std::size_t pool = 0;
  if (cfg.prediction_pool > 0 && cfg.neighbors > 0)
    pool = std::max(cfg.prediction_pool, cfg.neighbors);
  auto lists = side_neighbors(train, cfg, side, &b, pool);
  return std::make_unique<knn_model>(side, train, lists, std::move(b), cfg);
}

} // namespace

neighbor_lists item_neighbors(const interaction_matrix& m, const knn_config& cfg) {
  return side_neighbors(m, cfg, knn_side::item, nullptr, cfg.neighbors);
}

neighbor_lists user_neighbors(const interaction_matrix& m, const knn_config& cfg) {
  return side_neighbors(m, cfg, knn_side::user, nullptr, cfg.neighbors);
}

std::unique_ptr<model> train_item_knn(const interaction_matrix& train,
                                      const knn_config& cfg) {
  return train_side(train, cfg, knn_side::item);
}

std::unique_ptr<model> train_user_knn(const interaction_matrix& train,
                                      const knn_config& cfg) {
  return train_side(train, cfg, knn_side::user);
}

} // namespace shardrec::core
