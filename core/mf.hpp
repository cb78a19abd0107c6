// Explicit-feedback matrix factorisation with biases:
//   r_hat(u, i) = mu + b_u + b_i + p_u . q_i,   clamped to [min_rating, max_rating].
//
// Two trainers share one kernel. Each half-step visits every user (then every
// item) and solves a (k+1) x (k+1) system over the augmented vector
// x_u = [p_u; b_u] with design rows z_i = [q_i; 1] and targets r_ui - mu - b_i
// (items symmetrically), so the biases are learnt together with the factors.
//
//  - mf_solver::als: alternating least squares minimising
//      L = sum_(u,i) (r_ui - r_hat)^2 + reg * (sum_u n_u |x_u|^2 + sum_i n_i |x_i|^2)
//    (weighted-lambda regularisation, ALS-WR, Zhou et al. 2008). Every half-step
//    is an exact minimisation, so L never increases.
//  - mf_solver::gibbs: Bayesian probabilistic MF (Salakhutdinov & Mnih 2008)
//    with the biases in the augmented vectors: x_u ~ N(mu_U, Lambda_U^-1) with a
//    Normal-Wishart hyperprior per side and a Gamma prior on the noise
//    precision, all sampled. The model predicts with the average over the
//    samples kept after burn-in (see mf_factors). Entities without training
//    ratings are not sampled; their factors and biases are 0.
//
// Determinism: every entity draws from its own random stream, seeded from
// (seed, sweep, side, index), and all reductions run in a fixed order, so the
// trained factors are identical for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

enum class mf_solver { als, gibbs };

struct mf_config {
  std::size_t factors = 10; // k, latent dimensions per sample
  int iterations = 100;     // sweeps (one sweep = users then items)
  float reg = 0.05f;        // ALS only: lambda of ALS-WR (scaled by the degree)
  mf_solver solver = mf_solver::gibbs;
  int burn_in = 20;      // gibbs only: sweeps discarded before averaging
  int thin = 4;          // gibbs only: keep every thin-th sample after burn-in
  std::uint64_t seed = 42;
  unsigned threads = 1;
  float init_std = 0.1f; // std of the random initial factors (biases start at 0)
  float min_rating = 1.0f, max_rating = 5.0f; // predictions are clamped
};

// Trained parameters, plain data. Rows of `user` / `item` (n_users x K and
// n_items x K, row-major, K = user.cols() = item.cols()) can be shipped as
// they are: prediction is always mu + user_bias[u] + item_bias[i] +
// user.row(u) . item.row(i).
//
// For ALS K = factors. For Gibbs the S kept samples are concatenated, each
// scaled by 1 / sqrt(S), so K = S * factors and the dot product equals the
// average of the S samples' dot products (biases hold the sample means): the
// Bayesian predictive mean, at the cost of one wider dot product.
struct mf_factors {
  float mu = 0.0f;
  Eigen::VectorXf user_bias; // n_users
  Eigen::VectorXf item_bias; // n_items
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> user; // n_users x K
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> item; // n_items x K
};

// The model over a set of factors. predict() clamps to [min_rating,
// max_rating]; users / items beyond the factor matrices are cold and get only
// the biases that exist (mu + b_i for an unknown user, mu + b_u for an unknown
// item). score_items(u) = mu + b_u + b_i + item * p_u (one matrix-vector
// product), i.e. the unclamped prediction.
class mf_model final : public model {
public:
  mf_model(mf_factors f, float min_rating, float max_rating);

  std::string name() const override { return "mf"; }
  std::size_t n_items() const override {
    return static_cast<std::size_t>(f_.item_bias.size());
  }
  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override;
  bool predicts_ratings() const override { return true; }
  float predict(index_t user, index_t item) const override;

  const mf_factors& factors() const { return f_; }

private:
  mf_factors f_;
  float min_rating_, max_rating_;
};

// Trains the factors. If loss_trace is given, one value is appended per sweep:
// for ALS the objective L above (never increasing); for Gibbs the training
// RMSE of that sweep's sample.
// REQUIRES: values of `train` are ratings; cfg.factors >= 1; cfg.iterations >= 1;
//           for gibbs, cfg.burn_in < cfg.iterations and cfg.thin >= 1.
mf_factors train_mf_factors(const interaction_matrix& train, const mf_config& cfg,
                            std::vector<double>* loss_trace = nullptr);

std::unique_ptr<model> train_mf(const interaction_matrix& train, const mf_config& cfg,
                                std::vector<double>* loss_trace = nullptr);

} // namespace shardrec::core
