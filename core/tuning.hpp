// Tuning of the hybrid on the training data itself: a validation split is
// held out of the training events, the hyperparameters that matter most
// (iALS confidence scale and regularisation, EASE penalty, item-kNN
// neighbourhood size) and then the blend weights are
// searched on it, and the training that follows uses what won.
//
// The procedure (one definition for `eval --local` and the cluster's
// `train`, so that both choose the same):
//  1. Sample: every user when there are at most max_users, else the users
//     whose stable_hash(id) falls in the first max_users / n share of the
//     hash range (a rule any partition applies to its own users alone).
//  2. The sample's events ordered by (user id, timestamp), each user's
//     events with equal timestamps in their arrival order (which a cluster
//     keeps per user): how they were gathered does not matter.
//  3. Validation: each user's latest event (leave_last_out: a user with one
//     event keeps it); a seeded random fifth of the events when no event
//     has a timestamp. (Each user's latest fifth was tried: on Online
//     Retail it favours content, which predicts a whole next basket, and
//     the choice then loses to EASE alone on the next single event.)
//  4. The components: the default blend's, plus EASE when the catalogue is
//     within ease_max_items (weight 0 in the defaults). Each component's
//     variants, one setting changed at a time (iALS alpha 0.5 / 0.1 / 2
//     and reg 0.015 / 0.005 / 0.045; item-kNN neighbours 40 / 20 / 100;
//     EASE lambda 100 / 30 / 300 / 1000, only 100 beyond 2048 items)
//     trained on the rest; per variant the
//     validation NDCG@k alone; the best variant of each component is kept
//     when it beats the default variant by more than noise (two standard
//     errors of the per-user differences, a paired comparison), else the
//     default.
//  5. Blend weights: the defaults, then every point of a 0.1 grid on the
//     simplex of the kept components (popular excluded: it is every
//     component's cold-start prior). Every blend within noise of the best
//     validation NDCG@k (as in 4) counts as as good; among those the
//     defaults are kept if they are one, else the blend with the fewest
//     components (then the better mean). So the choice is never worse on
//     validation than the defaults beyond noise, and a simple blend is not
//     traded for a complicated one on the strength of a few users. The
//     grid's corners are the single components.
// Deterministic for a seed (iALS does not depend on the thread count).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/algorithms.hpp"
#include "core/dataset.hpp"
#include "core/error.hpp"

namespace shardrec::core {

struct tuning_options {
  std::size_t max_users = 5000; // users the validation is drawn from
  std::size_t k = 10;           // the cut-off of the validation metric
};

// What the training then uses: the hybrid's ranking weights and the
// hyperparameters (0: the default). knn_neighbors is 0 unless the blend
// has item-kNN (the lists also answer similar-items queries).
struct tuned_settings {
  std::string weights;
  float ials_alpha = 0.0f;
  float ials_reg = 0.0f;
  float ease_lambda = 0.0f;
  std::size_t knn_neighbors = 0;
};

struct tuning_trial {
  std::string what; // "implicit-als alpha=0.5", "blend ease=0.7,..."
  double ndcg = 0.0;
  double hit_rate = 0.0;
  double seconds = 0.0; // training and validating it (variants only)
};

struct tuning_report {
  tuned_settings chosen;
  std::string default_weights;
  std::string validation; // how the validation events were chosen
  std::size_t sample_users = 0;
  std::size_t validation_users = 0; // with a held-out item they had not seen
  std::size_t items = 0;
  tuning_trial defaults;              // the default blend on validation
  tuning_trial best;                  // the chosen blend on validation
  std::vector<tuning_trial> variants; // step 4, in the order tried
  std::size_t blends_tried = 0;
  double seconds = 0.0;
};

// Step 1 for one user, given the number of users in the data.
bool in_tuning_sample(std::string_view user, std::uint64_t n_users,
                      std::size_t max_users);

// An event of the sample with external ids, as a partition sends it.
struct sample_event {
  std::string user;
  std::string item;
  float value = 1.0f;
  event_type type = event_type::rating;
  std::int64_t timestamp = 0;
};

// One partition's share of the sample: its sampled users' events and the
// side information of its items that a sampled user touched.
struct tuning_sample_part {
  std::vector<sample_event> events;
  std::vector<std::pair<std::string, item_info>> items;
};

// Step 2: the sample as a data set (events canonical, item side information
// of `items` for the items the events name; items sorted by id).
dataset make_tuning_dataset(std::vector<sample_event> events,
                            std::vector<std::pair<std::string, item_info>> items);

// Steps 1 and 2 on a local data set: the training events of the sampled
// users, with their items' side information.
dataset tuning_sample(const dataset& ds, const std::vector<event>& train,
                      std::size_t max_users);

// Steps 3-5 on a sample. `base` supplies threads, seed, factors,
// iterations and ease_max_items; its weights and hyperparameters are
// ignored. invalid_argument when the sample leaves no validation user.
result<tuning_report> tune_hybrid(const dataset& sample, const algo_options& base,
                                  const tuning_options& opt = {});

} // namespace shardrec::core
