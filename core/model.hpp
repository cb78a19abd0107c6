// The interface every trained recommender in core/ exposes, so that top-N,
// evaluation, hybrid blending and (later) shard actors treat them alike.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "core/dataset.hpp"

namespace shardrec::core {

// An item that contributed to a score, with its weight (e.g. a neighbour item
// the user touched and its similarity to the recommended item).
struct contribution {
  index_t item = 0;
  float weight = 0.0f;
};

// A trained, immutable model. Thread-safe for concurrent const calls; share it
// as std::shared_ptr<const model>.
class model {
public:
  virtual ~model() = default;

  // Short algorithm name ("itemknn", "mf", ...).
  virtual std::string name() const = 0;

  // Number of items the model scores (columns of the training matrix).
  virtual std::size_t n_items() const = 0;

  // Writes a ranking score for every item into `out`, higher is better.
  // Scores are comparable within one call only. Users unknown to the model
  // (index >= training rows, or no interactions) still get scores (fallback
  // to the model's prior, e.g. popularity or biases).
  // REQUIRES: out.size() == n_items()
  virtual void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const = 0;

  // True if predict() estimates ratings on the training scale.
  virtual bool predicts_ratings() const { return false; }

  // Predicted rating; only meaningful when predicts_ratings(). Must accept
  // user and item indices beyond the training shape (cold start).
  virtual float predict(index_t user, index_t item) const {
    (void)user;
    (void)item;
    return 0.0f;
  }

  // Why `item` scores for `user`: up to `max` items behind the score, largest
  // weight first. Empty for models without item-level evidence.
  virtual std::vector<contribution> explain(index_t user, index_t item,
                                            std::size_t max) const {
    (void)user;
    (void)item;
    (void)max;
    return {};
  }
};

} // namespace shardrec::core
