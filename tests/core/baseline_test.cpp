#include "core/baseline.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace shardrec::core {
namespace {

event rating(index_t u, index_t i, float v) {
  event e;
  e.user = u;
  e.item = i;
  e.value = v;
  return e;
}

// 2 users x 2 items: r(0,0) = 5, r(0,1) = 3, r(1,0) = 4; mu = 4.
interaction_matrix tiny() {
  return interaction_matrix::build(
      2, 2, {rating(0, 0, 5), rating(0, 1, 3), rating(1, 0, 4)}, merge_policy::last);
}

TEST(baseline, one_iteration_matches_hand_computation) {
  baseline_config cfg;
  cfg.reg_user = 1.0f;
  cfg.reg_item = 1.0f;
  cfg.iterations = 1;
  auto b = fit_biases(tiny(), cfg);
  EXPECT_FLOAT_EQ(b.mu, 4.0f);
  // Items first with b_u = 0: b_0 = ((5-4) + (4-4)) / (1+2), b_1 = (3-4) / (1+1).
  EXPECT_FLOAT_EQ(b.item[0], 1.0f / 3.0f);
  EXPECT_FLOAT_EQ(b.item[1], -0.5f);
  // Users: b_0 = ((5-4-1/3) + (3-4+1/2)) / (1+2) = 1/18, b_1 = (4-4-1/3) / (1+1).
  EXPECT_FLOAT_EQ(b.user[0], 1.0f / 18.0f);
  EXPECT_FLOAT_EQ(b.user[1], -1.0f / 6.0f);
  EXPECT_FLOAT_EQ(b.predict(0, 1), 4.0f + 1.0f / 18.0f - 0.5f);
}

TEST(baseline, zero_iterations_is_the_global_mean) {
  baseline_config cfg;
  cfg.iterations = 0;
  auto b = fit_biases(tiny(), cfg);
  EXPECT_FLOAT_EQ(b.predict(0, 0), 4.0f);
  EXPECT_FLOAT_EQ(b.predict(1, 1), 4.0f);
}

TEST(baseline, converged_biases_solve_the_normal_equations) {
  // With reg = 0 and enough sweeps, every user's and item's residuals sum to
  // ~0 (the stationarity conditions of the least-squares bias fit).
  std::vector<event> ev;
  for (index_t u = 0; u < 6; ++u)
    for (index_t i = 0; i < 5; ++i)
      if ((u + 2 * i) % 3 != 0)
        ev.push_back(rating(u, i, static_cast<float>(1 + (u * 7 + i * 3) % 5)));
  auto m = interaction_matrix::build(6, 5, ev, merge_policy::last);
  baseline_config cfg;
  cfg.reg_user = 0.0f;
  cfg.reg_item = 0.0f;
  cfg.iterations = 500;
  auto b = fit_biases(m, cfg);
  for (index_t u = 0; u < 6; ++u) {
    auto row = m.user_row(u);
    double s = 0;
    for (std::size_t k = 0; k < row.size; ++k)
      s += row.value[k] - b.predict(u, row.index[k]);
    EXPECT_NEAR(s, 0.0, 1e-3) << "user " << u;
  }
  for (index_t i = 0; i < 5; ++i) {
    auto col = m.item_col(i);
    double s = 0;
    for (std::size_t k = 0; k < col.size; ++k)
      s += col.value[k] - b.predict(col.index[k], i);
    EXPECT_NEAR(s, 0.0, 1e-3) << "item " << i;
  }
}

TEST(baseline, model_clamps_ranks_by_item_bias_and_handles_cold_ids) {
  baseline_config cfg;
  cfg.reg_user = 1.0f;
  cfg.reg_item = 1.0f;
  cfg.iterations = 1;
  auto b = fit_biases(tiny(), cfg);
  auto m = make_baseline_model(b, 3.4f, 4.2f);
  EXPECT_EQ(m->name(), "baseline");
  EXPECT_TRUE(m->predicts_ratings());
  EXPECT_EQ(m->n_items(), 2u);
  EXPECT_FLOAT_EQ(m->predict(0, 0), 4.2f);                // 4 + 1/18 + 1/3 clamped down
  EXPECT_FLOAT_EQ(m->predict(1, 1), 3.4f);                // 4 - 1/6 - 1/2 clamped up
  EXPECT_FLOAT_EQ(m->predict(9, 1), 3.5f);                // cold user: mu + b_i
  EXPECT_FLOAT_EQ(m->predict(0, 9), 4.0f + 1.0f / 18.0f); // cold item: mu + b_u
  Eigen::VectorXf s(2);
  m->score_items(1, s);
  EXPECT_FLOAT_EQ(s[0], 4.0f + 1.0f / 3.0f);
  EXPECT_FLOAT_EQ(s[1], 3.5f);
}

} // namespace
} // namespace shardrec::core
