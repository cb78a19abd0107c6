// One partition's side of a training run, as plain values: the settings every
// partition trains with, one session object per algorithm that keeps what the
// partition holds between the steps of that algorithm, and the packing of the
// trained parts into the query-time models. A shard actor
// (actors/shard_train.cpp, actors/shard_state.hpp) owns these and only moves their inputs
// and outputs over the wire; tests can drive the same objects in one process.
//
// The step order of each algorithm is in dist/recommend.hpp (content),
// dist/knn.hpp (item-kNN by row exchange) and dist/als.hpp (iALS, MF).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/content.hpp"
#include "core/ease.hpp"
#include "core/ials.hpp"
#include "core/knn.hpp"
#include "core/mf.hpp"
#include "core/tuning.hpp"
#include "dist/als.hpp"
#include "dist/ease.hpp"
#include "dist/knn.hpp"
#include "dist/partition_store.hpp"
#include "dist/recommend.hpp"

namespace shardrec::dist {

using namespace shardrec::core;

// The settings of a cluster training run: the single-process hybrid's
// (core/algorithms.hpp), with the request's overrides (0 = default); the
// ALS settings get `threads` row solves per partition (results do not
// depend on it).
struct train_settings {
  ials_config ials;
  mf_config mf;
  knn_config knn;
  content_config content;
  ease_config ease;
};
train_settings make_train_settings(std::uint32_t factors, std::uint32_t iterations,
                                   std::uint64_t seed, unsigned threads);

// Content (TF-IDF), steps A1, A3-A5 of dist/recommend.hpp.
class content_session {
public:
  explicit content_session(content_config cfg = {}) : cfg_(std::move(cfg)) {}

  // A1: this partition's document frequencies.
  content_df_partial count_df(const partition_store& s) const;
  // A3 + A4: the owned items' vectors (kept) and the messages to the
  // partitions of their raters.
  std::vector<content_vectors_message> build_vectors(const partition_store& s,
                                                     const content_vocabulary& voc);
  // A4, receiving side: kept until finish_users.
  void receive(content_vectors_message m) { received_.push_back(std::move(m)); }
  // A5: the owned users' profiles from every message received.
  status finish_users(const partition_store& s);

  const std::vector<sparse_vector>& item_vectors() const { return item_vectors_; }
  const content_user_state& users() const { return users_; }

private:
  content_config cfg_;
  std::vector<sparse_vector> item_vectors_;
  std::vector<content_vectors_message> received_;
  content_user_state users_;
  std::shared_ptr<const content_vocabulary> vocabulary_; // of build_vectors
};

// The owned items' neighbour lists of a trained item-kNN, by external id.
class neighbor_lists {
public:
  explicit neighbor_lists(std::vector<entity_neighbors> lists);
  // The owned item's neighbours, or null when it has none (or is not owned).
  const entity_neighbors* find(const std::string& item) const;
  // Every list, in the order given to the constructor.
  const std::vector<entity_neighbors>& lists() const { return lists_; }

private:
  std::vector<entity_neighbors> lists_;
  std::map<std::string, std::size_t> index_;
};

// Item-kNN by row exchange in rounds (dist/knn.hpp, "Phase S by row
// exchange in rounds"): scale; per round every partition's rater rows to
// each node's first partition (its leader), which gathers the round and
// shares it with its node's partitions; each adds the round to its own
// items' lists; after the last round each sends the reverse entries.
class knn_session {
public:
  knn_session(std::uint32_t partitions, knn_config cfg);

  // This partition's share of the similarity scale. Resets the session for
  // store `s` (the owned items' reverse lists start empty).
  result<scale_partial> scale(const partition_store& s, const partition_store& bin);
  // The blocks of round r.round of this partition's users under the global
  // scale: one to every node (node_of as for make_own_rows; a node is the
  // partition d with node_of[d] == d), and with round 0 the node's own
  // cells too. The context is made at round 0 and kept until the last.
  result<std::vector<rater_rows_block>> rows(const partition_store& bin,
                                             const knn_round& r,
                                             const std::vector<std::uint32_t>& node_of);
  // Leader only: one partition's block; then the round of the node's peers.
  // The first block makes the gather for this node (the leader `node`).
  status add_rows(rater_rows_block b, std::uint32_t node,
                  const std::vector<std::uint32_t>& node_of);
  result<std::shared_ptr<const gathered_raters>> gather();
  // Every partition: the node's gathered round (from the leader).
  void set_raters(std::shared_ptr<const gathered_raters> r) { raters_ = std::move(r); }
  // Adds the round set last to the owned items' lists; after the last
  // round returns the reverse blocks for their partitions (else none).
  result<std::vector<reverse_block>> lists_round(const partition_store& s,
                                                 const knn_round& r, unsigned threads);
  // A reverse block addressed to this partition.
  status receive(const partition_store& s, const reverse_block& b);
  // Every reverse block of the run has arrived.
  void complete() { trained_ = true; }

  bool trained() const { return trained_; }
  // Owned items' reverse lists (indexed like s.items()) and neighbour lists
  // (null until the last round).
  const std::vector<std::vector<reverse_neighbor>>& reverse() const { return reverse_; }
  const std::shared_ptr<const neighbor_lists>& lists() const { return lists_; }

private:
  std::uint32_t partitions_;
  knn_config cfg_;
  std::optional<pair_context> ctx_; // this partition's cells, rounds 0 .. last
  std::unique_ptr<rows_gather> gather_;
  std::shared_ptr<const gathered_raters> raters_;
  std::unique_ptr<round_lists> building_;
  std::vector<std::vector<reverse_neighbor>> reverse_;
  std::shared_ptr<const neighbor_lists> lists_;
  bool scaled_ = false;
  bool trained_ = false;
};

// EASE (dist/ease.hpp): steps E3 and E5 at one partition.
class ease_session {
public:
  // E3: keeps the catalogue; the owned users' rows over it (`bin`: the
  // run's binarized store).
  ease_rows rows(const partition_store& bin, ease_catalogue cat);
  // E5: the columns of some owned items (a chunk; any order): items[r]'s
  // column is cols[r * n .. (r + 1) * n), n = the catalogue's size.
  // invalid_argument before E3, for a size that does not match or an item
  // the store does not own.
  status receive(const partition_store& s, const std::vector<std::string>& items,
                 const std::vector<float>& cols);
  bool trained() const { return cat_ != nullptr; }
  // The catalogue and the owned items' weights (store items order,
  // transposed: partition_item_models::ease_weight); items without a
  // column (none came) get zeros.
  void pack(const partition_store& s, partition_item_models& im) const;

private:
  std::shared_ptr<const ease_catalogue> cat_;
  std::unordered_map<std::string, std::vector<float>> columns_;
};

// This partition's share of the tuning sample (core/tuning.hpp, step 1):
// the events of its owned users in the sample, the information of its
// owned items that one of them touched. `n_users`: users in the whole data.
tuning_sample_part tuning_sample_of(const partition_store& s, std::uint64_t n_users,
                                    std::size_t max_users);

// What a partition serves after a training run.
struct served_models {
  std::shared_ptr<const partition_scorer> scorer;
  partition_user_models users;
  std::shared_ptr<const neighbor_lists> neighbors; // null without item-kNN
};

// Packs whatever was trained (null / empty parts were not) into the
// query-time models; components of `spec` whose part was not trained are
// left out of the blend.
result<served_models> pack_models(const partition_store& s,
                                  const std::vector<float>& popularity,
                                  const content_session* content, const knn_session* knn,
                                  const ials_partition* ials, const mf_partition* mf,
                                  const ease_session* ease, const blend_spec& spec);

} // namespace shardrec::dist
