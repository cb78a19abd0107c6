#include "dist/node_query.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/partition.hpp"

namespace shardrec::dist {

void append_phase2(const node_answer& a, std::vector<phase2_reply>& out) {
  for (std::size_t i = 0; i < a.partitions.size(); ++i) {
    phase2_reply r;
    r.partition = a.partitions[i];
    if (i == 0)
      r.candidates = a.candidates;
    out.push_back(std::move(r));
  }
}

bool rescore(std::vector<candidate>& cs, const blend_stats& global,
             const std::vector<float>& weights) {
  if (global.mean.size() != weights.size() || global.inv_std.size() != weights.size())
    return false;
  for (const auto& c : cs)
    if (c.components.size() != weights.size())
      return false;
  for (auto& c : cs) {
    float total = 0.0f;
    for (std::size_t k = 0; k < weights.size(); ++k) {
      auto& cs2 = c.components[k];
      const float z = blend_z(cs2.raw, global.mean[k], global.inv_std[k]);
      cs2.normalised = z;
      cs2.contribution = weights[k] * z;
      total += z * weights[k]; // as partition_scorer::top_rows adds
    }
    c.score = total;
  }
  return true;
}

bool certifies(const local_bound& b, const blend_stats& global,
               std::optional<float> nth) {
  if (b.complete)
    return true;
  const auto n_comp = b.weights.size();
  if (b.has_nan || !nth || std::isnan(*nth) || global.mean.size() != n_comp
      || global.inv_std.size() != n_comp || b.local.mean.size() != n_comp
      || b.local.inv_std.size() != n_comp || b.raw_min.size() != n_comp
      || b.raw_max.size() != n_comp)
    return false;
  // An item's score under stats (m, i) is sum_c w_c i_c (r_c - m_c): with
  // a = w i (global) and a' (local), global = local + sum_c (a_c - a'_c) r_c
  // - sum_c a_c m_c + sum_c a'_c m'_c, and a left-out item's local score is
  // at most the threshold. Bounded in double; `scale` sizes the rounding
  // margin after the terms the floats added up.
  double bound = b.threshold, scale = std::abs(static_cast<double>(b.threshold));
  for (std::size_t c = 0; c < n_comp; ++c) {
    const double w = b.weights[c];
    const double a = w * global.inv_std[c], al = w * b.local.inv_std[c];
    const double d = a - al;
    const double lo = b.raw_min[c], hi = b.raw_max[c];
    bound += std::max(d * lo, d * hi) - a * global.mean[c] + al * b.local.mean[c];
    scale += (std::abs(a) + std::abs(al))
             * (std::max(std::abs(lo), std::abs(hi)) + std::abs(global.mean[c])
                + std::abs(b.local.mean[c]));
  }
  if (!std::isfinite(bound))
    return false;
  return static_cast<double>(*nth) > bound + 1e-4 * (1.0 + scale);
}

std::vector<std::uint8_t> certify_local_answers(std::vector<node_answer>& answers,
                                                const blend_stats& global,
                                                std::size_t n) {
  std::vector<std::uint8_t> ok(answers.size(), 0);
  std::vector<float> scores;
  for (std::size_t k = 0; k < answers.size(); ++k) {
    auto& a = answers[k];
    ok[k] = rescore(a.candidates, global, a.bound.weights);
    if (ok[k])
      for (const auto& c : a.candidates)
        scores.push_back(c.score);
  }
  // The n-th best score among real, unseen items (NaN sorts last): the
  // true n-th score is at least this.
  std::optional<float> nth;
  if (n > 0 && scores.size() >= n) {
    auto greater = [](float x, float y) {
      return x > y || (!std::isnan(x) && std::isnan(y));
    };
    std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(n - 1),
                     scores.end(), greater);
    nth = scores[n - 1];
  }
  for (std::size_t k = 0; k < answers.size(); ++k)
    ok[k] = ok[k] && certifies(answers[k].bound, global, nth);
  return ok;
}

std::vector<candidate> select_over(const std::vector<const partition_scorer*>& scorers,
                                   const std::vector<const partition_scores*>& scores,
                                   const user_profile& profile, const blend_stats& stats,
                                   std::size_t n, std::size_t max_because) {
  SHARDREC_ASSERT(scorers.size() == scores.size());
  struct entry {
    partition_scorer::ranked_row row;
    std::size_t part;
  };
  std::vector<entry> all;
  for (std::size_t p = 0; p < scorers.size(); ++p)
    for (const auto& r : scorers[p]->top_rows(*scores[p], stats, n))
      all.push_back({r, p});
  // The partitions' own order (score desc, external id asc), across them.
  auto before = [&](const entry& a, const entry& b) {
    if (a.row.score != b.row.score)
      return a.row.score > b.row.score;
    return scorers[a.part]->item_id(a.row.row) < scorers[b.part]->item_id(b.row.row);
  };
  const auto keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep),
                    all.end(), before);
  std::vector<candidate> out;
  out.reserve(keep);
  for (std::size_t i = 0; i < keep; ++i) {
    const auto& e = all[i];
    out.push_back(scorers[e.part]->make_candidate(*scores[e.part], profile, stats, e.row,
                                                  max_because));
  }
  return out;
}

bool node_query_engine::stats_fit(const scored& k, const blend_stats& stats) {
  for (const auto& s : k.scorers)
    if (stats.mean.size() != s->spec().size() || stats.inv_std.size() != s->spec().size())
      return false;
  return true;
}

std::vector<candidate> node_query_engine::select_scored(const scored& k,
                                                        const user_profile& profile,
                                                        const blend_stats& stats,
                                                        std::size_t n,
                                                        std::size_t max_because) {
  std::vector<const partition_scorer*> sc;
  std::vector<const partition_scores*> ss;
  for (std::size_t i = 0; i < k.scorers.size(); ++i) {
    sc.push_back(k.scorers[i].get());
    ss.push_back(&k.scores[i]);
  }
  return select_over(sc, ss, profile, stats, n, max_because);
}

void node_query_engine::rebuild_dict() {
  struct gathered {
    std::uint64_t hash = 0;
    std::vector<part_slot> slots;
  };
  std::unordered_map<std::string_view, gathered> by_id;
  for (const auto& [p, sc] : scorers_)
    sc->for_each_id(
        [&, p = p](std::string_view id, std::uint64_t h, partition_scorer::id_slot slot) {
          auto& g = by_id[id];
          g.hash = h;
          g.slots.push_back({p, slot});
        });
  std::size_t cap = 16;
  while (cap < 2 * by_id.size())
    cap *= 2;
  dict_.assign(cap, dict_entry{});
  dict_mask_ = cap - 1;
  dict_slots_.clear();
  for (const auto& [id, g] : by_id) {
    auto i = (g.hash >> 32) & dict_mask_;
    while (dict_[i].end != 0)
      i = (i + 1) & dict_mask_;
    dict_entry e{g.hash, id, static_cast<std::uint32_t>(dict_slots_.size()), 0};
    dict_slots_.insert(dict_slots_.end(), g.slots.begin(), g.slots.end());
    e.end = static_cast<std::uint32_t>(dict_slots_.size());
    dict_[i] = e;
  }
  dict_dirty_ = false;
}

const node_query_engine::dict_entry* node_query_engine::find(std::string_view id,
                                                             std::uint64_t h) const {
  // The high bits: the low ones are the partition (partition_of = h mod P).
  for (auto i = (h >> 32) & dict_mask_;; i = (i + 1) & dict_mask_) {
    const auto& e = dict_[i];
    if (e.end == 0)
      return nullptr;
    if (e.hash == h && e.id == id)
      return &e;
  }
}

void node_query_engine::set_scorer(std::uint32_t partition,
                                   std::shared_ptr<const partition_scorer> s) {
  // A scorer with the same ids as the one it replaces (a live update of
  // the same model without new items) keeps the dictionary.
  auto old = scorers_.find(partition);
  if (!(s && old != scorers_.end() && old->second->same_ids(*s)))
    dict_dirty_ = true;
  if (s)
    scorers_[partition] = std::move(s);
  else
    scorers_.erase(partition);
}

bool node_query_engine::has_scorer(std::uint32_t partition) const {
  return scorers_.count(partition) != 0;
}

void node_query_engine::answer_local(const scored& k, const node_query& q,
                                     std::size_t max_because, node_answer& a) {
  if (k.scorers.empty()) { // nothing hosted here: nothing left out
    a.bound.complete = true;
    return;
  }
  const auto& spec = k.scorers.front()->spec();
  const auto n_comp = spec.size();
  for (std::size_t i = 0; i < k.partitions.size(); ++i)
    a.moments.push_back(moments(k.scores[i], k.partitions[i]));
  auto local = combine_moments(a.moments, n_comp, k.partitions.back() + 1);
  if (!local || !stats_fit(k, *local)) {
    a.error =
        local ? "scorers disagree on the number of components" : local.err().message;
    a.partitions.clear();
    a.moments.clear();
    return;
  }
  local->missing.clear();
  a.candidates = select_scored(k, q.profile, *local, q.n, max_because);
  auto& b = a.bound;
  b.local = std::move(*local);
  for (const auto& c : spec)
    b.weights.push_back(c.weight);
  b.complete = a.candidates.size() < q.n;
  b.threshold = a.candidates.empty() ? 0.0f : a.candidates.back().score;
  b.raw_min.assign(n_comp, std::numeric_limits<float>::infinity());
  b.raw_max.assign(n_comp, -std::numeric_limits<float>::infinity());
  for (const auto& s : k.scores)
    for (std::size_t c = 0; c < n_comp; ++c) {
      const float* raw = s.raw.data() + c * s.n_items;
      float lo = b.raw_min[c], hi = b.raw_max[c];
      for (std::size_t r = 0; r < s.n_items; ++r) {
        if (s.seen_item[r])
          continue;
        const float v = raw[r];
        if (!std::isfinite(v))
          b.has_nan = true;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      b.raw_min[c] = lo;
      b.raw_max[c] = hi;
    }
}

node_query_reply node_query_engine::answer(const node_query_batch& batch,
                                           std::size_t max_because) {
  node_query_reply reply;
  reply.answers.reserve(batch.queries.size());
  // The scorers of the asked partitions that are hosted and trained here.
  std::vector<std::uint32_t> parts;
  std::vector<std::shared_ptr<const partition_scorer>> held;
  for (auto p : batch.partitions) {
    auto it = scorers_.find(p);
    if (it != scorers_.end()) {
      parts.push_back(p);
      held.push_back(it->second);
    }
  }
  if (dict_dirty_)
    rebuild_dict();
  std::vector<std::vector<partition_scorer::id_slot>> slots(parts.size());
  for (const auto& q : batch.queries) {
    node_answer a;
    a.id = q.id;
    auto fail = [&](std::string msg) {
      a.error = std::move(msg);
      a.partitions.clear();
      a.moments.clear();
      a.candidates.clear();
    };
    if (q.n == 0 || q.n > max_n) {
      fail("n must be 1.." + std::to_string(max_n) + ", got " + std::to_string(q.n));
      reply.answers.push_back(std::move(a));
      continue;
    }
    // Score the profile against every held partition, its seen ids looked
    // up once for all of them.
    const auto n_seen = q.profile.seen.size();
    for (auto& v : slots)
      v.assign(n_seen, partition_scorer::id_slot{});
    for (std::size_t i = 0; i < n_seen; ++i) {
      const auto& id = q.profile.seen[i];
      const auto* e = find(id, stable_hash(id));
      if (!e)
        continue;
      for (auto k = e->begin; k < e->end; ++k) {
        auto at = std::lower_bound(parts.begin(), parts.end(), dict_slots_[k].partition);
        if (at != parts.end() && *at == dict_slots_[k].partition)
          slots[static_cast<std::size_t>(at - parts.begin())][i] = dict_slots_[k].slot;
      }
    }
    scored k;
    k.partitions = parts;
    k.scorers = held;
    k.scores.reserve(held.size());
    for (std::size_t h = 0; h < held.size(); ++h) {
      auto r = held[h]->score_slots(q.profile, slots[h]);
      if (!r) {
        fail(r.err().message);
        break;
      }
      k.scores.push_back(std::move(*r));
    }
    if (!a.error.empty()) {
      reply.answers.push_back(std::move(a));
      continue;
    }
    a.partitions = parts;
    if (q.kind == node_query_kind::local) {
      answer_local(k, q, max_because, a);
    } else if (!stats_fit(k, q.stats)) {
      fail("blend_stats: wrong number of components");
    } else {
      a.candidates = select_scored(k, q.profile, q.stats, q.n, max_because);
    }
    reply.answers.push_back(std::move(a));
  }
  return reply;
}

} // namespace shardrec::dist
