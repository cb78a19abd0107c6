// Content-based filtering: TF-IDF item vectors from item side information and
// user profiles built from the items a user touched.
//
// Features (one vocabulary, sorted by name, feature id = rank):
//   "genre:<g>"  each distinct genre of the item, lower-cased and trimmed;
//   "tag:<t>"    each distinct tag, lower-cased and trimmed;
//   "word:<w>"   words of the title and of the text: ASCII letters lower-cased,
//                bytes >= 0x80 kept, apostrophes dropped ("don't" -> "dont"),
//                every other byte (digits, punctuation, space) separates words;
//                words of one letter and a small English stop-word list are
//                skipped.
// Term frequency tf(f, i): 1 per distinct genre / tag, the number of
// occurrences for words; each occurrence is multiplied by the kind's weight
// (genre_weight, tag_weight, title_weight, text_weight).
// Kinds whose weight is 0 are not tokenised at all (no vocabulary, no df).
// Inverse document frequency over the N items with at least one feature
// (counted before the min_df / max_df filter):
//   smooth_idf = true:  idf(f) = ln((1 + N) / (1 + df(f))) + 1   (never 0, so a
//                       feature carried by every item still counts),
//   smooth_idf = false: idf(f) = ln(N / df(f)).
// Item vector v_i = tf * idf, L2-normalised; an item without features (or
// whose weights are all 0) has the zero vector, so every cosine with it is 0.
//
// Profile of user u: p_u = sum_j w_uj v_j over the items j of u's training row,
// L2-normalised, with w_uj = the cell value, or, when centre_ratings and every
// cell of the row is an explicit rating, the value minus the user's mean
// rating (so disliked items push the profile away). If centring leaves every
// weight at 0 (all ratings equal), the raw values are used.
// score(u, i) = cos(p_u, v_i) = p_u . v_i, in [-1, 1].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

struct content_config {
  bool centre_ratings = true;
  float min_df = 1;    // drop features carried by fewer items than this
  float max_df = 1.0f; // drop features carried by more than this fraction of the N items
  bool smooth_idf = true;
  float genre_weight = 1.0f;
  float tag_weight = 1.0f;
  float title_weight = 1.0f;
  float text_weight = 1.0f;
  unsigned threads = 1; // index build only; results do not depend on it
};

// Returns invalid_argument for a negative or non-finite weight, min_df < 0,
// or max_df outside (0, 1].
status validate(const content_config& cfg);

// An item's features with their term frequencies, sorted by name:
// "genre:<g>" and "tag:<t>" (lower-cased, each once, weight cfg.genre_weight /
// cfg.tag_weight) and "word:<w>" from title and text (tokenize_words, counted,
// weights cfg.title_weight / cfg.text_weight). Shared with the distributed
// content path (dist_recommend), so both build identical vectors.
using content_tokens = std::vector<std::pair<std::string, double>>; // name, tf
content_tokens item_tokens(const item_info& info, const content_config& cfg);

// Splits `s` into the words described above (no prefix), in order.
std::vector<std::string> tokenize_words(std::string_view s);

// The vocabulary and the L2-normalised item vectors, stored twice: by item
// (sparse rows sorted by feature) and by feature (an inverted index, items
// ascending). Immutable after build; safe for concurrent reads.
class content_index {
public:
  using feature_t = std::uint32_t;
  struct entry {
    feature_t feature = 0;
    float weight = 0.0f;
  };
  struct vector_view {
    const entry* data = nullptr;
    std::size_t size = 0;
    const entry* begin() const { return data; }
    const entry* end() const { return data + size; }
  };

  std::size_t n_items() const { return n_items_; }
  std::size_t n_features() const { return names_.size(); }
  // The N of the idf: items with at least one feature before df filtering.
  std::size_t n_documents() const { return n_documents_; }

  // REQUIRES: f < n_features()
  const std::string& feature_name(feature_t f) const { return names_[f]; }
  float idf(feature_t f) const { return idf_[f]; }
  std::uint32_t document_frequency(feature_t f) const { return df_[f]; }
  std::optional<feature_t> find_feature(std::string_view name) const;

  // The item's unit vector (empty for items without features or i >= n_items()).
  vector_view vector(index_t i) const;
  // Weight of feature f in item i's vector (0 if absent).
  float weight(index_t i, feature_t f) const;
  // Cosine similarity of two items; 0 if either has no features.
  float similarity(index_t i, index_t j) const;

  // out[i] = q . v_i for every item, via the inverted index: cost is the sum
  // of the posting lengths of q's features.
  // REQUIRES: q sorted by feature, unique features < n_features();
  //           out.size() == n_items()
  void dot_all(const std::vector<entry>& q, Eigen::Ref<Eigen::VectorXf> out) const;

  std::size_t memory_bytes() const;

private:
  friend content_index build_content_index(const std::vector<item_info>&, std::size_t,
                                           const content_config&);
  std::size_t n_items_ = 0;
  std::size_t n_documents_ = 0;
  std::vector<std::string> names_; // sorted ascending
  std::vector<float> idf_;
  std::vector<std::uint32_t> df_;
  std::vector<std::uint64_t> item_ptr_; // n_items + 1
  std::vector<entry> item_entries_;
  std::vector<std::uint64_t> feature_ptr_; // n_features + 1
  std::vector<index_t> posting_item_;
  std::vector<float> posting_weight_;
};

// Builds vectors for items 0..n_items-1 from items[i] (items beyond
// items.size() have no information; entries beyond n_items are ignored).
// REQUIRES: validate(cfg).ok()
content_index build_content_index(const std::vector<item_info>& items,
                                  std::size_t n_items, const content_config& cfg);

// The top-n items by cosine to `item`, excluding itself and items with a
// similarity <= 0; largest first, ties by lower index.
std::vector<std::pair<index_t, float>> similar_items(const content_index& index,
                                                     index_t item, std::size_t n);

// Model named "content" over a (possibly shared) index; train.n_items() must
// equal index->n_items(). The model copies each user's items and profile
// weights (8 B per training cell). Users beyond the matrix, without training
// items, or whose profile is zero (none of their items has content) get the
// item popularity in train (number of users) as a fallback prior.
// Implicit cells weigh by their value (a quantity for purchases, also for
// cancel cells); pass train.binarized() for one-vote-per-item profiles.
// explain(u, i, max): u's training items most content-similar to i (cosine
// > 0, i itself excluded), largest first, weight = the cosine.
// REQUIRES: validate(cfg).ok()
std::unique_ptr<model> make_content_model(std::shared_ptr<const content_index> index,
                                          const interaction_matrix& train,
                                          const content_config& cfg);

// build_content_index(ds.item_meta, train.n_items(), cfg) + make_content_model.
std::unique_ptr<model> train_content(const interaction_matrix& train, const dataset& ds,
                                     const content_config& cfg);

} // namespace shardrec::core
