// Distributed baseline biases and kNN neighbour lists as partition-local steps
// over a partition_store plus plain message structs, reproducing core's
// fit_biases / item_neighbors / user_neighbors / knn model scoring.
//
// Partitions are p = 0..P-1 (core::partition_of on external ids); "owner(x)"
// is the partition owning user or item x. Every *_blocks / *_step function
// returns exactly P blocks, block d addressed to partition d (the one to
// itself included, possibly empty), so a receiver knows a phase is complete
// when it has one block of that phase from every partition. Receiving is
// order-independent everywhere (the results do not depend on arrival order).
//
// MESSAGE FLOW
//
// Phase B (biases; needed for pearson_baseline and KNNBaseline prediction):
//   B0  every p -> coordinator: mean_partial (local_mean). Coordinator:
//       mu = global_mean(all P partials) -> broadcast mu; every p:
//       init_biases(store, mu) (all biases 0, as fit_biases starts).
//   for sweep = 1..cfg.iterations:
//   B1  every p: item_bias_step -> P bias_blocks (b_i of owned items, to the
//       owners of their raters); every p: receive() all P blocks
//       (fills item_ref = b_i of every item its users rated).
//   B2  every p: user_bias_step -> P bias_blocks (b_u of owned users, to the
//       owners of their items); every p: receive() all P blocks
//       (fills user_ref = b_u of every rater of its items).
//   After the last B2 each p holds b_u (owned users), b_i (owned items) and
//   the b of every counterpart it stores. Equal to fit_biases up to float
//   rounding: the double sums run in local rather than core index order
//   (tests assert |diff| <= 1e-6; on ML-100K u1.base every value is
//   bit-identical, since sums of 1..5 ratings are exact in double).
//
// Phase S (similarity; side = item: entities items, raters users; side = user
// mirrors it: entities users, raters items):
//   S0  every p -> coordinator: scale_partial (local_scale). Coordinator:
//       scale = global_scale(all P) -> broadcast. Every p:
//       make_local_context(store, side, cfg, biases, scale).
//   S1  every p: make_pair_blocks(store, ctx) -> P pair_blocks: pair sums over
//       p's raters for every entity pair (a, b), rows grouped by owner(a).
//   S2  (only if needs_totals(kind): cosine, jaccard) every p:
//       make_totals_block -> one totals_block to EVERY partition (all-gather
//       of per-entity totals of p's owned entities).
//   S1 and S2 are independent and may interleave. Every p: a
//   neighbor_merger(store, side, cfg) receives its P pair_blocks (and P
//   totals_blocks), then finalize(k) gives the top-k lists of owned entities.
//   Merging is exact integer addition, so lists are bit-identical to core.
//
// Phase R (item-based ranking; after S with side = item):
//   R1  every p: make_reverse_blocks(lists, k) -> P reverse_blocks: for each
//       owned j and i in N_k(j), the triple (i, j, sim) goes to owner(i).
//       Every p: item_knn_scorer(store) receives its P blocks, finalize().
//   Query: the user's owner sends the user's item ids (make_user_query) to
//   every partition; each scores its owned items (score_owned / score) and
//   explains (explain). User-based: the user's owner sends N_k(u) instead;
//   user_knn_scorer::score_owned at every p; explain_user_knn needs the
//   item ids of the neighbours who touched the item (from their owners).
//
// Tie-breaking. Every list and explanation orders equal similarities (and
// weights) by external id ascending (byte-wise std::string order), and
// scores add contributions in that id order. Core breaks ties by dense index
// and adds in index order, so the two agree exactly (bit for bit) when the
// core dataset interns ids in sorted order, which is what the tests do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/baseline.hpp"
#include "core/error.hpp"
#include "core/knn.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// ---- Phase B: biases -----------------------------------------------------

// Sum and count of the values of p's owned users' rows (each cell once over
// all partitions). Payload: 4 + 8 + 8 bytes.
struct mean_partial {
  std::uint32_t partition = 0;
  double sum = 0.0;
  std::uint64_t count = 0;
  std::size_t payload_bytes() const { return 20; }
};

mean_partial local_mean(const partition_store& s);

// float(sum / count), the double partials added in partition order (so the
// coordinator's answer does not depend on arrival order). 0 if empty.
float global_mean(std::vector<mean_partial> parts);

enum class bias_side : std::uint8_t { user, item };

// (external id, bias) pairs sent from partition `from` to partition `to`.
struct bias_block {
  bias_side side = bias_side::item;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<std::string> ids;
  std::vector<float> values; // aligned with ids
  // sum of id lengths + 4 B per value (header fields not counted)
  std::size_t payload_bytes() const;
};

// One partition's biases. All vectors are indexed like the store's id maps
// and sized by init_biases.
struct partition_biases {
  float mu = 0.0f;
  std::vector<float> user;     // store.users()
  std::vector<float> item;     // store.items()
  std::vector<float> item_ref; // store.item_refs(): received b_i
  std::vector<float> user_ref; // store.user_refs(): received b_u
};

// REQUIRES: s.built()
partition_biases init_biases(const partition_store& s, float mu);

// b_i = sum_u (r_ui - mu - b_u) / (reg_item + n_i) for every owned item from
// its complete column and b.user_ref; returns P blocks, block d holding b_i
// of every owned item rated by a user owned by d.
std::vector<bias_block> item_bias_step(const partition_store& s,
                                       const baseline_config& cfg, partition_biases& b);

// b_u = sum_i (r_ui - mu - b_i) / (reg_user + n_u) for every owned user from
// its complete row and b.item_ref; returns P blocks, block d holding b_u of
// every owned user who rated an item owned by d.
std::vector<bias_block> user_bias_step(const partition_store& s,
                                       const baseline_config& cfg, partition_biases& b);

// Stores a block's values into b.item_ref (side item) or b.user_ref.
// bad_message if the block is not addressed to s or names an id s does not
// hold as item_ref (user_ref); nothing is changed then.
status receive(const partition_store& s, partition_biases& b, const bias_block& blk);

// ---- Phase S: neighbour lists ---------------------------------------------

// Local max |x| over the cells of p's raters and p's rater count.
struct scale_partial {
  std::uint32_t partition = 0;
  double max_abs = 0.0;
  std::uint64_t raters = 0;
  std::size_t payload_bytes() const { return 20; }
};

// REQUIRES: s.built(); b after phase B when cfg.similarity is
// pearson_baseline (invalid_argument if null then).
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

// Number of int64 statistics per pair a kind needs, in pair_stats field
// order (n, sxy, sxx, syy, sx, sy): jaccard 1, cosine 2, adjusted_cosine and
// pearson_baseline 4, pearson 6.
std::size_t stat_width(similarity_kind k);

// Pair sums over the raters of partition `from` for entity rows owned by
// `to`. Entities are named by index into `ids` (the block's dictionary).
// Row r is the pair list of entity ids[row_entity[r]]:
// other[row_ptr[r] .. row_ptr[r+1]) with statistics
// stats[k * width .. (k+1) * width), width = stat_width(kind).
struct pair_block {
  knn_side side = knn_side::item;
  similarity_kind kind = similarity_kind::cosine;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<std::string> ids;
  std::vector<std::uint32_t> row_entity;
  std::vector<std::uint64_t> row_ptr; // row_entity.size() + 1
  std::vector<std::uint32_t> other;
  std::vector<std::int64_t> stats;
  // ids (their bytes) + 4 B per row entity, 4 B per other, 8 B per stat
  // (row_ptr not counted: the wire can send row lengths, 4 B per row).
  std::size_t payload_bytes() const;
};

// S1: P blocks. ctx from make_local_context(s, side, ...). Rows are built
// `chunk_rows` entities at a time (memory: one dense row of 48 B x entities
// plus the chunk's pairs, besides the output).
std::vector<pair_block> make_pair_blocks(const partition_store& s,
                                         const pair_context& ctx,
                                         std::size_t chunk_rows = 4096);

// True for the kinds whose similarity reads per-entity totals (cosine norms,
// Jaccard unions); phase S2 is skipped for the others.
bool needs_totals(similarity_kind k);

// Totals of p's owned entities over all their raters (complete columns for
// side item, complete rows for side user): n and sum q^2.
struct totals_block {
  knn_side side = knn_side::item;
  std::uint32_t from = 0;
  std::vector<std::string> ids;
  std::vector<std::int64_t> n;       // aligned with ids
  std::vector<std::int64_t> sxx;     // aligned with ids
  std::size_t payload_bytes() const; // ids + 16 B per entity
};

// S2: one block (the same for every destination). REQUIRES: s.built().
totals_block make_totals_block(const partition_store& s, knn_side side, double scale);

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

// The receiving side of S1/S2 at one partition. Holds the merged sums of its
// owned entities' rows (one entry of 56 B per distinct pair).
class neighbor_merger {
public:
  // REQUIRES: s.built(). Copies what it needs (owned ids): s may change after.
  neighbor_merger(const partition_store& s, knn_side side, const knn_config& cfg);

  // Any order, exact. bad_message when the block does not fit (other side,
  // other kind, another partition's rows, malformed arrays).
  status add(const pair_block& blk);
  status add(const totals_block& blk);

  // Lists of every owned entity, indexed like store.items() (side item) or
  // store.users(). keep = 0: all positive similarities. invalid_argument
  // when needs_totals(kind) and an entity's totals never arrived.
  result<std::vector<entity_neighbors>> finalize(std::size_t keep) const;

private:
  struct entry {
    std::uint32_t other; // index into known_
    pair_stats stats;
  };
  knn_side side_;
  pair_context ctx_; // kind, shrinkage, min_support only
  std::uint32_t partition_;
  id_map owned_;
  id_map known_;                         // every entity named by a block
  std::vector<std::uint32_t> owned_key_; // owned index -> known_ index
  std::vector<std::vector<entry>> rows_; // per owned entity, sorted by other
  std::vector<entity_total> totals_;     // per known_ index
  std::vector<char> has_total_;
};

// ---- Phase S by row exchange (what the cluster runs) ------------------------
//
// S1' every p: make_rater_rows(store, ctx) -> ONE rater_rows_block with the
//     quantised cells of p's raters, sent once to every NODE (its first
//     partition), not once per partition. Each node: a rows_gather receives
//     the P blocks and finish() rebuilds the rater-side matrix of ALL raters
//     (entities interned in ascending id order); every partition of the node
//     then computes its owned entities' lists from it with
//     gathered_raters::neighbors, row by row as core compute_neighbors does.
//     Totals come from the gathered matrix: no S2.
//
// Why not the partial sums of S1/S2 above: they cost one stat entry per
// (partition, distinct co-rated pair), which for 1M cells over 4,000 items
// and P = 7 was 1.77 GB and 16 s; the rows cost one entry per cell and node
// (12 B: entity + q), ~12 MB per node for the same data, and the node does
// exactly the core's work for its share of the entities. The partial sums
// win only when raters touch fewer entities on average than there are
// nodes. Lists are bit-identical to core (same integer sums, same finalise).

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

// S1'. ctx from make_local_context(s, ctx.side, ...); `to` is left 0.
// REQUIRES: s.built()
rater_rows_block make_rater_rows(const partition_store& s, const pair_context& ctx);

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

// ---- Phase R: ranking ------------------------------------------------------

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

// A user's item ids, sorted ascending and unique: the order in which scores
// add up contributions.
struct user_query {
  std::vector<std::string> items;
};
user_query make_user_query(std::vector<std::string> items);

struct external_contribution {
  std::string item;
  float weight = 0.0f;
};

// Item-based kNN ranking of one partition's owned items (core's item knn
// model score_items / explain, restricted to the owned items).
class item_knn_scorer {
public:
  // REQUIRES: s.built()
  explicit item_knn_scorer(const partition_store& s);

  // Any order. bad_message if addressed elsewhere or naming an item not owned.
  status add(const reverse_block& blk);
  // Call once after the P blocks (sorts the reverse lists).
  void finalize();

  std::size_t n_items() const { return owned_.size(); }
  const std::string& item_id(index_t i) const { return owned_.external(i); }

  // Scores of every owned item (indexed like store.items()): sum over the
  // query's items j (in query order, float adds) of sim(j, i) for i in
  // N_k(j); an empty query gets the item popularity (training degree).
  std::vector<float> score_owned(const user_query& q) const;
  // One owned item; unknown_id if not owned.
  result<float> score(const user_query& q, std::string_view item) const;
  // The query's items j with `item` in N_k(j), weight sim(j, item), sorted
  // (weight desc, id asc), at most max. unknown_id if not owned.
  result<std::vector<external_contribution>>
  explain(const user_query& q, std::string_view item, std::size_t max) const;

private:
  struct source {
    std::string id; // j
    float similarity;
  };
  id_map owned_;
  std::vector<float> degree_;
  std::vector<std::vector<source>> rev_; // per owned item, sorted by id after finalize
  // j -> (owned item, sim), for score_owned
  std::vector<std::string> fwd_ids_; // sorted unique j
  std::vector<std::vector<std::pair<index_t, float>>> fwd_;
};

// User-based kNN ranking of one partition's owned items. `neighbors` is the
// user's list from phase S (side user), at most k entries in list order;
// user_has_items is false for a user without training interactions (then
// the popularity fallback, as core). Indexed like store.items().
class user_knn_scorer {
public:
  explicit user_knn_scorer(const partition_store& s);
  std::vector<float> score_owned(const std::vector<external_neighbor>& neighbors,
                                 bool user_has_items) const;

private:
  id_map user_refs_;
  interaction_matrix items_; // user_refs x owned items
};

// The items of a neighbour v of the user, for explain_user_knn.
struct neighbor_items {
  std::string id;
  float similarity = 0.0f;
  std::vector<std::string> items; // v's items, sorted ascending
};

// Core's user-based explain: for each query item j != item, weight = sum
// over the neighbours v (in the given list order) who touched `item` and j
// of sim(u, v); positive weights, sorted (weight desc, id asc), at most max.
// `neighbors`: the user's top-k list with item sets (those who did not
// touch `item` may be left out).
std::vector<external_contribution>
explain_user_knn(const user_query& q, std::string_view item,
                 const std::vector<neighbor_items>& neighbors, std::size_t max);

} // namespace shardrec::dist
