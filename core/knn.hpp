// Neighbourhood collaborative filtering: item-based and user-based kNN with
// cosine, adjusted cosine, Pearson, Pearson on baseline residuals and Jaccard
// similarities, KNNBaseline rating prediction (Koren 2010, eq. 3) and classic
// top-N scoring (Deshpande & Karypis 2004).
//
// Vocabulary. The "entities" are what is compared (items for item-based,
// users for user-based); the "raters" are the other side (users, resp. items).
// x_re is the transformed value of rater r on entity e (see similarity_kind).
//
// The similarity computation is split so that a cluster can distribute it and
// still reproduce item_neighbors() bit for bit:
//   (1) make_pair_context: per-matrix inputs fixed before any pair is seen
//       (rater means, baseline biases, the fixed-point scale, the quantised
//       values). Built once from the whole matrix and shared by every part.
//   (2) accumulate_pairs / accumulate_totals over any subset of raters (a
//       user partition): sufficient statistics per entity pair and per entity.
//   (3) merge: adds partials of disjoint rater subsets. All sums are 64-bit
//       integers over fixed-point values, so merging is exactly associative
//       and commutative: any split of the raters, merged in any order, gives
//       identical sums, hence identical neighbour lists.
//   (4) finalize_neighbors: similarity, shrinkage, support filter, top-k.
// item_neighbors() runs (2) over all raters and (4) one entity row at a time
// (rows in parallel), so it holds one dense row per thread, never all pairs.
//
// Cost: sum over raters of degree^2 pair updates (2.5e8 for a 6000 users x
// 4000 items x 950k ratings matrix: ~2-3 s on one core, 75 MB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/baseline.hpp"
#include "core/error.hpp"
#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

// How x_re is formed from the stored value v and how a pair is normalised.
// Sums marked "co-rated" run over the raters of both entities only.
enum class similarity_kind {
  // x = v; sum x_a x_b (co-rated) / (||x_a|| ||x_b||) with the norms over ALL
  // raters of each entity (vector cosine; on binary data this is Ochiai,
  // n_ab / sqrt(n_a n_b), which stays informative for implicit feedback).
  cosine,
  // Sarwar et al. 2001: x = v - mean of the rater's values; cosine over the
  // co-rated raters (numerator and both norms co-rated).
  adjusted_cosine,
  // Pearson correlation over the co-rated raters, each entity centred by its
  // mean over those co-rated raters (as Surprise's pearson).
  pearson,
  // Surprise's pearson_baseline: x = v - b_re (fit_biases residual), cosine
  // over the co-rated raters without further centring.
  pearson_baseline,
  // |raters(a) and raters(b)| / |raters(a) or raters(b)|; values ignored.
  jaccard,
};

// Names: "cosine", "adjusted_cosine", "pearson", "pearson_baseline", "jaccard".
std::optional<similarity_kind> parse_similarity(std::string_view s);
const char* to_string(similarity_kind k);

// Surprise's KNNBaseline bias options: ALS, reg_u 15, reg_i 10, 10 epochs.
inline baseline_config knn_default_baseline() {
  baseline_config c;
  c.reg_user = 15.0f;
  c.reg_item = 10.0f;
  c.iterations = 10;
  return c;
}

struct knn_config {
  // Best measured for rating prediction: ML-100K u1 item-based RMSE 0.934
  // (adjusted_cosine 0.935, pearson 0.937, jaccard 0.943, cosine 0.950).
  // For ranking on implicit data prefer cosine or jaccard: on all-equal
  // values the baseline residuals vanish and every similarity is 0.
  similarity_kind similarity = similarity_kind::pearson_baseline;
  // k: neighbours kept per entity for ranking and used per prediction.
  // 0 = unlimited.
  std::size_t neighbors = 40;
  // Final similarity = sim * n / (n + shrinkage), n = co-raters (>= 0).
  float shrinkage = 100.0f;
  // Pairs with fewer co-raters have similarity 0 (and are never neighbours).
  std::size_t min_support = 1;
  // true: KNNBaseline prediction b_ui + weighted residuals; false: KNNBasic,
  // the similarity-weighted mean of the neighbours' raw ratings.
  bool baseline_correction = true;
  // Length of the per-entity list the trained models keep for prediction
  // (the k most similar entities *rated by the user* are searched in it).
  // 0 = every positive similarity, which reproduces Surprise's choice exactly.
  // Values below `neighbors` are raised to it; ranking uses the first
  // `neighbors` entries.
  std::size_t prediction_pool = 0;
  // Biases for pearson_baseline and for prediction (Surprise's defaults).
  baseline_config baseline = knn_default_baseline();
  unsigned threads = 1;
};

struct neighbor {
  index_t id = 0;
  float similarity = 0.0f;
};

// One list per entity, sorted by similarity descending, ties by id ascending.
// Lists hold only similarities > 0 and never the entity itself.
using neighbor_lists = std::vector<std::vector<neighbor>>;

// Top-k lists of every item (compared over their users) / every user
// (compared over their items), k = cfg.neighbors. Independent of cfg.threads.
neighbor_lists item_neighbors(const interaction_matrix& m, const knn_config& cfg);
neighbor_lists user_neighbors(const interaction_matrix& m, const knn_config& cfg);

// Trained models. predicts_ratings() is true; ratings are clamped to
// [min, max] of the training values.
//
// Prediction for item-based (user-based is symmetric, swap users and items):
//   r_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j s_ij
// over the k items j most similar to i among those u rated with s_ij > 0;
// b_ui when there is none or u / i is outside the training shape. The model
// keeps for each item its `prediction_pool` best positive neighbours (default
// all of them, in a compact CSR: 8 B per positive pair) and walks that list
// in similarity order until k items rated by u are found, so the neighbours
// are those of Surprise's KNNBaseline, not "rated items within i's top-k".
//
// score_items: item-based score(i) = sum over items j of u of sim(j, i) for i
// in j's top-k list; user-based score(i) = sum over u's top-k users v who
// touched i of sim(u, v). Users outside the training shape or without
// interactions get the item popularity (training degree).
//
// explain: item-based, the user's items j having `item` in their top-k list,
// weight sim(j, item); user-based, the user's items j shared with the top-k
// neighbours who touched `item`, weight sum of sim(u, v) over those
// neighbours ("users who liked j like you also liked this").
std::unique_ptr<model> train_item_knn(const interaction_matrix& train,
                                      const knn_config& cfg);
std::unique_ptr<model> train_user_knn(const interaction_matrix& train,
                                      const knn_config& cfg);

// ---- The distributable pieces. ------------------------------------------

enum class knn_side {
  item, // entities = items, raters = users (item-based kNN)
  user, // entities = users, raters = items (user-based kNN)
};

// Fixed-point sufficient statistics of one ordered entity pair (a, b) over a
// set of co-raters. With q = llround(x * scale) (see pair_context):
//   n = co-raters, sxy = sum q_a q_b, sxx = sum q_a^2, syy = sum q_b^2,
//   sx = sum q_a, sy = sum q_b.
// The stats of (b, a) are those of (a, b) with x and y swapped. Fields the
// context's kind does not read stay 0: jaccard keeps n; cosine n, sxy;
// adjusted_cosine and pearson_baseline n, sxy, sxx, syy; pearson all.
struct pair_stats {
  std::int64_t n = 0;
  std::int64_t sxy = 0;
  std::int64_t sxx = 0;
  std::int64_t syy = 0;
  std::int64_t sx = 0;
  std::int64_t sy = 0;
};

// Which pair_stats fields a kind reads (the others stay 0, which saves most
// of the inner loop for cosine and jaccard).
enum class stat_level { count, dot, corated_norms, all };
stat_level level_of(similarity_kind k);

// Adds one co-rater with quantised values qa (of a) and qb (of b) to the
// stats of (a, b), the fields of level L only.
template <stat_level L>
inline void add_corater(pair_stats& s, std::int64_t qa, std::int64_t qb) {
  s.n += 1;
  if constexpr (L != stat_level::count)
    s.sxy += qa * qb;
  if constexpr (L == stat_level::corated_norms || L == stat_level::all) {
    s.sxx += qa * qa;
    s.syy += qb * qb;
  }
  if constexpr (L == stat_level::all) {
    s.sx += qa;
    s.sy += qb;
  }
}

// Per-entity statistics over ALL its raters in the subset: count and sum q^2
// (cosine norms, Jaccard unions).
struct entity_total {
  std::int64_t n = 0;
  std::int64_t sxx = 0;
};

// Inputs fixed before accumulation. Owns copies; independent of the matrix
// lifetime except that `q` is aligned with the matrix it was built from.
struct pair_context {
  knn_side side = knn_side::item;
  similarity_kind kind = similarity_kind::pearson_baseline;
  float shrinkage = 0.0f;
  std::size_t min_support = 1;
  // Values are quantised as q = llround(x * scale). scale is a power of two
  // chosen so that n_raters * (max |x| * scale)^2 <= 2^62: no 64-bit sum can
  // overflow, and the resolution (1 / scale) is ~1e-7 for 1..5 ratings.
  double scale = 1.0;
  std::vector<float> rater_mean; // adjusted_cosine: mean value of each rater
  biases bias;                   // pearson_baseline: fitted on the matrix
  // q of every stored cell in rater-major order: rater r's cells are
  // q[q_ptr[r] .. q_ptr[r+1]), aligned with user_row(r) (item side) or
  // item_col(r) (user side).
  std::vector<std::uint64_t> q_ptr;
  std::vector<std::int64_t> q;
};

// The largest power-of-two scale with n_raters * (max_abs * scale)^2 <= 2^62
// (capped at 2^40). A cluster computes max_abs by an all-reduce so that every
// partition quantises identically.
double pair_scale(double max_abs, std::size_t n_raters);

// Builds the context for `m`. `b` is required for pearson_baseline (else
// ignored; may be null). scale 0 = pair_scale(max |x| of m, raters of m).
// Returns invalid_argument when pearson_baseline lacks biases or the biases
// do not match the matrix shape.
result<pair_context> make_pair_context(const interaction_matrix& m, knn_side side,
                                       const knn_config& cfg, const biases* b,
                                       double scale = 0.0);

// Sparse rows of pair_stats for entities [entity_begin, entity_end): row a
// lists every b != a co-rated by at least one rater of the subset, ascending.
struct pair_sums {
  index_t entity_begin = 0;
  index_t entity_end = 0;
  std::vector<std::uint64_t> row_ptr; // size (entity_end - entity_begin) + 1
  std::vector<index_t> other;         // the b of each stored pair
  std::vector<pair_stats> stats;      // aligned with other
};

// Sums over the raters in `raters` (any order, no duplicates; every index
// < number of raters) for entity rows [entity_begin, entity_end).
// REQUIRES: ctx was built for m; entity_begin <= entity_end <= n entities.
// Cost: sum over raters r of deg(r) * (entities of r in the range); memory
// one dense row of pair_stats (48 B x entities) while building.
pair_sums accumulate_pairs(const interaction_matrix& m, const pair_context& ctx,
                           const std::vector<index_t>& raters, index_t entity_begin,
                           index_t entity_end);

// Per-entity totals over `raters` for every entity (size = n entities).
std::vector<entity_total> accumulate_totals(const interaction_matrix& m,
                                            const pair_context& ctx,
                                            const std::vector<index_t>& raters);

// into += from. The two must cover the same entity rows (resp. entities);
// invalid_argument otherwise. Exact (integer) addition.
status merge(pair_sums& into, const pair_sums& from);
status merge(std::vector<entity_total>& into, const std::vector<entity_total>& from);

// The similarity of the pair (a, b) after the support filter and shrinkage;
// may be negative. ta, tb: totals of a and b.
float pair_similarity(const pair_context& ctx, const pair_stats& s,
                      const entity_total& ta, const entity_total& tb);

// Neighbour lists of rows [sums.entity_begin, sums.entity_end): positive
// similarities only, sorted (similarity desc, id asc), first `keep` kept
// (0 = all). REQUIRES: totals cover every entity.
neighbor_lists finalize_neighbors(const pair_sums& sums,
                                  const std::vector<entity_total>& totals,
                                  const pair_context& ctx, std::size_t keep);

// The whole pipeline for one side with a prepared context.
neighbor_lists compute_neighbors(const interaction_matrix& m, const pair_context& ctx,
                                 std::size_t keep, unsigned threads);

// The same for some entities only: out[k] is the list of entities[k],
// identical to compute_neighbors(...)[entities[k]]. Totals run over every
// rater of m. REQUIRES: every entity < number of entities of m.
neighbor_lists compute_neighbors_of(const interaction_matrix& m, const pair_context& ctx,
                                    const std::vector<index_t>& entities,
                                    std::size_t keep, unsigned threads);

} // namespace shardrec::core
