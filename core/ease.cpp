#include "core/ease.hpp"

#include <algorithm>

#include <Eigen/Cholesky>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace shardrec::core {

ease_matrix ease_weights(const interaction_matrix& train, float lambda,
                         const std::vector<std::uint64_t>* item_keys, unsigned threads) {
  SHARDREC_ASSERT(lambda > 0);
  const auto n = static_cast<Eigen::Index>(train.n_items());
  SHARDREC_ASSERT(!item_keys || item_keys->size() == train.n_items());
  // pos[i]: item i's row in the solve (identity without keys).
  std::vector<index_t> order(train.n_items()), pos(train.n_items());
  for (index_t i = 0; i < train.n_items(); ++i)
    order[i] = i;
  if (item_keys)
    std::sort(order.begin(), order.end(), [&](index_t a, index_t b) {
      return (*item_keys)[a] != (*item_keys)[b] ? (*item_keys)[a] < (*item_keys)[b]
                                                : a < b;
    });
  for (index_t k = 0; k < train.n_items(); ++k)
    pos[order[k]] = k;
  // G = X^T X, lower triangle, accumulated row by row of X (each row's
  // cells in solve order, so that every pair is visited once).
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(n, n);
  std::vector<std::pair<index_t, double>> cells;
  for (index_t u = 0; u < train.n_users(); ++u) {
    auto row = train.user_row(u);
    cells.clear();
    for (std::size_t k = 0; k < row.size; ++k)
      cells.emplace_back(pos[row.index[k]], row.value[k]);
    if (item_keys)
      std::sort(cells.begin(), cells.end());
    for (std::size_t a = 0; a < cells.size(); ++a)
      for (std::size_t b = 0; b <= a; ++b)
        g(cells[a].first, cells[b].first) += cells[a].second * cells[b].second;
  }
  auto solved = ease_from_gram(std::move(g), lambda, threads);
  if (!item_keys)
    return solved;
  ease_matrix b(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j)
      b(i, j) =
          solved(pos[static_cast<std::size_t>(i)], pos[static_cast<std::size_t>(j)]);
  return b;
}

ease_matrix ease_from_gram(Eigen::MatrixXd g, float lambda, unsigned threads) {
  SHARDREC_ASSERT(lambda > 0);
  const auto n = g.rows();
  g.diagonal().array() += static_cast<double>(lambda);
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>, Eigen::Lower> llt(g);
  SHARDREC_ASSERT(llt.info() == Eigen::Success);
  // P = (G + lambda I)^-1 = L^-T L^-1, symmetric: only its lower part is
  // solved, in fixed blocks of columns. Column j (block from j0) of the
  // identity is zero above j0, so both triangular solves need only the
  // trailing L[j0:, j0:]: a third of the work of solving the identity
  // whole. Fixed blocks: the same floats for any thread count.
  constexpr Eigen::Index width = 64;
  Eigen::MatrixXd p = Eigen::MatrixXd::Zero(n, n);
  const auto blocks = static_cast<std::size_t>((n + width - 1) / width);
  parallel_for(
      blocks, threads,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t k = begin; k < end; ++k) {
          const auto j0 = static_cast<Eigen::Index>(k) * width;
          const auto w = std::min(width, n - j0);
          auto tail = p.block(j0, j0, n - j0, w);
          tail.topRows(w).setIdentity();
          auto l = g.bottomRightCorner(n - j0, n - j0);
          l.triangularView<Eigen::Lower>().solveInPlace(tail);
          l.triangularView<Eigen::Lower>().transpose().solveInPlace(tail);
        }
      },
      1);
  // The rows above each block from its mirror.
  for (Eigen::Index j = 0; j < n; ++j)
    for (Eigen::Index i = 0; i < j / width * width; ++i)
      p(i, j) = p(j, i);
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

std::vector<contribution> ease_model::explain(index_t user, index_t item,
                                              std::size_t max) const {
  std::vector<contribution> out;
  if (user + std::size_t{1} >= ptr_.size() || item >= n_items() || max == 0)
    return out;
  for (auto k = ptr_[user]; k < ptr_[user + 1]; ++k) {
    const float w = b_(item_[k], item);
    if (w > 0.0f && item_[k] != item)
      out.push_back({item_[k], w});
  }
  const auto keep = std::min(max, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(keep),
                    out.end(), [](const contribution& a, const contribution& b) {
                      return a.weight != b.weight ? a.weight > b.weight : a.item < b.item;
                    });
  out.resize(keep);
  return out;
}

std::unique_ptr<model> train_ease(const interaction_matrix& train,
                                  const ease_config& cfg) {
  return std::make_unique<ease_model>(ease_weights(train, cfg.lambda), train);
}

} // namespace shardrec::core
