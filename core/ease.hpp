// EASE, "Embarrassingly Shallow Autoencoders for Sparse Data" (Steck, WWW 2019):
// a dense item x item weight matrix B, the closed-form minimiser of
//   |X - X B|_F^2 + lambda |B|_F^2   subject to diag(B) = 0,
// namely, with P = (X^T X + lambda I)^-1,
//   B = I - P diag(1 / diag(P))   (B_ij = -P_ij / P_jj for i != j, B_jj = 0).
// The score of user u is x_u B, x_u the user's training row (stored values,
// so binarize the matrix first for binary EASE).
//
// Cost: X^T X in O(sum_u |S_u|^2), the inverse in O(I^3) time (double
// precision, single thread), and B in I^2 floats of memory: fine up to about
// 10,000 items (400 MB for B, a few minutes for the inverse at 10k; 1,682
// items take well under a second).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

struct ease_config {
  float lambda = 300.0f; // L2 penalty on B; > 0 (in units of X^T X entries)
};

// Row-major I x I; row j holds the weights item j gives to every item.
using ease_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The closed-form weights for `train` (see above). With `item_keys` (one per
// item, e.g. stable_hash of the external ids) the system is solved with the
// items in ascending (key, index) order, as the cluster solves it
// (dist/ease.hpp), so that both give the same floats; B is indexed by item
// index either way. The solve runs on `threads` threads; the floats do not
// depend on their number. REQUIRES: lambda > 0; item_keys null or of n_items.
ease_matrix ease_weights(const interaction_matrix& train, float lambda,
                         const std::vector<std::uint64_t>* item_keys = nullptr,
                         unsigned threads = 1);

// The solve itself: B from the Gram matrix G = X^T X (lower triangle used;
// the order of its rows is the order of B's), on `threads` threads (the
// same floats for any number). REQUIRES: lambda > 0.
ease_matrix ease_from_gram(Eigen::MatrixXd g, float lambda, unsigned threads = 1);

// score_items(u) = x_u B over the user's training row. Cold users (index >=
// the training rows, or an empty row) get item popularity (number of training
// cells per item) instead.
class ease_model final : public model {
public:
  ease_model(ease_matrix b, const interaction_matrix& train);

  std::string name() const override { return "ease"; }
  std::size_t n_items() const override { return static_cast<std::size_t>(b_.rows()); }
  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override;
  // The user's training items i with B[i][item] > 0, largest first (ties:
  // lower index first), at most max.
  std::vector<contribution> explain(index_t user, index_t item,
                                    std::size_t max) const override;

  const ease_matrix& weights() const { return b_; }

private:
  ease_matrix b_;
  std::vector<std::uint64_t> ptr_; // n_users + 1, the user's training row
  std::vector<index_t> item_;
  std::vector<float> value_;
  std::vector<float> popularity_;
};

// REQUIRES: cfg.lambda > 0
std::unique_ptr<model> train_ease(const interaction_matrix& train,
                                  const ease_config& cfg);

} // namespace shardrec::core
