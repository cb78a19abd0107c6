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
// Phase S by row exchange in rounds (similarity):
//   S0  every p -> coordinator: scale_partial (local_scale). Coordinator:
//       scale = global_scale(all P), rounds = knn_rounds(sum of cells) ->
//       broadcast. Every p: make_local_context(store, side, cfg, biases,
//       scale).
//   S1  The entities are cut into `rounds` disjoint sets by a hash of their
//       id (round_of). For round m = 0 .. rounds-1, every p sends to every
//       NODE (its first partition) ONE rater_rows_block with the cells of
//       its raters on round m's entities (make_round_rows: the same block to
//       every node) and, with round 0 only, one block with the cells on the
//       receiving node's own entities (make_own_rows: each cell goes to one
//       node). A node's rows_gather keeps the own cells (own_columns: the
//       node's entities' columns, ~1/nodes of the cells) for the whole run
//       and holds only the current round's cells (~1/rounds of the cells)
//       at a time: finish() gives the round's gathered_raters, then the
//       gather waits for the next round. Every partition of the node adds
//       each round to its owned entities' lists (round_lists): the pairs
//       (a, b) with a owned and b in the round, summed over every rater as
//       core compute_neighbors does (the same integer sums), finalised with
//       the entity totals over all raters (exact: the round blocks carry
//       every rater's cells of their entities, the own blocks every rater of
//       the node's entities), and merged into the top k (the first k of
//       all pairs are the first k of each round's first k: the order is
//       total). Lists are bit-identical to core's for any rounds and nodes. Per node
//       memory falls as nodes are added: own cells / nodes + cells / rounds; the rows
//       cost one entry per cell and node (12 B: entity + q), plus the own cells once and
//       4 B per rater and round.
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
#include <memory>
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

// Local max |x| over the cells of p's raters, p's rater and cell counts.
struct scale_partial {
  std::uint32_t partition = 0;
  double max_abs = 0.0;
  std::uint64_t raters = 0;
  std::uint64_t cells = 0;
  std::size_t payload_bytes() const { return 28; }
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

// S1: the rows, in rounds.

// The argument of each S1 step (rows, gather, lists) of round `round`.
struct knn_round {
  double scale = 0.0; // global_scale
  std::uint32_t round = 0;
  std::uint32_t rounds = 1;
};

// Rounds for `cells` cells over all partitions: about 2^18 cells (3 MB of
// rows at each node) per round, at most 64 rounds.
std::uint32_t knn_rounds(std::uint64_t cells);

// The round that carries entity `id`'s cells. REQUIRES: rounds >= 1
std::uint32_t round_of(const std::string& id, std::uint32_t rounds);

// Some cells of p's raters: rater r's cells are entity[row_ptr[r] ..
// row_ptr[r+1]) (indices into ids) with values q (llround(x * scale) as in
// make_pair_context). The rows are p's raters with at least one cell, in
// the same order in every block p sends in a run (a row may be empty in a
// block); raters are anonymous (every partition sends its own, disjoint).
// own = false: the cells on the entities of round `round` (of `rounds`);
// own = true (round 0): the cells on the receiving node's entities.
struct rater_rows_block {
  knn_side side = knn_side::item;
  similarity_kind kind = similarity_kind::cosine;
  std::uint32_t from = 0;
  std::uint32_t to = 0; // the receiving partition (a node's first)
  std::uint32_t round = 0;
  std::uint32_t rounds = 1;
  bool own = false;
  std::vector<std::string> ids;
  std::vector<std::uint64_t> row_ptr{0}; // rows + 1
  std::vector<std::uint32_t> entity;
  std::vector<std::int64_t> q; // aligned with entity
  // ids (their bytes) + 4 B per row, 12 B per cell
  std::size_t payload_bytes() const;
};

// S1, the block of round `round`: every cell whose entity is in the round.
// ctx from make_local_context(s, ctx.side, ...); `to` is left 0.
// REQUIRES: s.built(), round < rounds
rater_rows_block make_round_rows(const partition_store& s, const pair_context& ctx,
                                 std::uint32_t round, std::uint32_t rounds);

// S1, with round 0 of `rounds`: the cells whose entity's partition d has
// node_of[d] == node (node_of: every partition's node, as its first
// partition; size P).
// REQUIRES: s.built(), node_of.size() == s.partitions(), rounds >= 1
rater_rows_block make_own_rows(const partition_store& s, const pair_context& ctx,
                               std::uint32_t node,
                               const std::vector<std::uint32_t>& node_of,
                               std::uint32_t rounds);

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

// The cells of a node's entities from every rater of the run (the own
// blocks): the column of each entity and its totals. Immutable; shared by
// the node's partitions for every round.
struct own_columns {
  std::vector<std::string> ids;          // ascending
  std::vector<std::uint64_t> col_ptr{0}; // ids + 1
  std::vector<std::uint32_t> rater;      // the node's rater index, ascending per column
  std::vector<std::int64_t> q;           // aligned with rater
  std::vector<entity_total> totals;      // aligned with ids
};

class gathered_raters;

// Some entities' lists, built round by round: each round's candidates are
// merged into the first `keep` (0 = all) by (similarity desc, id asc).
class round_lists {
public:
  round_lists(std::vector<std::string> entities, std::size_t keep);
  // The rounds added so far.
  std::uint32_t rounds_added() const { return added_; }
  // The lists, aligned with the entities given; call once every round was
  // added. An id no rater touched has an empty list.
  std::vector<entity_neighbors> take() { return std::move(lists_); }

private:
  friend class gathered_raters;
  std::vector<entity_neighbors> lists_;
  std::size_t keep_;
  std::uint32_t added_ = 0;
};

// One round at one node: every rater's cells on the round's entities, and
// the node's own columns. Immutable: the partitions of a node share one.
class gathered_raters {
public:
  std::uint32_t round() const { return round_; }
  std::uint32_t rounds() const { return rounds_; }
  // Adds this round to `lists` (the entities must be the node's; an entity
  // without cells gets nothing). invalid_argument unless lists has exactly
  // round() rounds added. The result does not depend on `threads`.
  status add_to(round_lists& lists, unsigned threads) const;
  // The round's entities and cells; the node's own cells (every round).
  std::size_t n_entities() const { return ids_.size(); }
  std::size_t n_cells() const { return entity_.size(); }
  std::size_t n_own_cells() const { return own_->rater.size(); }

private:
  friend class rows_gather;
  std::shared_ptr<const own_columns> own_;
  pair_context ctx_; // kind, shrinkage, min_support (q is already scaled)
  std::uint32_t round_ = 0;
  std::uint32_t rounds_ = 1;
  std::vector<std::string> ids_;          // the round's entities, ascending = their index
  std::vector<entity_total> totals_;      // aligned with ids_
  std::vector<std::uint64_t> row_ptr_{0}; // by the node's rater index
  std::vector<std::uint32_t> entity_;     // into ids_
  std::vector<std::int64_t> q_;           // aligned with entity_
};

// Receives the rater_rows_blocks of one training run at one node, round by
// round: P round blocks per round, and P own blocks with round 0.
class rows_gather {
public:
  // node: the node's first partition; node_of as for make_own_rows.
  // REQUIRES: partitions > 0, node_of.size() == partitions
  rows_gather(knn_side side, const knn_config& cfg, std::uint32_t partitions,
              std::uint32_t node, std::vector<std::uint32_t> node_of);

  // Any order within a round. bad_message when the block does not fit
  // (other side, kind, round or number of rounds; `from` out of range or
  // already received; malformed arrays; an entity outside the block's round
  // or node; rows that differ from the partition's other blocks); nothing
  // is kept then.
  status add(rater_rows_block blk);
  // Blocks of the current round that have not arrived, as partitions
  // ascending (a partition missing both blocks of round 0 is listed once).
  std::vector<std::uint32_t> missing() const;
  // invalid_argument naming the missing partitions unless the round is
  // complete. Consumes the round's blocks; the gather then expects the
  // next round.
  result<std::shared_ptr<const gathered_raters>> finish();

private:
  status build_own();
  knn_side side_;
  pair_context ctx_;
  std::uint32_t partitions_;
  std::uint32_t node_;
  std::vector<std::uint32_t> node_of_;
  std::uint32_t round_ = 0;
  std::uint32_t rounds_ = 0;                          // 0 until the first block
  std::vector<rater_rows_block> blocks_, own_blocks_; // by partition
  std::vector<char> have_, have_own_;
  std::vector<std::uint64_t> rows_;      // rows of each partition (from round 0)
  std::vector<std::uint64_t> first_row_; // the node's index of each partition's first row
  std::shared_ptr<const own_columns> own_;
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
