#include "core/node_query.hpp"

#include <algorithm>

#include "core/partition.hpp"

namespace shardrec::core {

void append_phase2(const node_answer& a, std::vector<phase2_reply>& out) {
  for (std::size_t i = 0; i < a.partitions.size(); ++i) {
    phase2_reply r;
    r.partition = a.partitions[i];
    if (i == 0)
      r.candidates = a.candidates;
    out.push_back(std::move(r));
  }
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

bool node_query_engine::stats_fit(const kept& k, const blend_stats& stats) {
  for (const auto& s : k.scorers)
    if (stats.mean.size() != s->spec().size() || stats.inv_std.size() != s->spec().size())
      return false;
  return true;
}

std::vector<candidate> node_query_engine::select_kept(const kept& k,
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

node_query_engine::node_query_engine(std::size_t max_pending)
    : max_pending_(std::max<std::size_t>(max_pending, 1)) {}

void node_query_engine::set_scorer(std::uint32_t partition,
                                   std::shared_ptr<const partition_scorer> s) {
  if (s)
    scorers_[partition] = std::move(s);
  else
    scorers_.erase(partition);
}

bool node_query_engine::has_scorer(std::uint32_t partition) const {
  return scorers_.count(partition) != 0;
}

void node_query_engine::keep(std::uint64_t id, kept k) {
  if (pending_.count(id) == 0)
    order_.push_back(id);
  pending_[id] = std::move(k);
  while (pending_.size() > max_pending_ && !order_.empty()) {
    pending_.erase(order_.front());
    order_.pop_front();
  }
  // Ids of entries already taken by their selection linger in order_; drop
  // them once they are the majority, so order_ stays bounded.
  if (order_.size() > 2 * max_pending_) {
    std::deque<std::uint64_t> live;
    for (auto id2 : order_)
      if (pending_.count(id2))
        live.push_back(id2);
    order_.swap(live);
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
  std::vector<std::uint64_t> seen_hash;
  for (const auto& q : batch.queries) {
    node_answer a;
    a.id = q.id;
    auto fail = [&](std::string msg) {
      a.error = std::move(msg);
      a.partitions.clear();
      a.moments.clear();
      a.candidates.clear();
    };
    if (q.kind == node_query_kind::select) {
      auto it = pending_.find(q.id);
      if (it == pending_.end()) {
        fail("select for an unknown or expired query " + std::to_string(q.id));
      } else {
        const auto& k = it->second;
        if (!stats_fit(k, q.stats)) {
          fail("blend_stats: wrong number of components");
        } else {
          a.partitions = k.partitions;
          a.candidates = select_kept(k, k.profile, q.stats, q.n, max_because);
        }
        pending_.erase(it);
      }
      reply.answers.push_back(std::move(a));
      continue;
    }
    // score and direct: score the profile against every held partition,
    // hashing its seen ids once.
    seen_hash.clear();
    for (const auto& id : q.profile.seen)
      seen_hash.push_back(stable_hash(id));
    kept k;
    k.partitions = parts;
    k.scorers = held;
    k.scores.reserve(held.size());
    for (const auto& s : held) {
      auto r = s->score(q.profile, seen_hash);
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
    if (q.kind == node_query_kind::score) {
      for (std::size_t i = 0; i < parts.size(); ++i)
        a.moments.push_back(moments(k.scores[i], parts[i]));
      k.profile = q.profile;
      keep(q.id, std::move(k));
    } else {
      if (!stats_fit(k, q.stats))
        fail("blend_stats: wrong number of components");
      else
        a.candidates = select_kept(k, q.profile, q.stats, q.n, max_because);
    }
    reply.answers.push_back(std::move(a));
  }
  return reply;
}

} // namespace shardrec::core
