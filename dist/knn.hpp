// Distributed kNN neighbour lists (item-kNN training by row exchange, what
// the cluster runs) as partition-local steps over a partition_store plus
// plain message structs, reproducing core's item_neighbors / user_neighbors
// bit for bit. dist/training.hpp (knn_session) drives the steps.
//
// Partitions are p = 0..P-1 (core::partition_of on external ids); "owner(x)"
// is the partition owning user or item x. make_reverse_blocks returns
// exactly P blocks, block d addressed to partition d (the one to itself
// included, possibly empty), so a receiver knows the phase is complete when
// it has one block from every partition. Receiving is order-independent
// everywhere (the results do not depend on arrival order).
//
// MESSAGE FLOW (side = item: entities items, raters users; side = user
// mirrors it: entities users, raters items):
//
// Phase S by row exchange (similarity):
//   S0  every p -> coordinator: scale_partial (local_scale). Coordinator:
//       scale = global_scale(all P) -> broadcast. Every p:
//       make_local_context(store, side, cfg, biases, scale).
//   S1  every p: make_rater_rows(store, ctx) -> ONE rater_rows_block with the
//       quantised cells of p's raters, sent once to every NODE (its first
//       partition), not once per partition. Each node: a rows_gather
//       receives the P blocks and finish() rebuilds the rater-side matrix of
//       ALL raters (entities interned in ascending id order); every
//       partition of the node then computes its owned entities' lists from
//       it with gathered_raters::neighbors, row by row as core
//       compute_neighbors does. Lists are bit-identical to core (same
//       integer sums, same finalise). The rows cost one entry per cell and
//       node (12 B: entity + q), ~12 MB per node for 1M cells.
//
// Phase R (reverse lists, for item-based ranking; after S with side = item):
//   R1  every p: make_reverse_blocks(lists, k) -> P reverse_blocks: for each
//       owned j and i in N_k(j), the triple (i, j, sim) goes to owner(i),
//       which keeps i's reverse list for scoring (dist/recommend.hpp).
//
// Tie-breaking. Every list orders equal similarities by external id
// ascending (byte-wise std::string order). Core breaks ties by dense index,
// so the two agree exactly (bit for bit) when the core dataset interns ids
// in sorted order, which is what the tests do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/baseline.hpp"
#include "core/error.hpp"
#include "core/knn.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// Baseline biases of one partition, for similarity pearson_baseline only
// (the cluster trains item-kNN with cosine and passes none). All vectors
// are indexed like the store's id maps.
struct partition_biases {
  float mu = 0.0f;
  std::vector<float> user;     // store.users()
  std::vector<float> item;     // store.items()
  std::vector<float> item_ref; // store.item_refs()
  std::vector<float> user_ref; // store.user_refs()
};

// ---- Phase S by row exchange (what the cluster runs) ----------------------------

// S0: the scale and the pair context.

// Local max |x| over the cells of p's raters and p's rater count.
struct scale_partial {
  std::uint32_t partition = 0;
  double max_abs = 0.0;
  std::uint64_t raters = 0;
  std::size_t payload_bytes() const { return 20; }
};

// REQUIRES: s.built(); b when cfg.similarity is pearson_baseline
// (invalid_argument if null then).
result<scale_partial> local_scale(const partition_store& s, knn_side side,
                                  const knn_config& cfg, const partition_biases* b);

// pair_scale(max of max_abs, sum of raters): the scale core would pick for
// the whole matrix.
double global_scale(const std::vector<scale_partial>& parts);

// The pair_context of p's rater-side matrix: user_matrix() for side item
// (raters = owned users, entities = item_refs), item_matrix() for side user
// (raters = owned items, entities = user_refs), quantised with the global
// scale, so every cell gets the q core gives it.
result<pair_context> make_local_context(const partition_store& s, knn_side side,
                                        const knn_config& cfg, const partition_biases* b,
                                        double scale);

// S1: the rows, gathered per node.

// The rows of p's raters: rater r's cells are entity[row_ptr[r] ..
// row_ptr[r+1]) (indices into ids) with values q (llround(x * scale) as in
// make_pair_context). Raters without cells are left out; raters are
// anonymous (every partition sends its own, disjoint).
struct rater_rows_block {
  knn_side side = knn_side::item;
  similarity_kind kind = similarity_kind::cosine;
  std::uint32_t from = 0;
  std::uint32_t to = 0; // the receiving partition (a node's first)
  std::vector<std::string> ids;
  std::vector<std::uint64_t> row_ptr{0}; // rows + 1
  std::vector<std::uint32_t> entity;
  std::vector<std::int64_t> q; // aligned with entity
  // ids (their bytes) + 4 B per row, 12 B per cell
  std::size_t payload_bytes() const;
};

// S1. ctx from make_local_context(s, ctx.side, ...); `to` is left 0.
// REQUIRES: s.built()
rater_rows_block make_rater_rows(const partition_store& s, const pair_context& ctx);

struct external_neighbor {
  std::string id;
  float similarity = 0.0f;
};

// One owned entity's list: positive similarities, sorted (similarity desc,
// id asc), at most k.
struct entity_neighbors {
  std::string id;
  std::vector<external_neighbor> neighbors;
};

// The rater-side matrix of all P partitions' raters, ready to compute any
// entity's list. Immutable: the partitions of a node share one.
class gathered_raters {
public:
  // Lists of the given entities (external ids), aligned with `entities`:
  // positive similarities, (similarity desc, id asc), first `keep` (0 =
  // all). An id no rater touched gets an empty list.
  std::vector<entity_neighbors> neighbors(const std::vector<std::string>& entities,
                                          std::size_t keep, unsigned threads) const;
  std::size_t n_entities() const { return ids_.size(); }
  std::size_t n_cells() const { return m_.nnz(); }

private:
  friend class rows_gather;
  interaction_matrix m_; // side item: raters x entities; side user: entities x raters
  pair_context ctx_;     // q aligned with the raters' cells
  std::vector<std::string> ids_; // entities, ascending = their index
};

// Receives the P rater_rows_blocks of one training run at one node.
class rows_gather {
public:
  // REQUIRES: partitions > 0
  rows_gather(knn_side side, const knn_config& cfg, std::uint32_t partitions);

  // Any order. bad_message when the block does not fit (other side or kind,
  // `from` out of range or already received, malformed arrays); nothing is
  // kept then.
  status add(rater_rows_block blk);
  // Partitions whose block has not arrived, ascending.
  std::vector<std::uint32_t> missing() const;
  // invalid_argument naming the missing partitions unless all P arrived.
  // Consumes the blocks.
  result<gathered_raters> finish();

private:
  knn_side side_;
  pair_context ctx_; // kind, shrinkage, min_support (q is already scaled)
  std::uint32_t partitions_;
  std::vector<rater_rows_block> blocks_; // by partition
  std::vector<char> have_;
};

// ---- Phase R: reverse lists ----------------------------------------------------

// Triples (target i, source j, sim): sim = sim(j, i) for i in N_k(j); i is
// owned by `to`, j by `from`. ids is the block's dictionary.
struct reverse_block {
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<std::string> ids;
  std::vector<std::uint32_t> target;
  std::vector<std::uint32_t> source;
  std::vector<float> similarity;
  std::size_t payload_bytes() const; // ids + 12 B per triple
};

// R1: P blocks from the lists of phase S (side item), first k entries of
// each list (0 = all).
std::vector<reverse_block> make_reverse_blocks(const std::vector<entity_neighbors>& lists,
                                               std::size_t k, std::uint32_t from,
                                               std::uint32_t partitions);

} // namespace shardrec::dist
