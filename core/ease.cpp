#include "core/ease.hpp"

#include <Eigen/Cholesky>

#include "core/error.hpp"

namespace shardrec::core {

ease_matrix ease_weights(const interaction_matrix& train, float lambda) {
  SHARDREC_ASSERT(lambda > 0);
  const auto n = static_cast<Eigen::Index>(train.n_items());
  // G = X^T X + lambda I, lower triangle, accumulated row by row of X.
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  for (index_t u = 0; u < train.n_users(); ++u) {
    auto row = train.user_row(u);
    for (std::size_t a = 0; a < row.size; ++a) {
      double va = row.value[a];
      for (std::size_t b = 0; b <= a; ++b)
        g(row.index[a], row.index[b]) += va * row.value[b];
    }
  }
  g.diagonal().array() += static_cast<double>(lambda);
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>, Eigen::Lower> llt(g);
  SHARDREC_ASSERT(llt.info() == Eigen::Success);
  Eigen::MatrixXd p = Eigen::MatrixXd::Identity(n, n);
  llt.solveInPlace(p);
  // B_ij = -P_ij / P_jj, as row-major B (row i = weights of source item i).
  ease_matrix b(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j)
      b(i, j) = i == j ? 0.0f : static_cast<float>(-p(i, j) / p(j, j));
  return b;
}

ease_model::ease_model(ease_matrix b, const interaction_matrix& train)
    : b_(std::move(b)), popularity_(train.n_items(), 0.0f) {
  SHARDREC_ASSERT(static_cast<std::size_t>(b_.rows()) == train.n_items());
  ptr_.assign(train.n_users() + 1, 0);
  item_.reserve(train.nnz());
  value_.reserve(train.nnz());
  for (index_t u = 0; u < train.n_users(); ++u) {
    auto row = train.user_row(u);
    item_.insert(item_.end(), row.index, row.index + row.size);
    value_.insert(value_.end(), row.value, row.value + row.size);
    ptr_[u + 1] = item_.size();
  }
  for (index_t i = 0; i < train.n_items(); ++i)
    popularity_[i] = static_cast<float>(train.item_degree(i));
}

void ease_model::score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const {
  SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == n_items());
  if (user + std::size_t{1} >= ptr_.size() || ptr_[user] == ptr_[user + 1]) {
    out = Eigen::Map<const Eigen::VectorXf>(popularity_.data(), b_.rows());
    return;
  }
  out.setZero();
  for (auto k = ptr_[user]; k < ptr_[user + 1]; ++k)
    out += value_[k] * b_.row(item_[k]).transpose();
}

std::unique_ptr<model> train_ease(const interaction_matrix& train,
                                  const ease_config& cfg) {
  return std::make_unique<ease_model>(ease_weights(train, cfg.lambda), train);
}

} // namespace shardrec::core
