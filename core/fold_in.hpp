// Fold-in: one entity's factors solved at once against the other side's
// current factors, by exactly the row solve of the trainers' half-steps, so
// that a new event (or a new user / item) can update one row without a
// training run.
//
//  - implicit ALS (core/ials.hpp): the user's row of the user half-step (the
//    item's column of the item half-step) with the other side fixed: the same
//    ials_row_solver, the same Gram matrix, the same confidence weighting
//    (c = 1 + alpha r from the cell values; cfg.binary counts every cell as
//    r = 1; event types do not enter iALS) and the same regulariser.
//  - rating MF (core/mf.hpp): the ALS-WR update of mf_solver::als
//    (mf_als_row_solver, the kernel of mf_als_half_step): factors and bias
//    together, minimising
//      sum_j (r_j - mu - b_j - q_j . p - b)^2 + cfg.reg * n * (|p|^2 + b^2)
//    over the n ratings r_j of the row, given the other side's factors q_j
//    and biases b_j. This is also what fold-in computes for factors trained
//    by the Gibbs sampler (mf_solver::gibbs): the sampler's half-step is a
//    draw under its sampled prior, which the trained model does not keep, so
//    fold-in uses the ALS regulariser cfg.reg and returns the point estimate.
//
// Bit-identity with the trainers. A row's cells are summed in floating point,
// so their order matters: the trainer visits a row's cells in ascending index
// order, or, when the config has keys for the other side (ials_config /
// mf_config item_keys for a user's row, user_keys for an item's column), in
// ascending key order (ties: by index). Fold-in sorts the cells it is given
// the same way, so callers may pass them in any order (e.g. event order).
// Given the trainer's config, fold-in of a row is bit-identical to that row's
// update in one more half-step with the other side fixed:
//  - iALS: with the Gram matrix from ials_trainer_gram (which sums the rows in
//    the order the trainer holds them) and, for CG (cfg.exact_solve false,
//    where the result depends on the start), warm-started from the row's
//    current factors, as the half-step is;
//  - MF: the solve is exact, so there is no start. The model-level functions
//    (mf_fold_in_user / _item) see the model's float factors and mu, so they
//    equal the rows of a half-step on the trained model (mf_als_half_step on
//    its factors and mu widened to double, rounded to float); the trainer's
//    own next sweep starts from its unrounded double state and so differs by
//    float rounding (at most 1.2e-7 in tests/core/fold_in_test.cpp).
//    mf_fold_in takes double rows and mu, such as dist::mf_partition
//    holds, and runs the half-step's row solve on them unrounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "core/dataset.hpp"
#include "core/ials.hpp"
#include "core/mf.hpp"

namespace shardrec::core {

// The cells of one row (a user's items) or column (an item's users): the
// other side's index and the cell's value, one cell per index (several
// events on one (user, item) pair merged into one value first, as
// interaction_matrix::build does), in any order.
using fold_in_cells = std::vector<std::pair<index_t, float>>;

// ---- implicit ALS ----

// The k x k Gram matrix of the fixed side `f` (n x k) exactly as the trainer's
// half-step computes it: ials_gram of f's rows in ascending key order when
// `keys` is given (the keyed trainer holds them so), else ials_gram(f). The
// result does not depend on `threads`. Compute it once per set of factors and
// reuse it for every fold-in against them: O(n k^2).
// REQUIRES: keys null or keys->size() == f.rows(). Pass the trainer's
// cfg.item_keys for the Gram of item factors (user fold-in), cfg.user_keys
// for that of user factors (item fold-in).
Eigen::MatrixXf ials_trainer_gram(const ials_matrix& f,
                                  const std::vector<std::uint64_t>* keys,
                                  unsigned threads = 1);

// The k factors of an entity with these cells against the fixed side `other`
// (n_other x k; the regulariser counts n_other = other.rows()) whose Gram is
// `gram`: ials_row_solver::solve on the cells sorted by index, or by
// (other_keys[index], index) if other_keys is given. CG starts from `start`
// (k floats, e.g. the entity's current factors) or, if null, from zero;
// cfg.exact_solve ignores the start. Cells with r <= 0 carry no preference;
// with no cell of r > 0 the result is exactly zero (the cold row, as the
// half-step gives). Cost O(k^2 (cg_steps + 1) + k |cells| cg_steps) with CG,
// O(k^2 |cells| + k^3) exact, plus sorting the cells.
// REQUIRES: cfg is the training config (validate(cfg).ok(), cfg.factors ==
// other.cols()); gram is k x k, the Gram of `other` (ials_trainer_gram);
// every cell's index < other.rows(), no index twice; other_keys null or
// other_keys->size() == other.rows().
// n_other: the size of the whole fixed side for the regulariser when
// `other` holds only the rows the cells index (a partition's received
// rows); 0: other.rows().
std::vector<float> ials_fold_in(const ials_matrix& other, const Eigen::MatrixXf& gram,
                                const fold_in_cells& cells, const ials_config& cfg,
                                const std::vector<std::uint64_t>* other_keys,
                                const float* start = nullptr, std::size_t n_other = 0);

// A user's factors from the user's row (cells: item index, value) against
// the model's item factors: ials_fold_in(m.item_factors(), item_gram, row,
// cfg, cfg.item_keys, start). Equals the user's row of one more user
// half-step when item_gram = ials_trainer_gram(m.item_factors(),
// cfg.item_keys) and start is the user's current factors
// (m.user_factors().row(u).data()). For a user who is new or has no
// factors yet, start = nullptr (zero) or the trainer's initial row.
// REQUIRES: as ials_fold_in, with other = m.item_factors().
std::vector<float> ials_fold_in_user(const ials_model& m,
                                     const Eigen::MatrixXf& item_gram,
                                     const fold_in_cells& row, const ials_config& cfg,
                                     const float* start = nullptr);

// An item's factors from the item's column (cells: user index, value)
// against the model's user factors: ials_fold_in(m.user_factors(),
// user_gram, col, cfg, cfg.user_keys, start); the item's column of one more
// item half-step when user_gram = ials_trainer_gram(m.user_factors(),
// cfg.user_keys) and start is the item's current factors.
// REQUIRES: as ials_fold_in, with other = m.user_factors().
std::vector<float> ials_fold_in_item(const ials_model& m,
                                     const Eigen::MatrixXf& user_gram,
                                     const fold_in_cells& col, const ials_config& cfg,
                                     const float* start = nullptr);

// ---- rating MF ----

// The k + 1 values [p; b] (factors, then bias) of an entity with these
// ratings against the other side's trainer rows `other` (n_other x (k+1),
// factors then bias, in double as mf_als_half_step and the distributed
// trainer hold them) and the global mean mu: mf_als_row_solver::solve on the
// cells sorted by index, or by (other_keys[index], index) if other_keys is
// given. No ratings: all zero (as the half-step gives). Cost
// O(k^2 |cells| + k^3).
// REQUIRES: cfg.factors + 1 == other.cols(); every cell's index <
// other.rows(), no index twice; other_keys null or other_keys->size() ==
// other.rows().
std::vector<double> mf_fold_in(const mf_rows& other, double mu,
                               const fold_in_cells& cells, const mf_config& cfg,
                               const std::vector<std::uint64_t>* other_keys);

struct mf_fold_in_result {
  std::vector<float> factors; // k
  float bias = 0.0f;
};

// A user's factors and bias from the user's ratings (cells: item index,
// rating) against the model's item factors, item biases and mu, with the
// ALS-WR regulariser cfg.reg: mf_fold_in on the model's rows widened to
// double (only the rated items' rows are read: O(k |row|)), with
// cfg.item_keys, rounded to float. Equals the user's row of
// mf_als_half_step(train, true, items, f.mu, cfg, ...) on the model (items =
// [f.item, f.item_bias] in double), rounded to float. Then
//   predict = f.mu + bias + b_i + factors . q_i.
// REQUIRES: cfg.factors == f.item.cols(); every index < f.item.rows(), no
// index twice; cfg.item_keys null or of size f.item.rows().
mf_fold_in_result mf_fold_in_user(const mf_factors& f, const fold_in_cells& row,
                                  const mf_config& cfg);

// An item's factors and bias from its ratings (cells: user index, rating)
// against the model's user factors, user biases and mu, with cfg.user_keys;
// the item half-step counterpart of mf_fold_in_user.
// REQUIRES: cfg.factors == f.user.cols(); every index < f.user.rows(), no
// index twice; cfg.user_keys null or of size f.user.rows().
mf_fold_in_result mf_fold_in_item(const mf_factors& f, const fold_in_cells& col,
                                  const mf_config& cfg);

} // namespace shardrec::core
