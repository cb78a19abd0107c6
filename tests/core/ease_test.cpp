#include "core/ease.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

event cell(index_t u, index_t i, float v = 1.0f) {
  event e;
  e.user = u;
  e.item = i;
  e.value = v;
  return e;
}

// X = [[1, 1], [1, 0]], lambda 1: G + I = [[3, 1], [1, 2]],
// P = [[2, -1], [-1, 3]] / 5, B_01 = -P_01 / P_11 = 1/3, B_10 = -P_10 / P_00 = 1/2.
TEST(ease, two_items_match_hand_computation) {
  auto m = interaction_matrix::build(2, 2, {cell(0, 0), cell(0, 1), cell(1, 0)},
                                     merge_policy::last);
  auto b = ease_weights(m, 1.0f);
  EXPECT_EQ(b(0, 0), 0.0f);
  EXPECT_EQ(b(1, 1), 0.0f);
  EXPECT_NEAR(b(0, 1), 1.0f / 3, 1e-6);
  EXPECT_NEAR(b(1, 0), 0.5f, 1e-6);

  ease_config cfg;
  cfg.lambda = 1.0f;
  auto model = train_ease(m, cfg);
  EXPECT_EQ(model->name(), "ease");
  EXPECT_EQ(model->n_items(), 2u);
  Eigen::VectorXf s(2);
  model->score_items(1, s); // x_1 = (1, 0): row 0 of B
  EXPECT_FLOAT_EQ(s[0], 0.0f);
  EXPECT_NEAR(s[1], 1.0f / 3, 1e-6);
  model->score_items(0, s); // x_0 = (1, 1): B_00 + B_10, B_01 + B_11
  EXPECT_NEAR(s[0], 0.5f, 1e-6);
  EXPECT_NEAR(s[1], 1.0f / 3, 1e-6);
}

// A random matrix with values, against the formula evaluated densely with
// Eigen; B also satisfies the constrained optimality condition
// (G + lambda I) B = G - diag(mu) for some mu, i.e. off-diagonal entries of
// (G + lambda I) B - G vanish.
TEST(ease, random_matrix_matches_dense_formula) {
  const int n_users = 40, n_items = 25;
  const float lambda = 3.5f;
  std::mt19937_64 g(17);
  std::vector<event> ev;
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(n_users, n_items);
  for (index_t u = 0; u < n_users; ++u)
    for (index_t i = 0; i < n_items; ++i)
      if (g() % 4 == 0) {
        float v = static_cast<float>(1 + g() % 3);
        ev.push_back(cell(u, i, v));
        x(u, i) = v;
      }
  auto m = interaction_matrix::build(n_users, n_items, ev, merge_policy::last);
  Eigen::MatrixXd gram = x.transpose() * x;
  Eigen::MatrixXd p =
      (gram + lambda * Eigen::MatrixXd::Identity(n_items, n_items)).inverse();
  Eigen::MatrixXd want = Eigen::MatrixXd::Identity(n_items, n_items)
                         - p * p.diagonal().cwiseInverse().asDiagonal();
  auto b = ease_weights(m, lambda);
  ASSERT_EQ(b.rows(), n_items);
  ASSERT_EQ(b.cols(), n_items);
  EXPECT_TRUE(b.diagonal().isZero(0.0f));
  EXPECT_LT((b.cast<double>() - want).cwiseAbs().maxCoeff(), 1e-6);
  Eigen::MatrixXd cond =
      (gram + lambda * Eigen::MatrixXd::Identity(n_items, n_items)) * b.cast<double>()
      - gram;
  cond.diagonal().setZero();
  EXPECT_LT(cond.cwiseAbs().maxCoeff(), 1e-4);

  ease_config cfg;
  cfg.lambda = lambda;
  auto model = train_ease(m, cfg);
  Eigen::VectorXf s(n_items);
  for (index_t u : {0u, 7u, 39u}) {
    model->score_items(u, s);
    Eigen::VectorXd dense = (x.row(u) * b.cast<double>()).transpose();
    EXPECT_LT((s.cast<double>() - dense).cwiseAbs().maxCoeff(), 1e-5) << "user " << u;
  }
}

// More items than one block of the solve (64 columns; the last block
// partial): the dense formula still holds, and the floats are the same
// whatever the number of threads.
TEST(ease, blocked_solve_matches_dense_formula_for_any_thread_count) {
  const int n_items = 203;
  std::mt19937_64 r(5);
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(400, n_items);
  for (int u = 0; u < x.rows(); ++u)
    for (int i = 0; i < n_items; ++i)
      if (r() % 5 == 0)
        x(u, i) = static_cast<double>(1 + r() % 4);
  const Eigen::MatrixXd gram = x.transpose() * x;
  const float lambda = 7.0f;
  Eigen::MatrixXd p =
      (gram + lambda * Eigen::MatrixXd::Identity(n_items, n_items)).inverse();
  Eigen::MatrixXd want = Eigen::MatrixXd::Identity(n_items, n_items)
                         - p * p.diagonal().cwiseInverse().asDiagonal();
  const auto one = ease_from_gram(gram, lambda, 1);
  EXPECT_LT((one.cast<double>() - want).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_TRUE(one.diagonal().isZero(0.0f));
  for (unsigned threads : {2u, 3u, 8u}) {
    const auto many = ease_from_gram(gram, lambda, threads);
    EXPECT_TRUE(many == one) << threads << " threads";
  }
}

TEST(ease, cold_users_score_item_popularity) {
  auto m = interaction_matrix::build(
      3, 3, {cell(0, 0), cell(0, 1), cell(2, 1), cell(2, 2), cell(0, 2)},
      merge_policy::last);
  auto model = train_ease(m, ease_config{});
  Eigen::VectorXf s(3), pop(3);
  pop << 1, 2, 2;
  for (index_t u : {1u, 5u}) {
    model->score_items(u, s);
    EXPECT_TRUE(s == pop) << "user " << u;
  }
}

// ---- ML-100K u1 ----

std::vector<event> read_ml100k(const std::string& path, dataset& ds) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path << " (SHARDREC_DATA_DIR must hold ml-100k)";
    return {};
  }
  std::vector<event> ev;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string u, i;
    float r = 0;
    long long ts = 0;
    if (!(ss >> u >> i >> r >> ts)) {
      ADD_FAILURE() << path << ": malformed line: " << line;
      return {};
    }
    event e = cell(ds.users.intern(u), ds.items.intern(i), r);
    e.timestamp = ts;
    ev.push_back(e);
  }
  return ev;
}

// P@10 = hits / (10 x test users with >= 1 test item); NDCG@10 with binary
// relevance and ideal DCG over min(10, |test items|); training items are
// removed from the ranking; ties broken by item index.
std::pair<double, double> evaluate_top10(const model& m, const interaction_matrix& train,
                                         const interaction_matrix& test) {
  double precision = 0, ndcg = 0;
  std::size_t users = 0;
  Eigen::VectorXf s(static_cast<Eigen::Index>(m.n_items()));
  std::vector<index_t> order(m.n_items());
  for (index_t u = 0; u < test.n_users(); ++u) {
    auto t = test.user_row(u);
    if (t.size == 0)
      continue;
    m.score_items(u, s);
    auto r = train.user_row(u);
    for (std::size_t j = 0; j < r.size; ++j)
      s[r.index[j]] = -INFINITY;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(
        order.begin(), order.begin() + 10, order.end(),
        [&](index_t a, index_t b) { return s[a] != s[b] ? s[a] > s[b] : a < b; });
    double dcg = 0, idcg = 0;
    int hits = 0;
    for (int k = 0; k < 10; ++k)
      if (test.find(u, order[k])) {
        ++hits;
        dcg += 1 / std::log2(k + 2.0);
      }
    for (std::size_t k = 0; k < std::min<std::size_t>(10, t.size); ++k)
      idcg += 1 / std::log2(static_cast<double>(k) + 2);
    precision += hits / 10.0;
    ndcg += dcg / idcg;
    ++users;
  }
  return {precision / static_cast<double>(users), ndcg / static_cast<double>(users)};
}

TEST(ease, ml100k_u1_top10_at_default_lambda) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  dataset ds;
  auto tr = read_ml100k(test_data::path("ml-100k/u1.base"), ds);
  auto te = read_ml100k(test_data::path("ml-100k/u1.test"), ds);
  ASSERT_EQ(tr.size(), 80000u);
  ASSERT_EQ(te.size(), 20000u);
  auto train =
      interaction_matrix::build(ds.users.size(), ds.items.size(), tr, merge_policy::last)
          .binarized();
  auto test =
      interaction_matrix::build(ds.users.size(), ds.items.size(), te, merge_policy::last);
  auto t0 = std::chrono::steady_clock::now();
  auto model = train_ease(train, ease_config{});
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto [precision, ndcg] = evaluate_top10(*model, train, test);
  std::printf("ease lambda %.0f, ml-100k u1: P@10 %.4f NDCG@10 %.4f, train %.3f s\n",
              ease_config{}.lambda, precision, ndcg, secs);
  // Measured 0.5102 / 0.5617.
  EXPECT_GE(precision, 0.50);
  EXPECT_GE(ndcg, 0.55);
}

} // namespace
} // namespace shardrec::core
