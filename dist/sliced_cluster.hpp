// A P-partition "cluster" in one process, for tests and benchmarks of the
// distributed query path: partition stores fed with a data set, the content
// part trained with the distributed steps (recommend.hpp A1..A5), and
// the iALS, MF and item-kNN parts sliced out of a core hybrid model by
// external id. No actors: the same values a shard would hold.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/content.hpp"
#include "core/dataset.hpp"
#include "core/hybrid.hpp"
#include "core/knn.hpp"
#include "dist/partition_store.hpp"
#include "dist/recommend.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// The events of ds with external ids, as they travel to a cluster.
std::vector<dist::raw_event> raw_events_of(const core::dataset& ds);

// P stores fed with every event (each keeps what it owns), built with
// `policy`. Aborts on an event a store rejects.
std::vector<dist::partition_store> make_stores(const std::vector<dist::raw_event>& events,
                                               std::uint32_t P,
                                               core::merge_policy policy);

// The same for the events and item attributes of ds.
std::vector<dist::partition_store> make_stores(const core::dataset& ds, std::uint32_t P,
                                               core::merge_policy policy);

struct content_result {
  dist::content_vocabulary voc;
  std::vector<std::vector<dist::sparse_vector>> item_vectors; // per partition
  std::vector<dist::content_user_state> users;                // per partition
};

// Steps A1..A5; with `shuffle`, the messages of each step are delivered in a
// shuffled order. Aborts if a step fails.
content_result run_content(const std::vector<dist::partition_store>& stores,
                           const core::content_config& cfg,
                           std::mt19937* shuffle = nullptr);

struct sliced_cluster {
  std::vector<dist::partition_store> stores;
  std::vector<dist::partition_user_models> users;
  std::vector<dist::partition_scorer> scorers;
};

// Content and popularity trained the distributed way; iALS and MF factors
// from h's parts "implicit-als" and "mf" (both must be there), EASE weights
// from its part "ease" when it has one (over the catalogue of every
// store's items with a cell), item-kNN
// reverse lists from `neighbors` (core item_neighbors of the same data).
// Aborts if a scorer cannot be made for `spec`.
sliced_cluster slice_hybrid(const core::dataset& ds, const core::hybrid_model& h,
                            const core::neighbor_lists& neighbors, std::uint32_t P,
                            const dist::blend_spec& spec, core::merge_policy policy,
                            std::mt19937* shuffle = nullptr);

} // namespace shardrec::dist
