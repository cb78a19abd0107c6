// Speed and memory benchmarks of the single-process core on the synthetic
// 1,000,000-interaction set (6,000 users x 4,000 items, 1.35M generated
// events that merge into ~1.0M distinct cells, seed 1). Figures and
// the commands that made them: bench/RESULTS.md.
//
//   build/shardrec_bench --benchmark_filter=. --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <memory>

#include "core/algorithms.hpp"
#include "core/generator.hpp"
#include "core/hybrid.hpp"
#include "core/ials.hpp"
#include "core/interactions.hpp"
#include "core/knn.hpp"
#include "core/mf.hpp"
#include "core/topn.hpp"

using namespace shardrec::core;

namespace {

// The benchmark data set, generated once per process.
const dataset& synthetic(bool explicit_ratings) {
  static std::unique_ptr<dataset> implicit_ds, explicit_ds;
  auto& slot = explicit_ratings ? explicit_ds : implicit_ds;
  if (!slot) {
    generator_config cfg;
    cfg.users = 6000;
    cfg.items = 4000;
    cfg.events = 1350000; // ~1,000,000 distinct user-item cells after merging
    cfg.seed = 1;
    cfg.explicit_ratings = explicit_ratings;
    slot = std::make_unique<dataset>(generate(cfg));
  }
  return *slot;
}

interaction_matrix matrix_of(const dataset& ds, merge_policy p) {
  return interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events, p);
}

void BM_generate_1m(benchmark::State& state) {
  generator_config cfg;
  cfg.users = 6000;
  cfg.items = 4000;
  cfg.events = 1350000; // ~1,000,000 distinct user-item cells after merging
  cfg.seed = 1;
  for (auto _ : state)
    benchmark::DoNotOptimize(generate(cfg));
}
BENCHMARK(BM_generate_1m)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_build_store_1m(benchmark::State& state) {
  const auto& ds = synthetic(false);
  std::size_t bytes = 0, nnz = 0;
  for (auto _ : state) {
    auto m = matrix_of(ds, merge_policy::sum);
    bytes = m.memory_bytes();
    nnz = m.nnz();
  }
  state.counters["interactions"] = static_cast<double>(nnz);
  state.counters["bytes_per_interaction"] =
      static_cast<double>(bytes) / static_cast<double>(nnz);
}
BENCHMARK(BM_build_store_1m)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_implicit_als_1m(benchmark::State& state) {
  auto m = matrix_of(synthetic(false), merge_policy::sum).binarized();
  ials_config cfg;
  cfg.factors = 64;
  cfg.iterations = 15;
  cfg.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state)
    benchmark::DoNotOptimize(train_ials(m, cfg));
  state.counters["interactions"] = static_cast<double>(m.nnz());
}
BENCHMARK(BM_implicit_als_1m)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

void BM_explicit_mf_1m(benchmark::State& state) {
  auto m = matrix_of(synthetic(true), merge_policy::last);
  mf_config cfg;
  cfg.threads = 2;
  cfg.solver = state.range(0) == 0 ? mf_solver::als : mf_solver::gibbs;
  if (cfg.solver == mf_solver::als) {
    cfg.iterations = 12; // where held-out RMSE stops improving on this set
    cfg.reg = 0.05f;
  } else {
    cfg.iterations = 20;
    cfg.warm_start = 5;
    cfg.burn_in = 10;
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(train_mf(m, cfg));
  state.SetLabel(state.range(0) == 0 ? "als" : "gibbs");
  state.counters["interactions"] = static_cast<double>(m.nnz());
}
BENCHMARK(BM_explicit_mf_1m)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

// Item-item cosine neighbour lists (k = 40) on the binarized matrix: the
// single-process side of the cluster's item-kNN training (bench/cluster.sh).
void BM_item_neighbors_1m(benchmark::State& state) {
  auto m = matrix_of(synthetic(false), merge_policy::sum).binarized();
  knn_config cfg;
  cfg.similarity = similarity_kind::cosine;
  cfg.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state)
    benchmark::DoNotOptimize(item_neighbors(m, cfg));
  state.counters["interactions"] = static_cast<double>(m.nnz());
}
BENCHMARK(BM_item_neighbors_1m)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

// Latency of one top-10 hybrid recommendation (score all items, blend, cut).
void BM_hybrid_top10_1m(benchmark::State& state) {
  const auto& ds = synthetic(false);
  auto m = matrix_of(ds, merge_policy::sum);
  algo_options opt;
  opt.algo = "hybrid";
  opt.threads = 2;
  auto trained = train_algorithm(opt, ds, m);
  if (!trained.ok()) {
    state.SkipWithError(trained.err().message.c_str());
    return;
  }
  const auto& h = static_cast<const hybrid_model&>(**trained);
  index_t u = 0;
  for (auto _ : state) {
    auto row = m.user_row(u);
    benchmark::DoNotOptimize(h.recommend(u, 10, row.index, row.size, 2));
    u = (u + 7) % static_cast<index_t>(m.n_users());
  }
}
BENCHMARK(BM_hybrid_top10_1m)->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
