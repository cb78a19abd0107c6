// Baseline predictors: the global mean and regularised user/item biases
// (Koren 2010, "Factor in the neighbors", section 2.1):
//   b_ui = mu + b_u + b_i,
// fitted by alternating closed-form updates
//   b_i = sum_u (r_ui - mu - b_u) / (reg_item + n_i)
//   b_u = sum_i (r_ui - mu - b_i) / (reg_user + n_u).
#pragma once

#include <memory>
#include <vector>

#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

struct baseline_config {
  float reg_user = 5.0f;
  float reg_item = 10.0f;
  int iterations = 10;
};

// Fitted biases. Users / items beyond the vectors are cold: bias 0.
struct biases {
  float mu = 0.0f;
  std::vector<float> user; // size n_users
  std::vector<float> item; // size n_items

  float predict(index_t u, index_t i) const {
    float p = mu;
    if (u < user.size())
      p += user[u];
    if (i < item.size())
      p += item[i];
    return p;
  }
};

// REQUIRES: values of `train` are ratings (explicit feedback).
biases fit_biases(const interaction_matrix& train, const baseline_config& cfg);

// The biases as a model: predict = b_ui; ranking by mu + b_i (the user bias
// does not change a user's ranking).
std::unique_ptr<model> make_baseline_model(biases b, float min_rating, float max_rating);

} // namespace shardrec::core
