// CPU cost of one distributed hybrid top-10 query without the transport:
// the steps a cluster runs for it (bench/cluster.sh measures them over
// loopback TCP), in one process and one thread, on the synthetic
// 1,000,000-interaction set (6,000 users x 4,000 items, seed 1) cut into
// P = 7 partitions on 3 "nodes" (partition p on node p mod 3), next to the
// single-process hybrid on the same data in the same run.
//
//   build/shardrec_query_bench --benchmark_repetitions=3
//
// Steps per query (actors/query.cpp, dist/node_query.hpp), as the
// coordinator runs them for a user without cached statistics:
//   profile  the owner partition's make_user_profile, encoded and decoded;
//   local    one node batch per node (encoded, decoded, answered by the
//            node's engine with moments, candidates under the node's
//            statistics and their bound, the reply encoded and decoded);
//   stats    combine_moments; certify_local_answers;
//   recheck  a direct batch to the nodes not certified (counter
//            "rechecks": per query);
//   merge    merge_candidates and explain_candidates.
// A batch of B queries (the argument) shares each node message, as a
// coordinator's flush.
#include <benchmark/benchmark.h>

#include <memory>

#include "actors/codec_dist.hpp"
#include "core/algorithms.hpp"
#include "core/generator.hpp"
#include "core/hybrid.hpp"
#include "core/knn.hpp"
#include "core/partition.hpp"
#include "dist/node_query.hpp"
#include "dist/sliced_cluster.hpp"

using namespace shardrec;
using namespace shardrec::core;
using namespace shardrec::dist;

namespace {

constexpr std::uint32_t partitions = 7;
constexpr std::size_t nodes = 3;
constexpr std::size_t top_n = 10;
constexpr std::size_t because = 3;

struct world {
  dataset ds;
  interaction_matrix train;
  std::shared_ptr<const hybrid_model> hybrid;
  blend_spec spec;
  dist::sliced_cluster cluster;
  std::vector<node_query_engine> engines;
  std::vector<std::vector<std::uint32_t>> node_parts;
};

const world& the_world() {
  static std::unique_ptr<world> w;
  if (w)
    return *w;
  w = std::make_unique<world>();
  generator_config g;
  g.users = 6000;
  g.items = 4000;
  g.events = 1350000;
  g.seed = 1;
  w->ds = generate(g);
  w->train = interaction_matrix::build(w->ds.users.size(), w->ds.items.size(),
                                       w->ds.events, merge_policy::sum);
  algo_options opt;
  opt.algo = "hybrid";
  opt.threads = 2;
  auto m = train_algorithm(opt, w->ds, w->train);
  if (!m)
    std::abort();
  w->hybrid = std::dynamic_pointer_cast<const hybrid_model>(*m);
  auto spec = blend_from_hybrid(*w->hybrid);
  if (!w->hybrid || !spec)
    std::abort();
  w->spec = *spec;
  knn_config kc;
  kc.similarity = similarity_kind::cosine;
  auto nb = item_neighbors(w->train.binarized(), kc);
  w->cluster =
      dist::slice_hybrid(w->ds, *w->hybrid, nb, partitions, w->spec, merge_policy::sum);
  w->engines.resize(nodes);
  w->node_parts.resize(nodes);
  for (std::uint32_t p = 0; p < partitions; ++p) {
    w->engines[p % nodes].set_scorer(
        p, std::make_shared<const partition_scorer>(w->cluster.scorers[p]));
    w->node_parts[p % nodes].push_back(p);
  }
  return *w;
}

// One node round: every node gets the batch's queries make(i, q) accepts, over
// the wire format both ways; on_answer(i, answer) per answer, with *k_now
// the answering node.
template <class Make, class OnAnswer>
void node_round(world& w, std::size_t batch, Make make, OnAnswer on_answer,
                std::size_t* k_now) {
  for (std::size_t k = 0; k < nodes; ++k) {
    *k_now = k;
    node_query_batch nb;
    nb.partitions = w.node_parts[k];
    for (std::size_t i = 0; i < batch; ++i) {
      node_query q;
      q.id = i;
      if (make(i, q))
        nb.queries.push_back(std::move(q));
    }
    auto in = actors::decode_node_query_batch(actors::encode(nb));
    auto reply = w.engines[k].answer(*in, because);
    auto back = actors::decode_node_query_reply(actors::encode(reply));
    for (const auto& a : back->answers)
      on_answer(static_cast<std::size_t>(a.id), a);
  }
}

// The whole query path for users[first .. first + batch): one certified
// local round, then direct for the answers not certified; adds the rechecks
// to *rechecks.
std::size_t run_batch(world& w, std::size_t first, std::size_t batch,
                      std::size_t* rechecks) {
  struct query {
    user_profile profile, evidence;
    std::vector<phase1_reply> moments;
    blend_stats stats;
    std::vector<phase2_reply> candidates;
    std::vector<node_answer> local;
    std::vector<std::size_t> local_nodes;
    std::vector<std::uint8_t> recheck;
  };
  std::vector<query> qs(batch);
  const auto n_users = w.ds.users.size();
  for (std::size_t i = 0; i < batch; ++i) {
    const auto& user = w.ds.users.external(static_cast<index_t>((first + i) % n_users));
    const auto owner = partition_of(user, partitions);
    auto p = make_user_profile(w.cluster.stores[owner], w.cluster.users[owner], user);
    auto prof = actors::decode_user_profile(actors::encode(*p));
    qs[i].profile = std::move(*prof);
    qs[i].evidence.seen = qs[i].profile.seen;
    qs[i].evidence.seen_content = std::move(qs[i].profile.seen_content);
    qs[i].profile.seen_content.clear();
  }
  std::size_t k_now = 0;
  node_round(
      w, batch,
      [&](std::size_t i, node_query& q) {
        q.kind = node_query_kind::local;
        q.n = local_n(top_n);
        q.profile = qs[i].profile;
        return true;
      },
      [&](std::size_t i, const node_answer& a) {
        qs[i].moments.insert(qs[i].moments.end(), a.moments.begin(), a.moments.end());
        qs[i].local.push_back(a);
        qs[i].local_nodes.push_back(k_now);
      },
      &k_now);
  bool any = false;
  for (auto& x : qs) {
    x.stats = *combine_moments(x.moments, w.spec.size(), partitions);
    auto ok = certify_local_answers(x.local, x.stats, top_n);
    x.recheck.assign(nodes, 0);
    for (std::size_t j = 0; j < ok.size(); ++j) {
      if (ok[j]) {
        append_phase2(x.local[j], x.candidates);
      } else {
        x.recheck[x.local_nodes[j]] = 1;
        ++*rechecks;
        any = true;
      }
    }
  }
  if (any)
    node_round(
        w, batch,
        [&](std::size_t i, node_query& q) {
          if (!qs[i].recheck[k_now])
            return false;
          q.kind = node_query_kind::direct;
          q.n = top_n;
          q.stats = qs[i].stats;
          q.profile = qs[i].profile;
          return true;
        },
        [&](std::size_t i, const node_answer& a) { append_phase2(a, qs[i].candidates); },
        &k_now);
  std::size_t items = 0;
  for (auto& x : qs) {
    auto merged = merge_candidates(x.candidates, partitions, top_n);
    explain_candidates(merged->items, x.evidence, because);
    items += merged->items.size();
  }
  return items;
}

void BM_dist_query_pipeline(benchmark::State& state) {
  auto& w = const_cast<world&>(the_world());
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::size_t first = 0, items = 0, rechecks = 0;
  for (auto _ : state) {
    items += run_batch(w, first, batch, &rechecks);
    first += batch * 7;
  }
  benchmark::DoNotOptimize(items);
  state.SetLabel("one local round");
  state.counters["rechecks"] =
      static_cast<double>(rechecks) / static_cast<double>(state.iterations() * batch);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.counters["us_per_query"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_dist_query_pipeline)->Arg(1)->Arg(8)->Unit(benchmark::kMicrosecond);

// The single-process reference: core hybrid top-10 for the same users.
void BM_core_hybrid_top10(benchmark::State& state) {
  const auto& w = the_world();
  index_t u = 0;
  const auto n_users = static_cast<index_t>(w.train.n_users());
  for (auto _ : state) {
    auto row = w.train.user_row(u);
    benchmark::DoNotOptimize(w.hybrid->recommend(u, top_n, row.index, row.size, because));
    u = (u + 7) % n_users;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_core_hybrid_top10)->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
