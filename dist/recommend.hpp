// Distributed hybrid recommendation: scatter-gather top-N with explanations
// over item partitions, plus the distributed training of the two hybrid parts
// that need no iterative solver (content TF-IDF vectors and user profiles,
// popularity). Reproduces core::hybrid_model::recommend (hybrid.hpp) by
// external id: same raw component scores, same per-user z-scores over ALL
// items, same blend, same top-n, same explanations.
//
// Every step is a partition-local function over a dist::partition_store and
// plain message structs (external ids as strings, numbers, std::vector;
// row-major float vectors for factors). Nothing assumes threads or arrival
// order beyond what is stated at each step.
//
// MESSAGE FLOW (P partitions; "owner(x)" = partition_of(x, P)):
//
// A. Content, once per (re)training. Needs every partition in every step.
//   A1 each partition p:  count_content_df(store_p, cfg) -> content_df_partial
//                         sent to the coordinator.
//   A2 coordinator:       merge_content_df(all P partials, P, cfg)
//                         -> content_vocabulary, broadcast to every partition
//                         (sorted feature names + idf; feature id = rank, as in
//                         core content_index, so vectors are bit-identical).
//   A3 each partition:    build_item_vectors(store_p, voc, cfg): L2-normalised
//                         TF-IDF vectors of the owned items (kept; they go into
//                         partition_item_models::content).
//   A4 each partition p:  push_item_vectors(store_p, vectors) -> one
//                         content_vectors_message per partition q owning a rater
//                         of an owned item (q may be p): v_j once per (j, q),
//                         not once per rating. Volume <= P * items vectors.
//   A5 each partition q:  build_content_users(store_q, every message addressed
//                         to q, cfg) -> content_user_state: profiles
//                         p_u = normalise(sum_j w_uj v_j) of owned users, w_uj
//                         centred with the user's mean, which only owner(u)
//                         knows (so vectors travel, not contributions), plus
//                         the received vectors for content explanations.
//                         Order of the messages does not matter.
// B. Popularity: partition_popularity(store_p), local (complete columns).
// C. Query "top n for user u" (coordinator c):
//   C0 c -> owner(u): make_user_profile(store, user_models, u) -> user_profile
//                     (seen items, factors, content profile) -> c.
//   C1 c -> every p:  profile. p: s = partition_scorer::score(profile)
//                     (raw scores of every owned item and component, computed
//                     once and used again in C2); reply phase1_reply =
//                     moments(s, p).
//   C2 c:             combine_moments(replies, components, P) -> blend_stats
//                     (global mean / std per component, in double; missing
//                     partitions listed) -> every p that answered.
//                     p: select_candidates(scorer, s, profile, stats, n, 3, p)
//                     -> phase2_reply (its local top n, unseen items only,
//                     with components and explanations) -> c.
//   C3 c:             merge_candidates(replies, P, n) -> global top n; a
//                     partition that did not answer is listed in `missing`
//                     (union it with blend_stats::missing: the answer is then
//                     partial).
//   Replies may arrive in any order: combine and merge sort by partition /
//   rank key first, so the result does not depend on arrival order.
//   The cluster runs C1 and C2 in one round per node (node_query.hpp: kinds
//   local and direct); these per-partition steps are what it must equal.
//
// Ties: core top_n breaks equal scores by the dense item index (order of first
// appearance in its data set), which no partition knows. Here equal scores
// rank by external id ascending (byte-wise), in select_candidates and in
// merge_candidates alike, so the distributed top n is exact under that order;
// it differs from the core only in the order (or the cut) among items with
// bit-equal scores. Explanation items with equal weights are likewise ordered
// by external id.
//
// Cost per query and partition with I owned items: C1 is |seen| hash lookups
// + I * (k_ials + k_mf + mean reverse-list length) + the postings of the
// content profile's features; C2 is O(I * components + I log n) plus, for the
// n candidates only, the explanations (reverse list scan and |seen| sparse
// dot products).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/content.hpp"
#include "core/error.hpp"
#include "core/hybrid.hpp"
#include "core/ials.hpp"
#include "core/mf.hpp"
#include "core/partition.hpp"
#include "dist/ease.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// A sparse vector: features ascending and unique, weights aligned.
struct sparse_vector {
  std::vector<std::uint32_t> feature;
  std::vector<float> weight;
  bool empty() const { return feature.empty(); }
};

// ---- A. Content --------------------------------------------------------

// Document frequencies of the owned items' features (features as in
// content.hpp: "genre:x", "tag:x", "word:x"), before any df filter.
struct content_df_partial {
  std::uint32_t partition = 0;
  std::uint64_t n_documents = 0;     // owned items with at least one feature
  std::vector<std::string> features; // ascending
  std::vector<std::uint32_t> df;     // aligned with features
};

// A1. REQUIRES: store.built(); validate(cfg).ok()
content_df_partial count_content_df(const partition_store& store,
                                    const content_config& cfg);

// The global vocabulary after the min_df / max_df filter, as core
// build_content_index makes it: feature id = rank of the name.
struct content_vocabulary {
  std::uint64_t n_documents = 0;
  std::vector<std::string> features; // ascending
  std::vector<std::uint32_t> df;
  std::vector<float> idf;
};

// A2. Needs exactly one partial of each partition 0..partitions-1 (any order);
// invalid_argument naming the partition otherwise (the idf needs all).
// REQUIRES: validate(cfg).ok()
result<content_vocabulary> merge_content_df(const std::vector<content_df_partial>& parts,
                                            std::uint32_t partitions,
                                            const content_config& cfg);

// A3. Unit TF-IDF vectors of the owned items, indexed like store.items();
// empty for items without (retained) features.
std::vector<sparse_vector> build_item_vectors(const partition_store& store,
                                              const content_vocabulary& voc,
                                              const content_config& cfg);

// A3 for one owned item (store.items() index `row`): its unit TF-IDF vector
// under `voc`, empty without (retained) features. Also how an item that
// arrives after the training gets its vector at once (dist/live_items.hpp).
sparse_vector item_vector(const partition_store& store, std::size_t row,
                          const content_vocabulary& voc, const content_config& cfg);

// The vectors of some owned items of `from`, for the partition `to` that owns
// at least one of their raters. Items with an empty vector are not sent.
struct content_vectors_message {
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<std::string> items;
  std::vector<sparse_vector> vectors; // aligned with items
};

// A4. One message per destination, ascending `to`.
// REQUIRES: vectors.size() == store.items().size()
std::vector<content_vectors_message>
push_item_vectors(const partition_store& store,
                  const std::vector<sparse_vector>& vectors);

// What a partition keeps for the content part of its owned users.
struct content_user_state {
  // Unit profile of each owned user, indexed like store.users(); empty when
  // the user has no item with content or the weighted sum is zero (the
  // content component then falls back to popularity, as in core).
  std::vector<sparse_vector> profiles;
  // Vectors of the items the owned users touched, indexed like
  // store.item_refs() when built (empty: no content); shipped in profiles
  // for content explanations. Refs only grow, so events added after the
  // build leave these in place (a newer ref has no vector).
  std::vector<sparse_vector> ref_vectors;
  // The training's vocabulary (null: no content model), kept so that an
  // owned item newer than the model gets its vector at once (item_vector).
  std::shared_ptr<const content_vocabulary> vocabulary;
};

// One user's unit content profile from the user's cells (item_refs index,
// value, type): the weighted sum of the items' vectors (ref_vectors, indexed
// like item_refs; a ref without one adds nothing), weights as A5 below;
// empty when no item has content or the sum is zero.
struct profile_cell {
  index_t ref;
  float value;
  event_type type;
};
struct content_profile_scratch { // reused between calls: no allocation per user
  std::vector<double> acc;
  std::vector<std::uint32_t> touched;
};
sparse_vector content_profile(const std::vector<profile_cell>& cells,
                              const std::vector<sparse_vector>& ref_vectors,
                              const content_config& cfg,
                              content_profile_scratch& scratch);

// A5. `received`: every message addressed to this partition, any order
// (a duplicate of an item is harmless). invalid_argument if a message is
// addressed to another partition. Weights w_uj as core content (content.hpp):
// the cell value, or value - user mean when cfg.centre_ratings and every cell
// of the row is a rating (raw values if centring zeroes them all).
// REQUIRES: store.built(); validate(cfg).ok()
result<content_user_state>
build_content_users(const partition_store& store,
                    const std::vector<content_vectors_message>& received,
                    const content_config& cfg);

// ---- B. Popularity -----------------------------------------------------

// Number of users with a cell for each owned item (core popularity_scores with
// default config; also the cold-start prior of iALS (binary), itemknn and
// content), indexed like store.items(). REQUIRES: store.built()
std::vector<float> partition_popularity(const partition_store& store);

// ---- Models a partition scores with -------------------------------------

// One entry of item i's reverse neighbour list: an item j that has i among
// its top-k neighbours, and sim(j, i).
struct reverse_neighbor {
  std::string item;
  float similarity = 0.0f;
};

// Everything a partition needs to score its owned items. Each per-item array
// is either empty (the component is not available here) or has items.size()
// rows, aligned with `items`. Filled from distributed training results (or,
// in tests, sliced out of core models by external id).
struct partition_item_models {
  std::vector<std::string> items; // owned items' external ids; row r = items[r]
  std::size_t ials_factors = 0;
  std::vector<float> ials_item; // items.size() x ials_factors, row-major
  std::size_t mf_factors = 0;
  float mf_mu = 0.0f;              // global mean rating
  std::vector<float> mf_item;      // items.size() x mf_factors, row-major
  std::vector<float> mf_item_bias; // items.size()
  std::vector<std::vector<reverse_neighbor>> knn_reverse; // items.size() lists
  std::vector<float> popularity;                          // items.size()
  std::vector<sparse_vector> content;                     // items.size()
  // EASE (dist/ease.hpp): the catalogue it was solved over (null: no EASE)
  // and the owned items' columns of B, transposed so that a user's item
  // adds one contiguous row: ease_weight[pos * items.size() + r] =
  // B[catalogue item pos][owned item r] (owned items outside the catalogue:
  // zeros). ease->items.size() x items.size().
  std::shared_ptr<const ease_catalogue> ease;
  std::vector<float> ease_weight;
};

// The per-user data of the owned users, indexed like store.users(); empty
// arrays: component not available.
// What a partition keeps to fold a user's new events into the user's
// implicit-ALS factors between trainings (core::ials_fold_in: the user
// half-step's row solve against the final item factors): those factors for
// the items its users touched at the run's build (in key order, the order
// the trainer sums a row's cells in), where each item_ref's row is, the item
// Gram the solver uses and the run's settings. Immutable once packed.
struct ials_fold_in_data {
  ials_config cfg;              // the run's (keys unused: rows are in key order)
  std::uint64_t n_items = 0;    // the whole item side (the regulariser's n_other)
  ials_matrix items;            // rows x k
  std::vector<index_t> ref_row; // item_refs index (at the build) -> row; none: ~0
  Eigen::MatrixXf gram;         // k x k, as the user half-step solves with it
  // For the item side (items newer than the model, dist/live_items.hpp):
  // the user count (the item half-step's n_other) and the Gram of the final
  // user factors, as the last item half-step solved with it (empty: none).
  std::uint64_t n_users = 0;
  Eigen::MatrixXf user_gram;
};

// The rating-MF counterpart (core::mf_fold_in: the ALS user half-step's
// row solve): the final item rows (k factors, then the bias, in double as
// the trainer holds them) of the items the partition's users touched, in key
// order, where each item_ref's row is, the global mean and the settings.
struct mf_fold_in_data {
  mf_config cfg; // the run's (keys unused)
  double mu = 0.0;
  mf_rows items;                // rows x (k + 1)
  std::vector<index_t> ref_row; // item_refs index (at the build) -> row; none: ~0
};

struct mf_folded_row {
  std::vector<float> factors;
  float bias = 0.0f;
};

struct partition_user_models {
  std::size_t ials_factors = 0;
  std::vector<float> ials_user; // users x ials_factors, row-major
  // Fold-in (fold_in_user): null without iALS; folded rows of users with
  // events since the model's build replace ials_user's (or give a user newer
  // than the model factors at all).
  std::shared_ptr<const ials_fold_in_data> ials_fold;
  std::unordered_map<index_t, std::vector<float>> ials_folded;
  std::size_t mf_factors = 0;
  std::vector<float> mf_user;                     // users x mf_factors, row-major
  std::vector<float> mf_user_bias;                // users
  std::shared_ptr<const mf_fold_in_data> mf_fold; // null without MF
  std::unordered_map<index_t, mf_folded_row> mf_folded;
  content_user_state content;
};

// What the user's partition sends with a query.
struct user_profile {
  std::string user;
  // The user's items: the row of the last build, then those touched since
  // (excluded from the answer, item-kNN input).
  std::vector<std::string> seen;
  std::vector<float> seen_value; // their cell values
  // Content vectors of `seen` (aligned), for content explanations; empty
  // list: no content explanations.
  std::vector<sparse_vector> seen_content;
  std::vector<float> ials; // user factors; empty or all zero: cold (popularity)
  bool mf_known = false;   // false: MF scores mu + b_i
  std::vector<float> mf;
  float mf_bias = 0.0f;
  sparse_vector content; // unit profile; empty: cold (popularity)
};

// C0. A user the store does not know is cold (empty profile, not an error).
// The models cover the users the store had when they were trained (the
// first rows of store.users(), whose indices never change); a user who
// arrived later is cold for every model part it has no row in. Seen items
// are the user's row of the last build followed by the items touched since
// (partition_store::recent_items), so a new event counts at once. invalid_argument if the
// store does not own `user` or a model has more rows than store.users() or a ragged
// shape. REQUIRES: store.built()
result<user_profile> make_user_profile(const partition_store& store,
                                       const partition_user_models& models,
                                       std::string_view user,
                                       bool with_content_evidence = true);

// Folds `user`'s items now (the row of the last build, then the items
// touched since, with their values) into the user's model rows:
//  - iALS: against models.ials_fold (core::ials_fold_in, warm-started from
//    the model's row as the trainer's half-step is; zero for a user newer
//    than the model), kept in models.ials_folded;
//  - content: the profile from those items' vectors (content_profile), in
//    models.content.profiles (grown for a user newer than the model).
// Items the model has no factors or vector for (newer than its build) do
// not enter. Nothing for a part the model lacks or a user the store does
// not own. REQUIRES: store.built()
void fold_in_user(partition_user_models& models, const partition_store& store,
                  index_t user);

// ---- The blend -----------------------------------------------------------

enum class blend_kind { implicit_als, itemknn, content, popular, mf, ease };

struct blend_component {
  std::string name; // as in the hybrid: shown in explanations
  blend_kind kind = blend_kind::popular;
  float weight = 0.0f;
};
// Components in the hybrid's part order, weight != 0 only.
using blend_spec = std::vector<blend_component>;

// The kind of a hybrid part by name ("implicit-als", "itemknn", "content",
// "popular", "mf", "ease"); false for any other name.
bool blend_kind_of(std::string_view name, blend_kind& kind);

// The hybrid's ranking blend: parts with weight 0 dropped; invalid_argument
// for a part other than implicit-als, itemknn (top-k sum of similarities),
// content, popular, mf, ease.
result<blend_spec> blend_from_hybrid(const hybrid_model& h);

// ---- C. The query ------------------------------------------------------------

// Raw scores of one partition for one profile: component-major
// (raw[c * n_items + r] = component c of owned item r), plus which owned items
// and which reverse-list items the user has seen, from C1 for C2.
struct partition_scores {
  std::size_t n_items = 0;
  std::size_t n_components = 0;
  std::vector<float> raw;
  std::vector<std::uint8_t> seen_item;  // n_items
  std::vector<std::uint8_t> seen_ref;   // per distinct reverse-list item
  std::vector<std::uint32_t> seen_refs; // the set ones, ascending
  // EASE: catalogue positions of the seen items (ascending, unique), each
  // with its index in profile.seen.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ease_seen;
};

// Count, sum and sum of squares of one component's raw scores.
struct score_moments {
  std::uint64_t count = 0;
  double sum = 0.0;
  double sum_sq = 0.0;
};

struct phase1_reply {
  std::uint32_t partition = 0;
  std::vector<score_moments> moments; // one per blend component
};

// Global per-component standardisation: z = (raw - mean) * inv_std, as core
// standardise() (inv_std = 0 when the variance is <= 1e-20: all z are 0).
struct blend_stats {
  std::vector<float> mean;
  std::vector<float> inv_std;
  std::vector<std::uint32_t> missing; // partitions without a phase-1 reply
};

// z of one raw score under one component's statistics (0 when the component
// is constant): the one expression every blend in this file and
// node_query.hpp uses, so that scores computed in different places agree
// bit for bit.
inline float blend_z(float raw, float mean, float inv_std) {
  return inv_std == 0.0f ? 0.0f : (raw - mean) * inv_std;
}

struct evidence {
  std::string item;
  float weight = 0.0f;
};

struct candidate {
  std::string item;
  float score = 0.0f;
  std::vector<component_score> components; // blend order
  std::vector<evidence> because;           // up to max_because, weight desc
  std::string because_from;                // component name, or empty
  // What explain_candidates needs to (re)choose `because` wherever the
  // user's content evidence is: the user's items j with sim(j, item) from
  // the item-kNN reverse list (up to max_because, weight desc, id asc; spec
  // with itemknn only), and the item's content vector (spec with content
  // only).
  std::vector<evidence> knn_evidence;
  sparse_vector content;
  // The same for EASE (spec with ease only): the user's items i with
  // B[i][item] > 0, up to max_because, weight desc, id asc.
  std::vector<evidence> ease_evidence;
};

struct phase2_reply {
  std::uint32_t partition = 0;
  std::vector<candidate> candidates; // rank order
};

struct merged_recommendations {
  std::vector<candidate> items;       // rank order, at most n
  std::vector<std::uint32_t> missing; // partitions without a phase-2 reply
  bool partial() const { return !missing.empty(); }
};

// score desc, then external id asc: the order of every cut in this file.
bool candidate_ranks_before(const candidate& a, const candidate& b);

// What changed on the item side since a model's build, as a scorer serves
// it (partition_scorer::with_live): the popularity of every row now (the
// model's items, then the new ones: users with a cell for the item), and the
// items that arrived after the build with what is known of them so far (a
// content vector from their attributes under the model's vocabulary,
// factors folded in from their first events; zero / empty until then). A
// new item has no item-kNN list: its item-kNN score is 0 until a training
// gives it one. Immutable once shared; the partition makes a new one when
// its items change (dist/live_items.hpp).
struct live_item_rows {
  std::vector<float> popularity; // model rows + size()
  // New items: row = model rows + k. Shared between the rows of successive
  // updates while no item is added: a node's id dictionary refers to these
  // strings, and keeps them as long as the scorer it holds does.
  std::shared_ptr<const std::vector<std::string>> items;
  std::size_t size() const { return items ? items->size() : 0; }
  std::vector<float> ials_item;       // items.size() x ials_factors of the model
  std::vector<float> mf_item;         // items.size() x mf_factors of the model
  std::vector<float> mf_item_bias;    // items.size()
  std::vector<sparse_vector> content; // items.size()
};

// A partition's immutable scoring state: the item models plus indexes built
// once (owned id -> row, reverse lists over a dictionary of item ids, an
// inverted content index). Thread-safe for concurrent const calls.
class partition_scorer {
public:
  // invalid_argument when an array's size does not match items.size() or a
  // component of `spec` has no data here.
  static result<partition_scorer> make(partition_item_models models, blend_spec spec);

  // Rows: the model's items, then the live part's new items.
  std::size_t n_items() const {
    return t_->models.items.size() + (live_ ? live_->rows->size() : 0);
  }
  const blend_spec& spec() const { return spec_; }
  // True when the blend has a component of `kind`.
  bool serves(blend_kind kind) const {
    for (const auto& c : spec_)
      if (c.kind == kind)
        return true;
    return false;
  }
  // The trained models (without the live part).
  const partition_item_models& models() const { return t_->models; }
  // The live part, null when none was set.
  const std::shared_ptr<const live_item_rows>& live() const {
    static const std::shared_ptr<const live_item_rows> empty;
    return live_ ? live_->rows : empty;
  }

  // True when `o` knows exactly the ids this scorer knows, at the same
  // rows, in the same strings (the same trained part and the same new-item
  // list, live_item_rows::items): views of its ids stay valid with `o`.
  bool same_ids(const partition_scorer& o) const {
    auto ids = [](const partition_scorer& s) -> const void* {
      return s.live_ && s.live_->rows->size() > 0 ? s.live_->rows->items.get() : nullptr;
    };
    return t_ == o.t_ && ids(*this) == ids(o);
  }

  // A scorer that shares this one's trained part and scores with `rows`:
  // the popularity of every row, and the new items after the model's.
  // invalid_argument when a size does not match, a new item is one of the
  // model's or a duplicate. Null rows: the trained part alone.
  result<partition_scorer> with_live(std::shared_ptr<const live_item_rows> rows) const;

  // C1. invalid_argument if the profile's factor counts do not match.
  result<partition_scores> score(const user_profile& profile) const;

  // Where an item id is in this partition: its owned row and its index in
  // the reverse-list dictionary (none if absent).
  static constexpr std::uint32_t none = ~std::uint32_t{0};
  struct id_slot {
    std::uint32_t row = none;
    std::uint32_t ref = none;
  };
  // Calls f(id, stable_hash(id), slot) for every id this scorer knows
  // (owned items and reverse-list items), so that a node can resolve a
  // profile's ids once for all its partitions.
  template <class F> void for_each_id(F&& f) const {
    const auto& t = *t_;
    for (const auto& e : t.ids)
      if (e.slot.row != none || e.slot.ref != none) {
        std::string_view id(e.slot.row != none ? t.models.items[e.slot.row]
                                               : t.ref_ids[e.slot.ref]);
        // A reverse-list id that is also a new item: once, below.
        if (e.slot.row == none && live_ && live_->row_of.count(id))
          continue;
        f(id, e.hash, e.slot);
      }
    if (live_)
      for (std::size_t k = 0; k < live_->rows->size(); ++k) {
        std::string_view id((*live_->rows->items)[k]);
        f(id, stable_hash(id), live_->row_of.at(id));
      }
  }
  // C1 with the profile's seen ids already resolved (aligned with
  // profile.seen; none for ids this partition does not know).
  result<partition_scores> score_slots(const user_profile& profile,
                                       const std::vector<id_slot>& seen_slots) const;

  // C2. The local top n (unseen items, NaN scores skipped) under
  // candidate_ranks_before, with knn_evidence (up to max_because items) and
  // content filled; `because` is left to explain_candidates after C3.
  // REQUIRES: s = score(profile) of this scorer; stats for spec().size()
  phase2_reply select_candidates(const partition_scores& s, const user_profile& profile,
                                 const blend_stats& stats, std::size_t n,
                                 std::size_t max_because, std::uint32_t partition) const;

  // select_candidates in two steps: the rows of the local top n (rank
  // order), then the candidate of one of them. A node merges its
  // partitions' rows and makes candidates of the final n only.
  struct ranked_row {
    float score = 0.0f;
    std::uint32_t row = 0;
  };
  std::vector<ranked_row> top_rows(const partition_scores& s, const blend_stats& stats,
                                   std::size_t n) const;
  candidate make_candidate(const partition_scores& s, const user_profile& profile,
                           const blend_stats& stats, ranked_row e,
                           std::size_t max_because) const;
  const std::string& item_id(std::uint32_t row) const {
    return row < n_base() ? t_->models.items[row] : (*live_->rows->items)[row - n_base()];
  }

private:
  partition_scorer() = default;

  // The trained part, shared by the copies with_live makes: the item
  // models plus the indexes built once.
  struct trained_part {
    partition_item_models models;
    // One dictionary for every item id a query's seen list is looked up in:
    // its owned row and its reverse-list dictionary index (id_slot).
    // Open addressing by stable_hash (linear probing, at most half full): a
    // query looks up every item of the user in every partition, and a flat
    // table keeps those lookups within the cache. A hit is confirmed against
    // the id itself.
    struct id_entry {
      std::uint64_t hash = 0;
      id_slot slot;
    };
    std::vector<id_entry> ids;
    std::uint64_t ids_mask = 0;
    // Reverse lists as CSR over the dictionary ref_ids of the item ids they
    // name.
    // Refs are numbered in ascending id order, so adding the forward lists of
    // a user's items in ref order sums each item's score in the reverse lists'
    // (id-sorted) order: the forward and reverse views give the same floats.
    std::vector<std::string> ref_ids;
    std::vector<std::uint64_t> rev_ptr;
    std::vector<std::uint32_t> rev_ref;
    std::vector<float> rev_sim;
    // The same lists by source: fwd_ptr[ref] .. fwd_ptr[ref + 1] are the owned
    // rows (ascending) that ref_ids[ref] names, with sim(ref, row). Scoring a
    // user walks only the forward lists of the user's items.
    std::vector<std::uint64_t> fwd_ptr;
    std::vector<std::uint32_t> fwd_row;
    std::vector<float> fwd_sim;
    // Inverted content index over owned rows, rows ascending per feature.
    std::vector<std::uint64_t> feat_ptr;
    std::vector<std::uint32_t> post_row;
    std::vector<float> post_weight;
  };
  // The live part (with_live): the rows and an index of the new items' ids.
  struct live_part {
    std::shared_ptr<const live_item_rows> rows;
    // New item -> its slot: its row, and its ref when the trained reverse
    // lists name it too (one slot per id).
    std::unordered_map<std::string_view, id_slot> row_of;
  };
  static constexpr std::uint32_t none_ = none;
  blend_spec spec_;
  std::shared_ptr<const trained_part> t_;
  std::shared_ptr<const live_part> live_; // null: none
  std::size_t n_base() const { return t_->models.items.size(); }
  void index_ids(trained_part& t,
                 const std::unordered_map<std::string, id_slot>& ids) const;
  const id_slot* find_id(std::string_view id) const;
};

// Sets because / because_from of each candidate as hybrid_model::recommend:
// the evidence of the component with the largest contribution that has any
// (itemknn: c.knn_evidence; ease: c.ease_evidence; content: the seen items with cosine >
// 0 to c.content, from profile.seen_content), up to max_because items. A profile without
// seen_content gives no content evidence. The coordinator, which holds the user's content
// evidence, calls it on the merged top n (C3), so partitions need not receive that
// evidence.
void explain_candidates(std::vector<candidate>& cs, const user_profile& profile,
                        std::size_t max_because);

// C1 reply. Moments over every owned item (seen ones included: core
// standardises over the whole catalogue).
phase1_reply moments(const partition_scores& s, std::uint32_t partition);

// C2 at the coordinator. Any order of replies; invalid_argument for a
// partition out of range, a duplicate, or a wrong number of components.
// Partitions without a reply are listed in `missing` and the statistics are
// those of the items that answered.
result<blend_stats> combine_moments(const std::vector<phase1_reply>& replies,
                                    std::size_t n_components, std::uint32_t partitions);

// C3. Any order of replies; invalid_argument for a partition out of range or a
// duplicate.
result<merged_recommendations> merge_candidates(const std::vector<phase2_reply>& replies,
                                                std::uint32_t partitions, std::size_t n);

} // namespace shardrec::dist
