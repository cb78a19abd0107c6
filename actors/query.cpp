#include "actors/query.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/scatter.hpp"
#include "core/partition.hpp"
#include "dist/node_query.hpp"
#include "dist/recommend.hpp"

namespace shardrec::actors {

namespace {

using clock = std::chrono::steady_clock;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

recommend_reply to_reply(const std::string& user, const dist::merged_recommendations& m,
                         std::vector<std::uint32_t> missing) {
  recommend_reply r;
  r.user = user;
  for (const auto& c : m.items) {
    recommendation rec;
    rec.item = c.item;
    rec.score = c.score;
    for (const auto& cs : c.components)
      rec.components.push_back({cs.name, cs.raw, cs.contribution});
    for (const auto& e : c.because)
      rec.because.push_back(e.item);
    rec.because_from = c.because_from;
    r.items.push_back(std::move(rec));
  }
  missing.insert(missing.end(), m.missing.begin(), m.missing.end());
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  r.partial = !missing.empty();
  r.missing = std::move(missing);
  return r;
}

// Says which components score by popularity for this user (the model knows
// nothing of the user for them yet) and why.
struct cold_parts {
  bool no_events = false, ials = false, content = false, mf = false;
  explicit cold_parts(const dist::user_profile& p)
      : no_events(p.seen.empty()), ials(std::all_of(p.ials.begin(), p.ials.end(),
                                                    [](float v) { return v == 0.0f; })),
        content(p.content.empty()), mf(!p.mf_known) {}
  cold_parts() = default;
};

void explain_cold_start(const cold_parts& p, recommend_reply& r) {
  if (r.items.empty())
    return;
  std::set<std::string> in_blend;
  for (const auto& c : r.items.front().components)
    in_blend.insert(c.name);
  if (p.no_events) {
    for (const auto& name : in_blend)
      if (name != "popular")
        r.cold_start.push_back(name);
    r.note = "new user: no events yet, so these are the most popular items; the "
             "recommendations follow the user's first events";
    for (auto& rec : r.items)
      if (rec.because.empty())
        rec.because_from = "popularity";
    return;
  }
  if (in_blend.count("implicit-als") && p.ials)
    r.cold_start.push_back("implicit-als");
  if (in_blend.count("content") && p.content)
    r.cold_start.push_back("content");
  if (in_blend.count("mf") && p.mf)
    r.cold_start.push_back("mf");
  if (!r.cold_start.empty()) {
    std::string names;
    for (const auto& n : r.cold_start)
      names += (names.empty() ? "" : ", ") + n;
    r.note = "cold start: " + names
             + " by popularity for this user until the next training learns the "
               "user's events";
  }
}

// One coordinator flush: the queries, their profiles and what came back.
struct recommend_batch {
  struct query {
    queued_recommend q;
    bool done = false;
    dist::user_profile profile;  // without content evidence
    dist::user_profile evidence; // seen items and their content vectors
    cold_parts cold;             // what the model does not know of the user
    bool cached = false;         // blend statistics known: direct round
    dist::blend_stats stats;
    std::vector<dist::phase1_reply> moments;
    std::vector<dist::phase2_reply> candidates;
    // Local round: each node's answer (candidates under its own statistics
    // and their bound), by node of the batch.
    std::vector<std::size_t> local_nodes;
    std::vector<dist::node_answer> local;
    // Per node of the batch: its local answer was not certified; ask it
    // again with the global statistics (direct).
    std::vector<std::uint8_t> recheck;
    // A node answered this query with an error (e.g. its partitions' scorers
    // were of two model versions): a retry may succeed.
    bool node_error = false;
  };
  std::uint32_t P = 0;
  clock::time_point deadline; // the whole query's
  clock::time_point
      score_deadline; // the first round's: leaves a recheck time when a node is stuck
  std::vector<query> qs;
  std::unordered_map<std::uint64_t, std::size_t> by_id;
  // The nodes (their scorers) and the partitions each hosts, per the map.
  std::vector<std::pair<caf::actor, std::vector<std::uint32_t>>> nodes;
  // Where a query that met a model swap goes to be asked again (null: no
  // retries), and the coordinator to wake for it.
  std::vector<queued_recommend>* requeue = nullptr;
  caf::event_based_actor* self = nullptr;
};
using batch_ptr = std::shared_ptr<recommend_batch>;

constexpr int max_retries = 3;
constexpr std::chrono::milliseconds retry_delay{50};

// Puts x back in the coordinator's queue for another try when its failure
// came early (see run_recommend_batch); true if it did.
bool retry(recommend_batch& b, recommend_batch::query& x) {
  if (!b.requeue || x.done || x.q.retries >= max_retries
      || clock::now() - x.q.arrived > query_timeout / 2)
    return false;
  x.done = true;
  ++x.q.retries;
  b.requeue->push_back(std::move(x.q));
  b.self->delayed_send(b.self, retry_delay, flush_atom::value);
  return true;
}

void finish(recommend_batch& b, recommend_batch::query& x) {
  if (x.done)
    return;
  const auto P = b.P;
  auto merged = dist::merge_candidates(x.candidates, P, x.q.req.n);
  // Retried only when a node said why it left partitions out: a dead or
  // unreachable node's queries are answered partial at once.
  if (merged && x.node_error && (!merged->missing.empty() || !x.stats.missing.empty())
      && retry(b, x))
    return;
  x.done = true;
  if (!merged) {
    x.q.rp.deliver(to_caf_error(merged.err()));
    return;
  }
  // Explanations for the final n only, here where the user's content
  // evidence is (the partitions scored without it).
  dist::explain_candidates(merged->items, x.evidence, max_because);
  auto reply = to_reply(x.q.req.user, *merged, x.stats.missing);
  explain_cold_start(x.cold, reply);
  x.q.rp.deliver(encode(reply));
}

void fail_query(recommend_batch::query& x, caf::error err) {
  if (!x.done)
    x.q.rp.deliver(std::move(err));
  x.done = true;
}

// Sends every node its share of one round (one message per node) and calls
// on_answer(k, i, answer) with node k's answer for batch query i, then
// done() once every node replied or timed out. make_query(k, i) gives node
// k's query for batch query i, or false to leave it out; with
// same_for_every_node it is asked for node 0 only and every node gets those
// queries (the profiles are copied once per round, not once per node). An
// answer counts only once, for a query sent to that node, covering that
// node's partitions; anything else is as if the node had not answered.
void node_round(
    caf::event_based_actor* self, const batch_ptr& b, clock::time_point deadline,
    bool same_for_every_node,
    std::function<bool(std::size_t, std::size_t, dist::node_query&)> make_query,
    std::function<void(std::size_t, std::size_t, const dist::node_answer&)> on_answer,
    std::function<void()> done) {
  auto open = std::make_shared<std::vector<std::vector<std::uint8_t>>>(
      b->nodes.size(), std::vector<std::uint8_t>(b->qs.size(), 0));
  std::vector<scatter_request> requests;
  std::vector<std::size_t> node_of_request;
  dist::node_query_batch nb;
  for (std::size_t k = 0; k < b->nodes.size(); ++k) {
    if (k == 0 || !same_for_every_node) {
      nb.queries.clear();
      for (std::size_t i = 0; i < b->qs.size(); ++i) {
        dist::node_query q;
        if (!b->qs[i].done && make_query(k, i, q)) {
          nb.queries.push_back(std::move(q));
          (*open)[k][i] = 1;
        }
      }
    } else {
      (*open)[k] = (*open)[0];
    }
    nb.partitions = b->nodes[k].second;
    if (nb.queries.empty())
      continue;
    requests.push_back(
        {b->nodes[k].first, caf::make_message(nquery_atom::value, encode(nb))});
    node_of_request.push_back(k);
  }
  scatter<frame>(
      self, std::move(requests), time_left(deadline),
      [=](std::size_t r, frame& rf) {
        // A node that answers garbage is a node that did not answer.
        const auto k = node_of_request[r];
        const auto& parts = b->nodes[k].second;
        if (auto reply = decode_node_query_reply(rf))
          for (const auto& a : reply->answers) {
            auto it = b->by_id.find(a.id);
            if (it != b->by_id.end() && !a.error.empty())
              b->qs[it->second].node_error = true;
            if (it == b->by_id.end() || !(*open)[k][it->second] || !a.error.empty()
                || !std::includes(parts.begin(), parts.end(), a.partitions.begin(),
                                  a.partitions.end()))
              continue;
            (*open)[k][it->second] = 0;
            on_answer(k, it->second, a);
          }
      },
      [](std::size_t, caf::error&) {}, std::move(done));
}

// The direct round for the nodes whose local answers were not certified,
// then the answers.
void recheck_round(caf::event_based_actor* self, const batch_ptr& b) {
  node_round(
      self, b, b->deadline, false,
      [b](std::size_t k, std::size_t i, dist::node_query& q) {
        const auto& x = b->qs[i];
        if (k >= x.recheck.size() || !x.recheck[k])
          return false;
        q.id = x.q.qid;
        q.kind = dist::node_query_kind::direct;
        q.n = x.q.req.n;
        q.profile = x.profile;
        q.stats = x.stats;
        return true;
      },
      [b](std::size_t, std::size_t i, const dist::node_answer& a) {
        dist::append_phase2(a, b->qs[i].candidates);
      },
      [b] {
        for (auto& x : b->qs)
          finish(*b, x);
      });
}

// After the local round, with the global statistics: the certified
// answers' candidates; true when some node must be asked again.
bool certify(recommend_batch::query& x, std::size_t n_nodes) {
  auto ok = dist::certify_local_answers(x.local, x.stats, x.q.req.n);
  bool any = false;
  x.recheck.assign(n_nodes, 0);
  for (std::size_t j = 0; j < x.local.size(); ++j) {
    if (ok[j]) {
      dist::append_phase2(x.local[j], x.candidates);
    } else {
      x.recheck[x.local_nodes[j]] = 1;
      any = true;
    }
  }
  x.local.clear();
  x.local_nodes.clear();
  return any;
}

// The first round: local (new users: moments and candidates under each
// node's own statistics) and direct (users with cached statistics), in one
// message per node.
void score_round(caf::event_based_actor* self, const batch_ptr& b,
                 const std::vector<caf::actor>& shards) {
  // A stuck node must leave a recheck time to run.
  bool may_recheck = std::any_of(b->qs.begin(), b->qs.end(),
                                 [](const auto& x) { return !x.done && !x.cached; });
  node_round(
      self, b, may_recheck ? b->score_deadline : b->deadline, true,
      [b](std::size_t, std::size_t i, dist::node_query& q) {
        auto& x = b->qs[i];
        q.id = x.q.qid;
        q.n = x.q.req.n;
        if (x.cached) {
          q.kind = dist::node_query_kind::direct;
          q.profile = std::move(x.profile); // asked once per round (same for every node)
          q.stats = x.stats;
        } else {
          q.kind = dist::node_query_kind::local;
          q.n = dist::local_n(q.n);
          q.profile = x.profile; // kept for a recheck
        }
        return true;
      },
      [b](std::size_t k, std::size_t i, const dist::node_answer& a) {
        auto& x = b->qs[i];
        if (x.cached) {
          dist::append_phase2(a, x.candidates);
        } else {
          x.moments.insert(x.moments.end(), a.moments.begin(), a.moments.end());
          x.local_nodes.push_back(k);
          x.local.push_back(a);
        }
      },
      [self, b, shards] {
        bool recheck = false;
        for (auto& x : b->qs) {
          if (x.done)
            continue;
          if (x.cached) {
            finish(*b, x);
            continue;
          }
          std::size_t components =
              x.moments.empty() ? 0 : x.moments.front().moments.size();
          auto stats = dist::combine_moments(x.moments, components, b->P);
          if (!stats) {
            if (!retry(*b, x)) // partitions of two model versions
              fail_query(x, to_caf_error(stats.err()));
            continue;
          }
          x.stats = std::move(*stats);
          // Complete statistics are the same for the next query of this
          // user until the models change: the user's partition keeps them.
          auto owner = core::partition_of(x.q.req.user, b->P);
          if (x.stats.missing.empty() && owner < shards.size() && shards[owner])
            self->send(shards[owner], cache_atom::value, x.q.req.user, encode(x.stats));
          if (certify(x, b->nodes.size()))
            recheck = true;
          else
            finish(*b, x);
        }
        if (recheck)
          recheck_round(self, b);
      });
}

} // namespace

bool check_recommend(const recommend_request& req, std::uint32_t partitions,
                     caf::typed_response_promise<frame>& rp) {
  auto refuse = [&](std::string msg) {
    rp.deliver(fail(core::errc::invalid_argument, std::move(msg)));
    return false;
  };
  if (partitions == 0)
    return refuse("no partition map yet");
  if (req.user.empty())
    return refuse("empty user id");
  if (!req.algo.empty() && req.algo != "hybrid")
    return refuse("the cluster serves the blend it trained (--algo hybrid); to serve '"
                  + req.algo + "' alone, train with --algo " + req.algo);
  if (req.n == 0 || req.n > 1000)
    return refuse("-n must be 1..1000");
  return true;
}

void run_recommend_batch(caf::event_based_actor* self,
                         const std::vector<caf::actor>& shards,
                         const std::vector<caf::actor>& node_of,
                         std::vector<queued_recommend> queued,
                         std::vector<queued_recommend>* requeue) {
  auto b = std::make_shared<recommend_batch>();
  b->P = static_cast<std::uint32_t>(shards.size());
  b->requeue = requeue;
  b->self = self;
  const auto start = clock::now();
  b->deadline = start + query_timeout;
  b->score_deadline = start + query_timeout * 6 / 10;
  // The profiles' own share: a hung owner fails its users' queries, not the
  // rounds of the whole batch.
  const auto profile_deadline = start + query_timeout * 3 / 10;
  for (std::uint32_t p = 0; p < node_of.size(); ++p) {
    if (!node_of[p])
      continue;
    auto it = std::find_if(b->nodes.begin(), b->nodes.end(),
                           [&](const auto& x) { return x.first == node_of[p]; });
    if (it == b->nodes.end())
      b->nodes.emplace_back(node_of[p], std::vector<std::uint32_t>{p});
    else
      it->second.push_back(p);
  }
  // The users' profiles: one request per owner partition.
  std::map<std::uint32_t, std::vector<std::size_t>> by_owner;
  for (auto& q : queued) {
    recommend_batch::query x;
    x.q = std::move(q);
    auto owner = core::partition_of(x.q.req.user, b->P);
    if (owner >= shards.size() || !shards[owner]) {
      fail_query(x, fail(core::errc::io_error, "partition " + std::to_string(owner)
                                                   + " owning user '" + x.q.req.user
                                                   + "' is unavailable"));
      continue;
    }
    b->by_id[x.q.qid] = b->qs.size();
    by_owner[owner].push_back(b->qs.size());
    b->qs.push_back(std::move(x));
  }
  std::vector<scatter_request> requests;
  std::vector<std::vector<std::size_t>> queries_of; // by request: batch query indexes
  for (auto& [owner, idx] : by_owner) {
    std::vector<std::string> users;
    for (auto i : idx)
      users.push_back(b->qs[i].q.req.user);
    requests.push_back(
        {shards[owner], caf::make_message(profile_atom::value, std::move(users))});
    queries_of.push_back(idx);
  }
  if (requests.empty())
    return;
  scatter<std::vector<frame>, std::vector<std::string>>(
      self, std::move(requests), time_left(profile_deadline),
      [b, queries_of](std::size_t r, std::vector<frame>& frames,
                      std::vector<std::string>& errors) {
        const auto& idx = queries_of[r];
        for (std::size_t k = 0; k < idx.size(); ++k) {
          auto& x = b->qs[idx[k]];
          if (k >= errors.size() || frames.size() < 2 * (k + 1)) {
            fail_query(x, fail(core::errc::io_error, "short profile reply"));
            continue;
          }
          if (!errors[k].empty()) {
            fail_query(x, fail(core::errc::invalid_argument, errors[k]));
            continue;
          }
          auto prof = decode_user_profile(frames[2 * k]);
          if (!prof) {
            fail_query(x, to_caf_error(prof.err()));
            continue;
          }
          // The nodes score without the content evidence; it stays here
          // for the explanations.
          x.profile = std::move(*prof);
          x.cold = cold_parts(x.profile);
          x.evidence.seen = x.profile.seen;
          x.evidence.seen_content = std::move(x.profile.seen_content);
          x.profile.seen_content.clear();
          if (!frames[2 * k + 1].bytes.empty()) {
            if (auto st = decode_blend_stats(frames[2 * k + 1])) {
              x.cached = true;
              x.stats = std::move(*st);
            }
          }
        }
      },
      [b, queries_of](std::size_t r, caf::error& err) {
        for (auto i : queries_of[r])
          fail_query(b->qs[i], err);
      },
      [self, b, shards] { score_round(self, b, shards); });
}

} // namespace shardrec::actors
