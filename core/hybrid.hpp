// Weighted hybrid of several trained models.
//
// Ranking: every component scores all items for the user; each component's
// scores are standardised per user (z-score over the catalogue, so that a
// dot product and a neighbour vote become comparable), then blended:
//   score(u, i) = sum_c w_c * (s_c(u, i) - mean_c(u)) / std_c(u).
// The seed formula r = a*CF + (1 - a)*content is the two-component case.
// Rating prediction: the weighted mean of the components that predict
// ratings, with their own weights (rating_weight), renormalised.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/topn.hpp"

namespace shardrec::core {

struct hybrid_part {
  std::string name; // shown in explanations
  std::shared_ptr<const core::model>
      model;                  // REQUIRES: non-null, same n_items() for all parts
  float weight = 0.0f;        // weight in the ranking blend
  float rating_weight = 0.0f; // weight in the rating blend (rating predictors only)
};

// One component's share of a recommendation.
struct component_score {
  std::string name;
  float raw = 0.0f;          // the component's own score
  float normalised = 0.0f;   // z-score within the user's scores
  float contribution = 0.0f; // weight * normalised; contributions sum to the score
};

struct recommendation {
  index_t item = 0;
  float score = 0.0f;
  std::vector<component_score> components;
  std::vector<contribution> because; // items of the user behind the score
  std::string because_from;          // which component supplied `because`
};

class hybrid_model final : public model {
public:
  explicit hybrid_model(std::vector<hybrid_part> parts);

  std::string name() const override { return "hybrid"; }
  std::size_t n_items() const override { return n_items_; }
  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override;
  bool predicts_ratings() const override { return rating_weight_sum_ > 0; }
  float predict(index_t user, index_t item) const override;
  std::vector<contribution> explain(index_t user, index_t item,
                                    std::size_t max) const override;

  // Top-n with per-component contributions and up to `max_because` evidence
  // items. `exclude` as in top_n (sorted seen items).
  std::vector<recommendation>
  recommend(index_t user, std::size_t n, const index_t* exclude, std::size_t n_exclude,
            std::size_t max_because = 3,
            const std::function<bool(index_t)>& keep = {}) const;

  const std::vector<hybrid_part>& parts() const { return parts_; }

private:
  // Per-component standardised scores for one user: (n_items x parts) matrix.
  Eigen::MatrixXf component_scores(index_t user, Eigen::MatrixXf* raw) const;

  std::vector<hybrid_part> parts_;
  std::size_t n_items_ = 0;
  float rating_weight_sum_ = 0.0f;
};

// Standardises v in place to zero mean and unit standard deviation
// (all-equal input becomes all zeros).
void standardise(Eigen::Ref<Eigen::VectorXf> v);

} // namespace shardrec::core
