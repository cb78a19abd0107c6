#include "core/fold_in.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace shardrec::core {

namespace {

// A row's cells in the order the trainer visits them (see the header), as
// the arrays of an interaction_matrix::span.
struct ordered_cells {
  std::vector<index_t> index;
  std::vector<float> value;
  interaction_matrix::span span() const {
    return {index.data(), value.data(), index.size()};
  }
};

ordered_cells order_cells(const fold_in_cells& cells, std::size_t n_other,
                          const std::vector<std::uint64_t>* keys) {
  SHARDREC_ASSERT(!keys || keys->size() == n_other);
  fold_in_cells sorted = cells;
  for (const auto& c : sorted)
    SHARDREC_ASSERT(c.first < n_other);
  if (keys) {
    const std::uint64_t* k = keys->data();
    std::sort(sorted.begin(), sorted.end(), [k](const auto& a, const auto& b) {
      return k[a.first] != k[b.first] ? k[a.first] < k[b.first] : a.first < b.first;
    });
  } else {
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  ordered_cells out;
  out.index.reserve(sorted.size());
  out.value.reserve(sorted.size());
  for (std::size_t j = 0; j < sorted.size(); ++j) {
    // Equal indices have equal keys, so duplicates end up adjacent.
    SHARDREC_ASSERT(j == 0 || sorted[j].first != sorted[j - 1].first);
    out.index.push_back(sorted[j].first);
    out.value.push_back(sorted[j].second);
  }
  return out;
}

using float_rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// mf_fold_in against one side of a model (float factors and biases), reading
// only the rows the cells name: they are gathered, widened to double, into a
// block indexed 0 .. n-1 in the cells' order (the solve depends on the rows'
// values only, not on where they are stored).
mf_fold_in_result mf_fold_in_model(const float_rows& factors, const Eigen::VectorXf& bias,
                                   float mu, const fold_in_cells& cells,
                                   const mf_config& cfg,
                                   const std::vector<std::uint64_t>* keys) {
  const auto k = factors.cols();
  SHARDREC_ASSERT(static_cast<std::size_t>(k) == cfg.factors);
  SHARDREC_ASSERT(bias.size() == factors.rows());
  auto ordered = order_cells(cells, static_cast<std::size_t>(factors.rows()), keys);
  const auto n = static_cast<Eigen::Index>(ordered.index.size());
  mf_rows rows(n, k + 1);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto e = static_cast<Eigen::Index>(ordered.index[j]);
    rows.row(j).head(k) = factors.row(e).cast<double>();
    rows(j, k) = static_cast<double>(bias[e]);
    ordered.index[j] = static_cast<index_t>(j);
  }
  std::vector<double> x(static_cast<std::size_t>(k) + 1, 0.0);
  mf_als_row_solver solver(cfg, static_cast<double>(mu));
  solver.solve(ordered.span(), rows, x.data());
  mf_fold_in_result out;
  out.factors.resize(static_cast<std::size_t>(k));
  for (Eigen::Index t = 0; t < k; ++t)
    out.factors[t] = static_cast<float>(x[t]);
  out.bias = static_cast<float>(x[k]);
  return out;
}

} // namespace

// ---- implicit ALS ----

Eigen::MatrixXf ials_trainer_gram(const ials_matrix& f,
                                  const std::vector<std::uint64_t>* keys,
                                  unsigned threads) {
  if (!keys)
    return ials_gram(f, threads);
  SHARDREC_ASSERT(keys->size() == static_cast<std::size_t>(f.rows()));
  auto order = key_order(keys->data(), keys->size());
  ials_matrix sorted(f.rows(), f.cols());
  for (std::size_t r = 0; r < order.size(); ++r)
    sorted.row(static_cast<Eigen::Index>(r)) = f.row(order[r]);
  return ials_gram(sorted, threads);
}

std::vector<float> ials_fold_in(const ials_matrix& other, const Eigen::MatrixXf& gram,
                                const fold_in_cells& cells, const ials_config& cfg,
                                const std::vector<std::uint64_t>* other_keys,
                                const float* start, std::size_t n_other) {
  SHARDREC_ASSERT(static_cast<std::size_t>(other.cols()) == cfg.factors);
  auto ordered = order_cells(cells, static_cast<std::size_t>(other.rows()), other_keys);
  std::vector<float> x(cfg.factors, 0.0f);
  if (start)
    std::copy(start, start + cfg.factors, x.begin());
  ials_row_solver solver(gram, other, cfg,
                         n_other != 0 ? n_other : static_cast<std::size_t>(other.rows()));
  solver.solve(ordered.span(), x.data());
  return x;
}

std::vector<float> ials_fold_in_user(const ials_model& m,
                                     const Eigen::MatrixXf& item_gram,
                                     const fold_in_cells& row, const ials_config& cfg,
                                     const float* start) {
  return ials_fold_in(m.item_factors(), item_gram, row, cfg, cfg.item_keys, start);
}

std::vector<float> ials_fold_in_item(const ials_model& m,
                                     const Eigen::MatrixXf& user_gram,
                                     const fold_in_cells& col, const ials_config& cfg,
                                     const float* start) {
  return ials_fold_in(m.user_factors(), user_gram, col, cfg, cfg.user_keys, start);
}

// ---- rating MF ----

std::vector<double> mf_fold_in(const mf_rows& other, double mu,
                               const fold_in_cells& cells, const mf_config& cfg,
                               const std::vector<std::uint64_t>* other_keys) {
  SHARDREC_ASSERT(other.cols() == static_cast<Eigen::Index>(cfg.factors) + 1);
  auto ordered = order_cells(cells, static_cast<std::size_t>(other.rows()), other_keys);
  std::vector<double> x(cfg.factors + 1, 0.0);
  mf_als_row_solver solver(cfg, mu);
  solver.solve(ordered.span(), other, x.data());
  return x;
}

mf_fold_in_result mf_fold_in_user(const mf_factors& f, const fold_in_cells& row,
                                  const mf_config& cfg) {
  return mf_fold_in_model(f.item, f.item_bias, f.mu, row, cfg, cfg.item_keys);
}

mf_fold_in_result mf_fold_in_item(const mf_factors& f, const fold_in_cells& col,
                                  const mf_config& cfg) {
  return mf_fold_in_model(f.user, f.user_bias, f.mu, col, cfg, cfg.user_keys);
}

} // namespace shardrec::core
