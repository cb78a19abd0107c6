#include "dist/knn.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <unordered_map>

#include "core/parallel.hpp"
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
  out.cells = m.nnz();
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

std::uint32_t knn_rounds(std::uint64_t cells) {
  constexpr std::uint64_t per_round = std::uint64_t{1} << 18;
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>((cells + per_round - 1) / per_round, 1, 64));
}

std::uint32_t round_of(const std::string& id, std::uint32_t rounds) {
  SHARDREC_ASSERT(rounds >= 1);
  // The high half of the hash: partition_of takes the low one, so rounds
  // and partitions stay independent whatever their counts.
  return static_cast<std::uint32_t>((stable_hash(id) >> 32) % rounds);
}

std::size_t rater_rows_block::payload_bytes() const {
  return id_bytes(ids) + (row_ptr.empty() ? 0 : (row_ptr.size() - 1) * 4)
         + entity.size() * 4 + q.size() * 8;
}

namespace {

// p's rows restricted to the entities with keep[e] (indexed like the rater
// matrix's entities): every rater with a cell gets a row, possibly empty.
rater_rows_block rows_where(const partition_store& s, const pair_context& ctx,
                            const std::vector<char>& keep) {
  SHARDREC_ASSERT(s.built());
  const auto& m = rater_matrix(s, ctx.side);
  const id_map& names = entity_ids_of_rater_matrix(s, ctx.side);
  const std::size_t n_raters = ctx.side == knn_side::item ? m.n_users() : m.n_items();
  SHARDREC_ASSERT(ctx.q_ptr.size() == n_raters + 1);
  rater_rows_block out;
  out.side = ctx.side;
  out.kind = ctx.kind;
  out.from = s.partition();
  // Only the entities some kept cell names go into the dictionary.
  std::vector<std::uint32_t> dict(names.size(), none);
  for (index_t r = 0; r < n_raters; ++r) {
    auto cells = ctx.side == knn_side::item ? m.user_row(r) : m.item_col(r);
    if (cells.size == 0)
      continue;
    const std::int64_t* q = ctx.q.data() + ctx.q_ptr[r];
    for (std::size_t k = 0; k < cells.size; ++k) {
      const auto e = cells.index[k];
      if (!keep[e])
        continue;
      auto& d = dict[e];
      if (d == none) {
        d = static_cast<std::uint32_t>(out.ids.size());
        out.ids.push_back(names.external(e));
      }
      out.entity.push_back(d);
      out.q.push_back(q[k]);
    }
    out.row_ptr.push_back(out.entity.size());
  }
  return out;
}

} // namespace

rater_rows_block make_round_rows(const partition_store& s, const pair_context& ctx,
                                 std::uint32_t round, std::uint32_t rounds) {
  SHARDREC_ASSERT(round < rounds);
  const id_map& names = entity_ids_of_rater_matrix(s, ctx.side);
  std::vector<char> keep(names.size());
  for (index_t e = 0; e < names.size(); ++e)
    keep[e] = round_of(names.external(e), rounds) == round;
  auto out = rows_where(s, ctx, keep);
  out.round = round;
  out.rounds = rounds;
  return out;
}

rater_rows_block make_own_rows(const partition_store& s, const pair_context& ctx,
                               std::uint32_t node,
                               const std::vector<std::uint32_t>& node_of,
                               std::uint32_t rounds) {
  SHARDREC_ASSERT(node_of.size() == s.partitions() && rounds >= 1);
  const id_map& names = entity_ids_of_rater_matrix(s, ctx.side);
  std::vector<char> keep(names.size());
  for (index_t e = 0; e < names.size(); ++e)
    keep[e] = node_of[partition_of(names.external(e), s.partitions())] == node;
  auto out = rows_where(s, ctx, keep);
  out.own = true;
  out.rounds = rounds;
  return out;
}

rows_gather::rows_gather(knn_side side, const knn_config& cfg, std::uint32_t partitions,
                         std::uint32_t node, std::vector<std::uint32_t> node_of)
    : side_(side), partitions_(partitions), node_(node), node_of_(std::move(node_of)),
      blocks_(partitions), own_blocks_(partitions), have_(partitions, 0),
      have_own_(partitions, 0), rows_(partitions, 0), first_row_(partitions, 0) {
  SHARDREC_ASSERT(partitions > 0 && node_of_.size() == partitions);
  ctx_.side = side;
  ctx_.kind = cfg.similarity;
  ctx_.shrinkage = cfg.shrinkage;
  ctx_.min_support = cfg.min_support;
}

status rows_gather::add(rater_rows_block blk) {
  auto bad = [&](const std::string& what) -> status {
    return make_error(errc::bad_message,
                      std::string(blk.own ? "own " : "") + "rater_rows_block of round "
                          + std::to_string(blk.round) + " from partition "
                          + std::to_string(blk.from) + ": " + what);
  };
  if (blk.side != side_)
    return bad("wrong side");
  if (blk.kind != ctx_.kind)
    return bad(std::string("similarity ") + to_string(blk.kind) + ", expected "
               + to_string(ctx_.kind));
  if (blk.from >= partitions_)
    return bad("partition out of range (P = " + std::to_string(partitions_) + ")");
  if (blk.round >= blk.rounds)
    return bad("round out of range (" + std::to_string(blk.rounds) + " rounds)");
  if (rounds_ != 0 && blk.rounds != rounds_)
    return bad(std::to_string(blk.rounds) + " rounds, expected "
               + std::to_string(rounds_));
  if (blk.own ? blk.round != 0 : blk.round != round_)
    return bad("expected round " + std::to_string(blk.own ? 0 : round_));
  if (blk.own && own_)
    return bad("own cells after round 0");
  if ((blk.own ? have_own_ : have_)[blk.from])
    return bad("received twice");
  if (blk.row_ptr.empty() || blk.row_ptr.front() != 0
      || blk.row_ptr.back() != blk.entity.size() || blk.q.size() != blk.entity.size())
    return bad("row offsets do not match the cells");
  const std::uint64_t rows = blk.row_ptr.size() - 1;
  const bool known = round_ > 0 || have_[blk.from] || have_own_[blk.from];
  if (known && rows != rows_[blk.from])
    return bad(std::to_string(rows) + " rows, the partition's other blocks have "
               + std::to_string(rows_[blk.from]));
  for (std::size_t r = 1; r < blk.row_ptr.size(); ++r)
    if (blk.row_ptr[r] < blk.row_ptr[r - 1])
      return bad("row offsets decrease at row " + std::to_string(r - 1));
  for (std::size_t k = 0; k < blk.entity.size(); ++k)
    if (blk.entity[k] >= blk.ids.size())
      return bad("cell " + std::to_string(k) + " names entity "
                 + std::to_string(blk.entity[k]) + " of "
                 + std::to_string(blk.ids.size()));
  // A cell outside the block's share would be counted twice.
  for (const auto& id : blk.ids)
    if (blk.own ? node_of_[partition_of(id, partitions_)] != node_
                : round_of(id, blk.rounds) != blk.round)
      return bad("entity '" + id + "' is not "
                 + (blk.own ? "this node's" : "the round's"));
  rounds_ = blk.rounds;
  rows_[blk.from] = rows;
  const auto from = blk.from;
  if (blk.own) {
    have_own_[from] = 1;
    own_blocks_[from] = std::move(blk);
  } else {
    have_[from] = 1;
    blocks_[from] = std::move(blk);
  }
  return {};
}

std::vector<std::uint32_t> rows_gather::missing() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t p = 0; p < partitions_; ++p)
    if (!have_[p] || (!own_ && !have_own_[p]))
      out.push_back(p);
  return out;
}

namespace {

// Interns every block's dictionary into one ascending id list (the lists'
// tie-break order) and rewrites the blocks' entity indices into it.
std::vector<std::string> intern_blocks(std::vector<rater_rows_block>& blocks) {
  std::vector<std::string> all;
  for (const auto& b : blocks)
    all.insert(all.end(), b.ids.begin(), b.ids.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (auto& b : blocks) {
    std::vector<std::uint32_t> global(b.ids.size());
    for (std::size_t k = 0; k < b.ids.size(); ++k)
      global[k] = static_cast<std::uint32_t>(
          std::lower_bound(all.begin(), all.end(), b.ids[k]) - all.begin());
    for (auto& e : b.entity)
      e = global[e];
    b.ids.clear();
    b.ids.shrink_to_fit();
  }
  return all;
}

status named_twice(const rater_rows_block& b, const std::string& id) {
  return make_error(errc::bad_message, "rater_rows_block from partition "
                                           + std::to_string(b.from)
                                           + ": a row names entity '" + id + "' twice");
}

} // namespace

status rows_gather::build_own() {
  auto own = std::make_shared<own_columns>();
  own->ids = intern_blocks(own_blocks_);
  const auto n = own->ids.size();
  std::uint64_t next = 0;
  for (std::uint32_t p = 0; p < partitions_; ++p) {
    first_row_[p] = next;
    next += rows_[p];
  }
  if (next > std::numeric_limits<std::uint32_t>::max())
    return make_error(errc::invalid_argument, "rows_gather: more than 2^32 raters");
  // Columns by counting: raters come in ascending order (partition, row).
  std::vector<std::uint64_t> count(n + 1, 0);
  for (const auto& b : own_blocks_)
    for (auto e : b.entity)
      ++count[e + 1];
  for (std::size_t e = 0; e < n; ++e)
    count[e + 1] += count[e];
  own->col_ptr = count;
  own->rater.resize(count[n]);
  own->q.resize(count[n]);
  own->totals.assign(n, entity_total{});
  for (std::uint32_t p = 0; p < partitions_; ++p) {
    auto& b = own_blocks_[p];
    for (std::size_t r = 0; r + 1 < b.row_ptr.size(); ++r) {
      const auto g = static_cast<std::uint32_t>(first_row_[p] + r);
      for (auto k = b.row_ptr[r]; k < b.row_ptr[r + 1]; ++k) {
        const auto e = b.entity[k];
        auto& at = count[e];
        if (at > own->col_ptr[e] && own->rater[at - 1] == g)
          return named_twice(b, own->ids[e]);
        own->rater[at] = g;
        own->q[at] = b.q[k];
        ++at;
        own->totals[e].n += 1;
        own->totals[e].sxx += b.q[k] * b.q[k];
      }
    }
    b = rater_rows_block{}; // consumed
  }
  own_ = std::move(own);
  return {};
}

result<std::shared_ptr<const gathered_raters>> rows_gather::finish() {
  if (auto m = missing(); !m.empty()) {
    std::string list;
    for (auto p : m)
      list += (list.empty() ? "" : ", ") + std::to_string(p);
    return make_error(errc::invalid_argument, "rows_gather: no rows of round "
                                                  + std::to_string(round_)
                                                  + " from partition(s) " + list);
  }
  if (!own_)
    if (auto st = build_own(); !st)
      return st.err();
  auto g = std::make_shared<gathered_raters>();
  g->own_ = own_;
  g->ctx_ = ctx_;
  g->round_ = round_;
  g->rounds_ = rounds_;
  g->ids_ = intern_blocks(blocks_);
  const auto n = g->ids_.size();
  std::uint64_t n_cells = 0, n_rows = 0;
  for (const auto& b : blocks_) {
    n_cells += b.entity.size();
    n_rows += b.row_ptr.size() - 1;
  }
  g->totals_.assign(n, entity_total{});
  g->row_ptr_.reserve(n_rows + 1);
  g->entity_.reserve(n_cells);
  g->q_.reserve(n_cells);
  std::vector<std::uint64_t> seen(n, std::numeric_limits<std::uint64_t>::max());
  for (auto& b : blocks_) {
    for (std::size_t r = 0; r + 1 < b.row_ptr.size(); ++r) {
      const auto row = g->row_ptr_.size() - 1;
      for (auto k = b.row_ptr[r]; k < b.row_ptr[r + 1]; ++k) {
        const auto e = b.entity[k];
        if (seen[e] == row)
          return named_twice(b, g->ids_[e]).err();
        seen[e] = row;
        g->entity_.push_back(e);
        g->q_.push_back(b.q[k]);
        g->totals_[e].n += 1;
        g->totals_[e].sxx += b.q[k] * b.q[k];
      }
      g->row_ptr_.push_back(g->entity_.size());
    }
    b = rater_rows_block{}; // consumed
  }
  std::fill(have_.begin(), have_.end(), 0);
  ++round_;
  return std::shared_ptr<const gathered_raters>(std::move(g));
}

round_lists::round_lists(std::vector<std::string> entities, std::size_t keep)
    : lists_(entities.size()), keep_(keep) {
  for (std::size_t k = 0; k < entities.size(); ++k)
    lists_[k].id = std::move(entities[k]);
}

namespace {

struct round_workspace {
  std::vector<pair_stats> acc; // dense over the round's entities, zero between rows
  std::vector<std::uint32_t> touched;
  std::vector<neighbor> candidates; // id = index into the round's entities
};

// The pair sums of own entity a (column [begin, end) of the own cells)
// with every entity of the round except `self` (the round's index of a, or
// none).
template <stat_level L>
void accumulate(const own_columns& own, std::uint64_t begin, std::uint64_t end,
                const std::vector<std::uint64_t>& row_ptr,
                const std::vector<std::uint32_t>& entity,
                const std::vector<std::int64_t>& q, std::uint32_t self,
                round_workspace& w) {
  for (auto c = begin; c < end; ++c) {
    const auto g = own.rater[c];
    const std::int64_t qa = own.q[c];
    for (auto k = row_ptr[g]; k < row_ptr[g + 1]; ++k) {
      const auto b = entity[k];
      if (b == self)
        continue;
      auto& s = w.acc[b];
      if (s.n == 0)
        w.touched.push_back(b);
      add_corater<L>(s, qa, q[k]);
    }
  }
}

bool before_external(const external_neighbor& a, const external_neighbor& b) {
  if (a.similarity != b.similarity)
    return a.similarity > b.similarity;
  return a.id < b.id;
}

} // namespace

status gathered_raters::add_to(round_lists& lists, unsigned threads) const {
  if (lists.added_ != round_)
    return make_error(errc::invalid_argument,
                      "knn round " + std::to_string(round_) + " added to lists with "
                          + std::to_string(lists.added_) + " rounds");
  const own_columns& own = *own_;
  const auto n = ids_.size();
  const auto lv = level_of(ctx_.kind);
  parallel_for(
      lists.lists_.size(), threads,
      [&](std::size_t from, std::size_t to) {
        round_workspace w;
        w.acc.assign(n, pair_stats{});
        for (auto k = from; k < to; ++k) {
          auto& list = lists.lists_[k];
          auto it = std::lower_bound(own.ids.begin(), own.ids.end(), list.id);
          if (it == own.ids.end() || *it != list.id)
            continue;
          const auto a = static_cast<std::size_t>(it - own.ids.begin());
          auto in_round = std::lower_bound(ids_.begin(), ids_.end(), list.id);
          const std::uint32_t self =
              in_round != ids_.end() && *in_round == list.id
                  ? static_cast<std::uint32_t>(in_round - ids_.begin())
                  : none;
          const auto begin = own.col_ptr[a], end = own.col_ptr[a + 1];
          w.touched.clear();
          switch (lv) {
            case stat_level::count:
              accumulate<stat_level::count>(own, begin, end, row_ptr_, entity_, q_, self,
                                            w);
              break;
            case stat_level::dot:
              accumulate<stat_level::dot>(own, begin, end, row_ptr_, entity_, q_, self,
                                          w);
              break;
            case stat_level::corated_norms:
              accumulate<stat_level::corated_norms>(own, begin, end, row_ptr_, entity_,
                                                    q_, self, w);
              break;
            case stat_level::all:
              accumulate<stat_level::all>(own, begin, end, row_ptr_, entity_, q_, self,
                                          w);
              break;
          }
          // As core's finalize_neighbors: positive similarities, the first
          // `keep` by (similarity desc, index asc = id asc).
          w.candidates.clear();
          for (auto b : w.touched) {
            const float sim = pair_similarity(ctx_, w.acc[b], own.totals[a], totals_[b]);
            if (sim > 0.0f)
              w.candidates.push_back({b, sim});
            w.acc[b] = pair_stats{};
          }
          auto by = [](const neighbor& x, const neighbor& y) {
            return x.similarity != y.similarity ? x.similarity > y.similarity
                                                : x.id < y.id;
          };
          const std::size_t keep = lists.keep_;
          if (keep > 0 && w.candidates.size() > keep) {
            std::partial_sort(w.candidates.begin(),
                              w.candidates.begin() + static_cast<std::ptrdiff_t>(keep),
                              w.candidates.end(), by);
            w.candidates.resize(keep);
          } else {
            std::sort(w.candidates.begin(), w.candidates.end(), by);
          }
          if (w.candidates.empty())
            continue;
          std::vector<external_neighbor> fresh;
          fresh.reserve(w.candidates.size());
          for (const auto& c : w.candidates)
            fresh.push_back({ids_[c.id], c.similarity});
          std::vector<external_neighbor> merged;
          merged.reserve(list.neighbors.size() + fresh.size());
          std::merge(std::make_move_iterator(list.neighbors.begin()),
                     std::make_move_iterator(list.neighbors.end()),
                     std::make_move_iterator(fresh.begin()),
                     std::make_move_iterator(fresh.end()), std::back_inserter(merged),
                     before_external);
          if (keep > 0 && merged.size() > keep)
            merged.resize(keep);
          list.neighbors = std::move(merged);
        }
      },
      64);
  ++lists.added_;
  return {};
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
