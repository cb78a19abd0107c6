#include "actors/query.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "core/dist_recommend.hpp"
#include "core/partition.hpp"

namespace shardrec::actors {

namespace {

using clock = std::chrono::steady_clock;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

std::chrono::milliseconds remaining(clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return std::max(left, std::chrono::milliseconds{1});
}

// Sends `inner` to each partition in `parts` through its node's control
// actor (one message per node; the node forwards to its shards locally) and
// calls on_frame with every frame that comes back, then done(). Partitions
// whose node is unreachable or late simply send nothing: the merges report
// them missing.
void fanout(caf::event_based_actor* self, const std::vector<caf::actor>& node_of,
            const std::vector<std::uint32_t>& parts, caf::message inner,
            clock::time_point deadline, std::function<void(const frame&)> on_frame,
            std::function<void()> done) {
  std::vector<std::pair<caf::actor, std::vector<std::uint32_t>>> nodes;
  for (auto p : parts) {
    if (p >= node_of.size() || !node_of[p])
      continue;
    auto it = std::find_if(nodes.begin(), nodes.end(),
                           [&](const auto& x) { return x.first == node_of[p]; });
    if (it == nodes.end())
      nodes.emplace_back(node_of[p], std::vector<std::uint32_t>{p});
    else
      it->second.push_back(p);
  }
  auto left = std::make_shared<std::size_t>(nodes.size());
  if (nodes.empty()) {
    done();
    return;
  }
  for (auto& [node, ps] : nodes) {
    self->request(node, remaining(deadline), fanout_atom::value, inner, ps)
        .then(
            [=](const std::vector<frame>& fs) mutable {
              for (const auto& f : fs)
                on_frame(f);
              if (--*left == 0)
                done();
            },
            [=](caf::error&) mutable {
              if (--*left == 0)
                done();
            });
  }
}

std::vector<std::uint32_t> all_partitions(std::uint32_t P) {
  std::vector<std::uint32_t> v(P);
  for (std::uint32_t p = 0; p < P; ++p)
    v[p] = p;
  return v;
}

recommend_reply to_reply(const std::string& user, const core::merged_recommendations& m,
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

// Sends `inner` (a select or direct request) to the partitions `parts` and
// delivers the merged top n; `missing` (partitions left out before this
// round) and the partitions that do not answer are reported.
void gather_candidates(caf::event_based_actor* self,
                       const std::vector<caf::actor>& node_of, std::uint32_t P,
                       const std::vector<std::uint32_t>& parts, caf::message inner,
                       std::string user, std::uint32_t n, frame evidence,
                       std::vector<std::uint32_t> missing, clock::time_point deadline,
                       caf::typed_response_promise<frame> rp) {
  auto got = std::make_shared<std::vector<core::phase2_reply>>();
  fanout(
      self, node_of, parts, std::move(inner), deadline,
      [=](const frame& f) {
        if (auto r = decode_phase2_reply(f))
          got->push_back(std::move(*r));
      },
      [=]() mutable {
        auto merged = core::merge_candidates(*got, P, n);
        if (!merged) {
          rp.deliver(to_caf_error(merged.err()));
          return;
        }
        // Explanations for the final n only, here where the user's content
        // evidence is (the partitions scored without it; no evidence frame:
        // item-kNN explanations only).
        core::user_profile ev;
        if (!evidence.bytes.empty()) {
          auto decoded = decode_user_profile(evidence);
          if (!decoded) {
            rp.deliver(to_caf_error(decoded.err()));
            return;
          }
          ev = std::move(*decoded);
        }
        core::explain_candidates(merged->items, ev, max_because);
        rp.deliver(encode(to_reply(user, *merged, missing)));
      });
}

// Phase 2: candidates from every partition that answered phase 1.
void phase2(caf::event_based_actor* self, const std::vector<caf::actor>& node_of,
            std::uint32_t P, std::string user, std::uint32_t n, std::uint64_t qid,
            core::blend_stats stats, frame evidence, clock::time_point deadline,
            caf::typed_response_promise<frame> rp) {
  std::vector<bool> asked(P, true);
  for (auto m : stats.missing)
    asked[m] = false;
  std::vector<std::uint32_t> parts;
  for (std::uint32_t p = 0; p < P; ++p)
    if (asked[p])
      parts.push_back(p);
  gather_candidates(self, node_of, P, parts,
                    caf::make_message(select_atom::value, qid, encode(stats), n),
                    std::move(user), n, std::move(evidence), stats.missing, deadline, rp);
}

// The single-round query for a user whose blend statistics are cached.
void direct(caf::event_based_actor* self, const std::vector<caf::actor>& node_of,
            std::uint32_t P, std::string user, std::uint32_t n, frame profile,
            frame stats_frame, frame evidence, clock::time_point deadline,
            caf::typed_response_promise<frame> rp) {
  gather_candidates(self, node_of, P, all_partitions(P),
                    caf::make_message(direct_atom::value, profile, stats_frame, n),
                    std::move(user), n, std::move(evidence), {}, deadline, rp);
}

} // namespace

void run_recommend(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                   const std::vector<caf::actor>& node_of, recommend_request req,
                   std::uint64_t qid, caf::typed_response_promise<frame> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (P == 0)
    return (void)rp.deliver(fail(core::errc::invalid_argument, "no partition map yet"));
  if (req.user.empty())
    return (void)rp.deliver(fail(core::errc::invalid_argument, "empty user id"));
  if (!req.algo.empty() && req.algo != "hybrid")
    return (void)rp.deliver(
        fail(core::errc::invalid_argument,
             "the cluster serves the blend it trained (--algo hybrid); to "
             "serve '"
                 + req.algo + "' alone, train with --algo " + req.algo));
  if (req.n == 0 || req.n > 1000)
    return (void)rp.deliver(fail(core::errc::invalid_argument, "-n must be 1..1000"));
  auto deadline = clock::now() + query_timeout;
  auto owner = core::partition_of(req.user, P);
  if (!shards[owner])
    return (void)rp.deliver(
        fail(core::errc::io_error, "partition " + std::to_string(owner) + " owning user '"
                                       + req.user + "' is unavailable"));
  self->request(shards[owner], remaining(deadline), profile_atom::value, req.user)
      .then(
          [=](const frame& profile, const frame& cached_stats,
              const frame& evidence) mutable {
            if (!cached_stats.bytes.empty()) {
              // Known user: one round, every partition scores and selects.
              direct(self, node_of, P, req.user, req.n, profile, cached_stats, evidence,
                     deadline, rp);
              return;
            }
            // Phase 1: moments of every component's scores from every partition.
            auto got = std::make_shared<std::vector<core::phase1_reply>>();
            fanout(
                self, node_of, all_partitions(P),
                caf::make_message(score_atom::value, qid, profile), deadline,
                [=](const frame& f) {
                  if (auto r = decode_phase1_reply(f))
                    got->push_back(std::move(*r));
                },
                [=]() mutable {
                  std::size_t components = got->empty() ? 0 : got->front().moments.size();
                  auto stats = core::combine_moments(*got, components, P);
                  if (!stats) {
                    rp.deliver(to_caf_error(stats.err()));
                    return;
                  }
                  // Complete statistics are the same for the next query of
                  // this user until the models change: the user's
                  // partition keeps them.
                  if (stats->missing.empty() && shards[owner])
                    self->send(shards[owner], cache_atom::value, req.user,
                               encode(*stats));
                  phase2(self, node_of, P, req.user, req.n, qid, std::move(*stats),
                         evidence, deadline, rp);
                });
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
}

void run_similar(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 similar_request req, caf::typed_response_promise<frame> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (P == 0 || req.item.empty())
    return (void)rp.deliver(fail(core::errc::invalid_argument, "empty item id"));
  auto owner = core::partition_of(req.item, P);
  if (!shards[owner]) {
    similar_reply r;
    r.item = req.item;
    r.partial = true;
    r.missing = {owner};
    return (void)rp.deliver(encode(r));
  }
  self->request(shards[owner], query_timeout, similar_atom::value, req.item, req.n)
      .then([=](const frame& f) mutable { rp.deliver(f); },
            [=](caf::error& err) mutable { rp.deliver(err); });
}

void run_predict(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 std::vector<std::string> users, std::vector<std::string> items,
                 caf::typed_response_promise<std::vector<float>> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (users.size() != items.size() || P == 0) {
    rp.deliver(
        fail(core::errc::invalid_argument, "predict: users and items differ in length"));
    return;
  }
  for (auto& s : shards)
    if (!s) {
      rp.deliver(fail(core::errc::io_error, "a partition is unavailable"));
      return;
    }
  struct job {
    std::vector<std::string> users, items;
    std::map<std::string, std::vector<float>> rows; // user -> k + 1 floats
    std::uint32_t k = 0;
    std::vector<float> out;
    std::size_t left = 0;
    bool failed = false;
  };
  auto j = std::make_shared<job>();
  j->users = std::move(users);
  j->items = std::move(items);
  j->out.assign(j->items.size(), 0.0f);
  auto deadline = clock::now() + admin_timeout;
  auto on_error = [=](caf::error& err) mutable {
    if (!j->failed)
      rp.deliver(err);
    j->failed = true;
  };
  // Step 2: every item partition predicts its pairs.
  auto predict = [=]() mutable {
    std::vector<std::vector<std::size_t>> by_item(P);
    for (std::size_t r = 0; r < j->items.size(); ++r)
      by_item[core::partition_of(j->items[r], P)].push_back(r);
    j->left = 0;
    for (const auto& v : by_item)
      j->left += v.empty() ? 0 : 1;
    if (j->left == 0) {
      rp.deliver(j->out);
      return;
    }
    for (std::uint32_t p = 0; p < P; ++p) {
      if (by_item[p].empty())
        continue;
      std::vector<std::string> its;
      std::vector<float> rows;
      for (auto r : by_item[p]) {
        its.push_back(j->items[r]);
        const auto& row = j->rows[j->users[r]];
        rows.insert(rows.end(), row.begin(), row.end());
      }
      auto idx = by_item[p];
      self->request(shards[p], remaining(deadline), predict_atom::value, std::move(its),
                    std::move(rows))
          .then(
              [=](const std::vector<float>& preds) mutable {
                for (std::size_t q = 0; q < idx.size() && q < preds.size(); ++q)
                  j->out[idx[q]] = preds[q];
                if (--j->left == 0 && !j->failed)
                  rp.deliver(j->out);
              },
              on_error);
    }
  };
  // Step 1: the users' MF rows from their partitions.
  std::vector<std::vector<std::string>> by_user(P);
  {
    std::set<std::string> seen(j->users.begin(), j->users.end());
    for (const auto& u : seen)
      by_user[core::partition_of(u, P)].push_back(u);
  }
  for (const auto& v : by_user)
    j->left += v.empty() ? 0 : 1;
  if (j->left == 0) {
    rp.deliver(j->out);
    return;
  }
  for (std::uint32_t p = 0; p < P; ++p) {
    if (by_user[p].empty())
      continue;
    auto us = by_user[p];
    self->request(shards[p], remaining(deadline), rows_atom::value, us)
        .then(
            [=](std::uint32_t k, const std::vector<float>& rows) mutable {
              j->k = k;
              for (std::size_t q = 0; q < us.size(); ++q)
                j->rows[us[q]].assign(
                    rows.begin() + static_cast<std::ptrdiff_t>(q * (k + 1)),
                    rows.begin() + static_cast<std::ptrdiff_t>((q + 1) * (k + 1)));
              if (--j->left == 0 && !j->failed)
                predict();
            },
            on_error);
  }
}

void run_local_fanout(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                      const std::vector<std::uint32_t>& partitions,
                      const caf::message& inner,
                      caf::typed_response_promise<std::vector<frame>> rp) {
  auto got = std::make_shared<std::vector<frame>>();
  auto left = std::make_shared<std::size_t>(partitions.size());
  if (partitions.empty()) {
    rp.deliver(std::vector<frame>{});
    return;
  }
  for (auto p : partitions) {
    if (p >= shards.size() || !shards[p]) {
      if (--*left == 0)
        rp.deliver(*got);
      continue;
    }
    self->request(shards[p], query_timeout, inner)
        .then(
            [=](const frame& f) mutable {
              got->push_back(f);
              if (--*left == 0)
                rp.deliver(*got);
            },
            [=](caf::error&) mutable {
              if (--*left == 0)
                rp.deliver(*got);
            });
  }
}

} // namespace shardrec::actors
