// One entry point that trains any of core/'s algorithms by name, with the
// settings we recommend as defaults. Used by `shardrec eval --local`, the demo
// and (later) the shard actors, so that every caller trains the same model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/dataset.hpp"
#include "core/ease.hpp"
#include "core/error.hpp"
#include "core/ials.hpp"
#include "core/interactions.hpp"
#include "core/knn.hpp"
#include "core/mf.hpp"
#include "core/model.hpp"

namespace shardrec::core {

// EASE is dense in the catalogue (n^2 weights): larger catalogues leave it
// out of the hybrid (and `--algo ease` is refused), here and in the cluster.
inline constexpr std::size_t default_ease_max_items = 10000;

struct algo_options {
  // baseline | popular | trending | itemknn | userknn | mf | implicit-als |
  // ease | content | hybrid
  std::string algo = "hybrid";
  std::size_t factors = 0; // 0: the algorithm's default
  int iterations = 0;      // 0: the algorithm's default
  std::uint64_t seed = 42;
  unsigned threads = 0; // 0: all hardware threads
  // hybrid only: "name=weight,..." over the algorithms above; empty: defaults
  // (see default_hybrid_weights()).
  std::string weights;
  std::string rating_weights;
  // mf only: "gibbs" (Bayesian MF, the accuracy default) or "als" (biased MF
  // by alternating least squares, what the cluster trains); "" = default.
  std::string solver;
  // ease only (alone or in the hybrid): the largest catalogue it trains on.
  std::size_t ease_max_items = default_ease_max_items;
  // Hyperparameters tuning may set (core/tuning.hpp); 0: the default.
  float ials_alpha = 0.0f;       // implicit-als confidence scale
  float ials_reg = 0.0f;         // implicit-als regularisation scale
  float ease_lambda = 0.0f;      // ease penalty
  std::size_t knn_neighbors = 0; // item-kNN / user-kNN neighbours kept
};

// True when some item carries side information (content can train).
bool has_content(const dataset& ds);

// "name=weight,..." as (name, weight) pairs; invalid_argument (naming
// `what`) for a malformed part, a negative weight or an unknown name.
result<std::vector<std::pair<std::string, float>>> parse_weights(const std::string& s,
                                                                 const char* what);

// A hybrid part that only ranks, as the hybrid trains it (the kNN parts on
// the binarized matrix by co-occurrence cosine, keeping only the top
// `neighbors` of each list, all ranking reads; the others as
// train_algorithm). Its predict() is not meant to be asked.
result<std::shared_ptr<const model>> train_ranking_part(const algo_options& opt,
                                                        const dataset& ds,
                                                        const interaction_matrix& train);

// The algorithm names train_algorithm() accepts.
const std::vector<std::string>& algorithm_names();

// Default hybrid blends for a data set: ranking weights and rating weights,
// in the "name=weight,..." form. `has_content`: items carry side information.
std::string default_hybrid_weights(bool has_content);
std::string default_hybrid_rating_weights();

// The settings of the hybrid's parts, one definition for this process and the
// cluster (dist/ trains the same models with them). 0 = the default for
// factors and iterations. Threads, keys and rating range are the caller's.
// Item-kNN when it ranks: co-occurrence cosine on the binarized matrix.
knn_config ranking_knn_config();
// Biased MF by the Gibbs sampler (the default, in eval --local and in the
// cluster): mf_config's defaults. With fewer sweeps than the burn-in, the
// burn-in becomes a fifth of the sweeps (as 20 of 100).
mf_config mf_gibbs_config(std::size_t factors, int iterations, std::uint64_t seed);
// Biased MF by ALS (`--solver als`).
mf_config mf_als_config(std::size_t factors, int iterations, std::uint64_t seed);
// Implicit ALS weighted by confidence (binary false, alpha 0.5): see
// algorithms.cpp for how alpha was chosen.
ials_config ials_settings(std::size_t factors, int iterations, std::uint64_t seed);
// EASE: the penalty; see algorithms.cpp for how it was chosen.
ease_config ease_settings();
// The items with at least one training cell: EASE's catalogue.
std::size_t ease_catalogue_size(const interaction_matrix& train);

// Initial factors of implicit ALS and MF are seeded from stable_hash of the
// external ids (not from dense indices), so a cluster that partitions the
// same data trains the same factors.
//
// Trains `opt.algo` on `train` (one cell per user-item pair; values are
// ratings or event weights). Ranking-only algorithms (implicit-als, ease,
// itemknn/userknn scores, popular) treat every cell as one interaction for
// ranking; rating predictors use the values. `ds` supplies item side
// information (content) and the rating scale.
// Returns errc::invalid_argument for an unknown algorithm or bad weights.
result<std::shared_ptr<const model>> train_algorithm(const algo_options& opt,
                                                     const dataset& ds,
                                                     const interaction_matrix& train);

} // namespace shardrec::core
