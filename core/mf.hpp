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
//    Normal-Wishart hyperprior per side (mu_0 = 0, beta_0 = 2, nu_0 = k + 1,
//    W_0 = I) and a Gamma(1, 1) prior on the noise precision, all sampled. Each
//    half-step is the ALS system above with Lambda in place of reg * n * I,
//    plus a Gaussian draw. The trained factors are the posterior means (the
//    average of the samples after burn-in); on ML-100K this predicts as well as
//    averaging the samples' predictions (u1..u5 mean RMSE 0.8984 vs 0.8983).
//    Entities without training ratings are not sampled; their factors and
//    biases are 0.
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

#include "core/error.hpp"
#include "core/exact_sum.hpp"
#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

enum class mf_solver { als, gibbs };

// Defaults chosen on a 90/10 holdout of the ML-100K u1.base and u2.base
// training sets (never on the test folds): gibbs, k = 10, 100 sweeps, 20 burn-in.
struct mf_config {
  std::size_t factors = 10; // k, latent dimensions
  int iterations = 100;     // sweeps; one sweep updates all users, then all items
  float reg = 0.05f;        // ALS lambda (ALS-WR: multiplied by the entity's degree)
  mf_solver solver = mf_solver::gibbs;
  int burn_in = 20; // gibbs: sweeps before the posterior averaging starts
  // gibbs: the first warm_start sweeps are ALS sweeps (<= burn_in). On large,
  // dense data (1M synthetic ratings) a chain started from init_std-sized
  // factors can sit for ~50 sweeps near the bias-only solution; 5 ALS sweeps
  // avoid that. On ML-100K the cold start predicts better (holdout 0.901 vs
  // 0.906), hence 0 by default.
  int warm_start = 0;
  std::uint64_t seed = 42;
  unsigned threads = 1;
  float init_std = 0.1f; // std of the random initial factors (biases start at 0)
  float min_rating = 1.0f, max_rating = 5.0f; // predictions are clamped
  // Optional 64-bit keys of the users / items (the cluster uses
  // stable_hash(external id)). As in ials_config: when set, row r's initial
  // factors come from the stream of (seed, side, (*keys)[r])
  // (mf_init_keyed_rows) and every row's cells are summed in ascending key
  // order, so the distributed ALS trainer (dist/als.hpp) reproduces
  // this trainer. Not owned; must outlive training. REQUIRES: size n_users /
  // n_items of the training matrix. nullptr (default): by index.
  const std::vector<std::uint64_t>* user_keys = nullptr;
  const std::vector<std::uint64_t>* item_keys = nullptr;
};

// Returns errc::invalid_argument naming the field if `cfg` makes no sense.
status validate(const mf_config& cfg);

// Trained parameters, plain data; rows can be shipped between nodes as they
// are. Prediction is mu + user_bias[u] + item_bias[i] + user.row(u) . item.row(i).
struct mf_factors {
  float mu = 0.0f;           // global mean of the training ratings
  Eigen::VectorXf user_bias; // n_users
  Eigen::VectorXf item_bias; // n_items
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>
      user; // n_users x k
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>
      item; // n_items x k
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
// REQUIRES: values of `train` are ratings; validate(cfg).ok().
mf_factors train_mf_factors(const interaction_matrix& train, const mf_config& cfg,
                            std::vector<double>* loss_trace = nullptr);

std::unique_ptr<model> train_mf(const interaction_matrix& train, const mf_config& cfg,
                                std::vector<double>* loss_trace = nullptr);

// ---- Building blocks of the ALS solver, shared with the distributed trainer. ----

// The trainer's state of one side: n x (k+1), row-major, double; row e is
// entity e's k factors followed by its bias.
using mf_rows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Initial state of rows keyed by keys[0 .. out.rows()) (side 0 = users,
// 1 = items): k values N(0, cfg.init_std^2) from the stream of (cfg.seed,
// side, key), bias 0. REQUIRES: out.cols() == cfg.factors + 1
void mf_init_keyed_rows(const mf_config& cfg, int side, const std::uint64_t* keys,
                        Eigen::Ref<mf_rows> out);

// One ALS half-step of train_mf_factors with mf_solver::als (its ALS sweeps,
// and Gibbs' warm_start sweeps, are two calls of this: users, then items):
// every row of `self` (the users of `train` if `users`, else its items;
// n x (k+1), factors then bias) is replaced by the mf_als_row_solver solution
// of its row (users) or column (items) of `train`, cells in the matrix's
// order, against `other`, the other side's rows (k+1 wide, indexed like
// `train`). Threads: cfg.threads; the result does not depend on them.
// REQUIRES: self.rows() == n_users (users) / n_items (items) of train;
// self.cols() == other.cols() == cfg.factors + 1; other has a row for every
// index the matrix's cells name.
void mf_als_half_step(const interaction_matrix& train, bool users, const mf_rows& other,
                      double mu, const mf_config& cfg, mf_rows& self);

// One entity's ALS update: minimises, over x = [p; b],
//   sum_j (r_j - mu - o_j(k) - [o_j(0..k-1); 1] . x)^2 + reg * n * |x|^2
// over the row's n ratings r_j of entities j of the other side, exactly as a
// half-step of train_mf_factors with mf_solver::als does. Keeps scratch
// space: one solver per thread.
class mf_als_row_solver {
public:
  // mu: global mean of the training ratings.
  mf_als_row_solver(const mf_config& cfg, double mu);
  ~mf_als_row_solver();
  mf_als_row_solver(const mf_als_row_solver&) = delete;
  mf_als_row_solver& operator=(const mf_als_row_solver&) = delete;

  // other: the other side's rows (k+1 wide) indexed by row.index; it need
  // only hold the rows the span indexes. Writes k+1 values to x; a row
  // without ratings gets x = 0.
  void solve(interaction_matrix::span row, const mf_rows& other, double* x);

  struct scratch; // per-thread buffers, defined in mf.cpp

private:
  double mu_;
  std::unique_ptr<scratch> s_;
};

// ---- The Gibbs sampler in pieces, for a cluster (dist/als.hpp) that holds
// the rows in partitions. train_mf's sweep, when keyed: the noise precision
// alpha ~ Gamma(1 + N/2, rate 1 + SSE/2), then the users' (mu, Lambda) from
// the Normal-Wishart posterior given their rows, the users' rows, the
// items' (mu, Lambda), the items' rows; all global draws from one stream
// (mf_sweep_stream) in that order, every row's noise from its own keyed
// stream.

// The prior of one side's row solves in one sweep.
struct mf_gibbs_prior {
  double alpha = 1.0;        // noise precision
  Eigen::MatrixXd lambda;    // D x D precision, D = k + 1
  Eigen::VectorXd lambda_mu; // Lambda * mu
};

// Sums over the rows of one side that have ratings: their count, sum and
// sum of outer products (D x D, row-major), as exact sums
// (core/exact_sum.hpp), so that partial moments from any grouping of the
// rows merge to the same bits.
struct mf_row_moments {
  std::uint64_t n = 0;
  std::vector<exact_sum> sum;   // D
  std::vector<exact_sum> outer; // D x D
};
// Adds the D-wide row x (sizes the moments on first use).
void add_row(mf_row_moments& m, const double* x, Eigen::Index d);
// m += o. REQUIRES: both empty or of the same D.
void merge(mf_row_moments& m, const mf_row_moments& o);

// The squared residual (r - mu - b_u - b_i - p_u . q_i)^2 of one cell, rows
// D = k + 1 wide (factors, then the bias). A plain loop: the bits do not
// depend on where the rows lie in memory.
double mf_squared_residual(double r, const double* user_row, const double* item_row,
                           Eigen::Index k, double mu);

class mf_sweep_stream {
public:
  mf_sweep_stream(std::uint64_t seed, int sweep);
  ~mf_sweep_stream();
  mf_sweep_stream(mf_sweep_stream&&) noexcept;
  // alpha for the sweep, given the number of observations and the SSE of
  // the current factors. Draw order: alpha, then hyper(users), then
  // hyper(items).
  double alpha(double n_obs, double sse);
  // (Lambda, Lambda mu) of one side given its rows' moments (D wide: k + 1);
  // sets prior.lambda and prior.lambda_mu, keeps prior.alpha.
  void hyper(const mf_row_moments& m, Eigen::Index d, mf_gibbs_prior& prior);

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

// One row's draw from its conditional posterior (the Gibbs row solve), its
// noise from the stream of (seed, sweep, side, key): side 0 users, 1 items.
class mf_gibbs_row_solver {
public:
  mf_gibbs_row_solver(const mf_config& cfg, double mu, const mf_gibbs_prior& prior,
                      int sweep, int side);
  ~mf_gibbs_row_solver();
  mf_gibbs_row_solver(const mf_gibbs_row_solver&) = delete;
  mf_gibbs_row_solver& operator=(const mf_gibbs_row_solver&) = delete;
  void solve(interaction_matrix::span row, const mf_rows& other, std::uint64_t key,
             double* x);

private:
  double mu_;
  std::uint64_t seed_;
  int sweep_;
  int side_;
  struct state;
  std::unique_ptr<state> s_;
};

} // namespace shardrec::core
