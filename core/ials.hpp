// Implicit-feedback alternating least squares (Hu, Koren, Volinsky, ICDM 2008)
// with the changes of Rendle, Krichene, Zhang, Koren, "Revisiting the
// performance of iALS on item recommendation benchmarks" (RecSys 2022), solved
// per row by a few warm-started conjugate-gradient steps (Takacs, Pilaszy,
// Tikk, RecSys 2011).
//
// Objective, over every cell (u, i) of the n_users x n_items matrix:
//   L = sum_{u,i} c_ui (p_ui - x_u . y_i)^2
//     + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2
// where, for a stored cell with value r (r = 1 when cfg.binary),
//   p_ui = 1 and c_ui = 1 + alpha r   if r > 0,
//   p_ui = 0 and c_ui = 1             otherwise (unobserved, or r <= 0).
// Dividing by alpha shows this is Rendle's form with weight alpha0 = 1 / alpha
// on the unobserved part. The regulariser is frequency-scaled by the row's
// total confidence (Rendle's (|I_u| + alpha0 |I|)^nu, times alpha):
//   lambda_u = reg * (n_items + alpha * sum_{i: r_ui > 0} r_ui)^nu,
// and symmetrically lambda_i with n_users. nu = reg_exponent in [0, 1];
// nu = 0 is the classic constant regulariser.
//
// One iteration solves every user row given the item factors, then every item
// row given the user factors. Each row's normal equations
//   (G + sum_{i in S_u} alpha r_ui y_i y_i^T + lambda_u I) x_u = sum_{i in S_u} c_ui y_i,
// with G = Y^T Y the Gram matrix of the fixed side, computed once per
// half-step, cost O(k^2 + k |S_u|) per CG step instead of O(k^2 |S_u| + k^3)
// for forming and factoring the matrix.
//
// Determinism: the initial factors come from per-row random streams derived
// from (seed, side, row); rows are solved independently; the Gram matrix is
// summed in double over fixed blocks in a fixed order. The result is
// therefore bit-identical for a given seed whatever cfg.threads is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "core/error.hpp"
#include "core/interactions.hpp"
#include "core/model.hpp"

namespace shardrec::core {

struct ials_config {
  std::size_t factors = 64;
  int iterations = 15;
  float reg = 0.015f;        // scale of lambda_u, lambda_i (see above); > 0
  float alpha = 1.0f;        // confidence slope; weight of an observation; > 0
  float reg_exponent = 1.0f; // nu in [0, 1]
  int cg_steps = 3;          // CG steps per row and half-step (>= 1)
  bool exact_solve = false;  // Cholesky per row instead of CG: O(k^2 |S_u| + k^3)
  std::uint64_t seed = 42;
  unsigned threads = 1;
  float init_std = -1.0f; // stddev of the N(0, s^2) initial factors; < 0: 0.1/sqrt(k)
  bool binary = true;     // every stored cell counts as r = 1; false: r = value
  // Optional 64-bit keys of the users / items (the cluster uses
  // stable_hash(external id)), for results that do not depend on the dense
  // indices, which a partition of the data does not know. When set:
  //  - row r's initial factors come from the stream of (seed, side,
  //    (*keys)[r]) instead of (seed, side, r) (ials_init_keyed_rows);
  //  - the other side's cells of every row are summed in ascending key order
  //    (ties: by index) instead of index order, since float sums depend on
  //    the order (the training matrix is renumbered internally, O(nnz)).
  // The distributed trainer (dist/als.hpp) does both, so it reproduces
  // this trainer's factors bit for bit (up to the rounding of the double
  // Gram sum to float). Not owned; must outlive training. REQUIRES: size
  // n_users / n_items of the training matrix. nullptr (default): by index.
  const std::vector<std::uint64_t>* user_keys = nullptr;
  const std::vector<std::uint64_t>* item_keys = nullptr;
};

// Returns an error (invalid_argument, naming the field) if cfg cannot train.
status validate(const ials_config& cfg);

// n x k, row-major: row r is the k factors of user / item r, contiguous.
using ials_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The trained factors. score_items(u) = Y x_u. Cold users (index >=
// n_users(), or no positive training cell, whose factors are exactly zero)
// are scored by item popularity (number of positive training cells).
class ials_model final : public model {
public:
  // REQUIRES: user.cols() == item.cols(); popularity.size() == item.rows()
  ials_model(ials_matrix user, ials_matrix item, std::vector<float> popularity);

  std::string name() const override { return "implicit-als"; }
  std::size_t n_items() const override { return static_cast<std::size_t>(item_.rows()); }
  std::size_t n_users() const { return static_cast<std::size_t>(user_.rows()); }
  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override;

  const ials_matrix& user_factors() const { return user_; } // n_users x k
  const ials_matrix& item_factors() const { return item_; } // n_items x k
  const std::vector<float>& popularity() const { return popularity_; }

private:
  ials_matrix user_;
  ials_matrix item_;
  std::vector<float> popularity_;
};

// Trains on `train`. If loss_trace is given, the objective L above is
// appended after every iteration (it costs one extra pass over the data).
// REQUIRES: validate(cfg).ok()
std::unique_ptr<ials_model> train_ials_model(const interaction_matrix& train,
                                             const ials_config& cfg,
                                             std::vector<double>* loss_trace = nullptr);

std::unique_ptr<model> train_ials(const interaction_matrix& train, const ials_config& cfg,
                                  std::vector<double>* loss_trace = nullptr);

// ---- Building blocks, shared with the distributed trainer. ----

// Initial factors of rows [first, first + out.rows()) of one side
// (side 0 = users, 1 = items): N(0, std^2) from a stream seeded by
// (seed, side, row), so any partition of the rows gets the same values.
void ials_init_rows(std::uint64_t seed, int side, std::size_t first, float stddev,
                    Eigen::Ref<ials_matrix> out);

// Like ials_init_rows, but row r's stream is seeded by (seed, side, keys[r]),
// so a row gets the same values wherever it lives. keys: out.rows() values.
void ials_init_keyed_rows(std::uint64_t seed, int side, const std::uint64_t* keys,
                          float stddev, Eigen::Ref<ials_matrix> out);

// The permutation that lists keys[0 .. n) in ascending order (ties: by
// index): order[new] = old.
std::vector<index_t> key_order(const std::uint64_t* keys, std::size_t n);

// How the keyed trainers (iALS, MF) renumber their input: each side's rows in
// ascending key order (index order on a side without keys), with the keys in
// that order (empty on a side without keys). REQUIRES: a key vector, when
// given, has one key per row of its side.
struct key_renumbering {
  std::vector<index_t> user_order, item_order; // order[new] = old
  std::vector<std::uint64_t> user_keys, item_keys;
  const std::uint64_t* user_key_data() const {
    return user_keys.empty() ? nullptr : user_keys.data();
  }
  const std::uint64_t* item_key_data() const {
    return item_keys.empty() ? nullptr : item_keys.data();
  }
};
key_renumbering make_key_renumbering(std::size_t n_users, std::size_t n_items,
                                     const std::vector<std::uint64_t>* user_keys,
                                     const std::vector<std::uint64_t>* item_keys);

// m renumbered: new user u is old user user_order[u], new item i is old item
// item_order[i] (each a permutation of its side). Values are kept; stored
// timestamps and types are not (the trainers do not use them).
interaction_matrix renumbered(const interaction_matrix& m,
                              const std::vector<index_t>& user_order,
                              const std::vector<index_t>& item_order);

// The stddev of the initial factors: cfg.init_std, or 0.1 / sqrt(k) if < 0.
float ials_init_std(const ials_config& cfg);

// lambda of a row with this content (see the header comment), where n_other
// is the size of the whole fixed side (n_items when the row is a user's).
float ials_regularization(interaction_matrix::span row, std::size_t n_other,
                          const ials_config& cfg);

// F^T F of a block of factor rows (rows x k), accumulated in double: k x k.
// A Gram of a whole side is the sum of such partials; summing them in double
// makes the float result insensitive to how the rows are partitioned.
Eigen::MatrixXd ials_gram_partial(Eigen::Ref<const ials_matrix> rows);

// Gram of all rows of f, as the sum of ials_gram_partial over consecutive
// blocks of ials_gram_block rows, in block order, rounded to float: k x k.
inline constexpr std::size_t ials_gram_block = 1024;
Eigen::MatrixXf ials_gram(const ials_matrix& f, unsigned threads);

// Solves one row's normal equations (see the header comment). Holds
// references to the Gram matrix and the fixed side's factors, and scratch
// space: use one solver per thread. Allocates only when a row is longer than
// every row it solved before. The CG result depends only on the inputs' values,
// not on where x or the factors are stored, so a shard solving its rows in a
// local matrix gets the bits the single-process trainer gets.
class ials_row_solver {
public:
  // gram: k x k Gram of `other`; other: the fixed side's factors, indexed by
  // the span's indices (n_other x k). Both must outlive the solver.
  ials_row_solver(const Eigen::MatrixXf& gram, const ials_matrix& other,
                  const ials_config& cfg);
  // As above, but `other` need only hold the rows the spans index (a shard's
  // received rows, in any order); n_other is the size of the whole fixed
  // side, which the regulariser needs.
  ials_row_solver(const Eigen::MatrixXf& gram, const ials_matrix& other,
                  const ials_config& cfg, std::size_t n_other);

  // lambda for a row with this content (see the header comment).
  float regularization(interaction_matrix::span row) const;

  // Updates x (k factors, warm start for CG) in place. A row without a
  // positive cell gets x = 0, its exact solution.
  void solve(interaction_matrix::span row, float* x);

private:
  // CG with the factor count fixed at compile time (K = Eigen::Dynamic for
  // counts without a specialisation).
  template <int K> void solve_cg(interaction_matrix::span row, float lambda, float* x);

  const Eigen::MatrixXf& gram_;
  const ials_matrix& other_;
  std::size_t n_other_;
  float alpha_;
  float reg_;
  float nu_;
  int cg_steps_;
  bool exact_;
  bool binary_;
  Eigen::VectorXf x_, r_, p_, ap_, b_;
  Eigen::MatrixXf a_;
  // The row's fixed-side factors gathered contiguously (n x k row-major, n =
  // positive cells) and their weights alpha r; they grow to the largest row
  // seen and are never shrunk.
  Eigen::VectorXf gathered_, weight_;
};

// The objective L of factors (user, item) on `train` (see the header).
double ials_loss(const interaction_matrix& train, const ials_matrix& user,
                 const ials_matrix& item, const ials_config& cfg);

} // namespace shardrec::core
