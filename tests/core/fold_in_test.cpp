#include "core/fold_in.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/generator.hpp"

namespace shardrec::core {
namespace {

// The cells of a row or column of the training matrix, last index first, so
// that fold-in has to put them into the trainer's order itself.
fold_in_cells cells_of(interaction_matrix::span s) {
  fold_in_cells c;
  for (std::size_t j = s.size; j-- > 0;)
    c.emplace_back(s.index[j], s.value[j]);
  return c;
}

bool contains(const fold_in_cells& c, index_t i) {
  return std::any_of(c.begin(), c.end(), [i](const auto& p) { return p.first == i; });
}

// Generated data (core/generator.hpp) with one user and one item more than
// the generator made: the last user and the last item have no cell.
interaction_matrix generated(bool ratings, std::uint64_t seed) {
  generator_config g;
  g.users = 300;
  g.items = 200;
  g.events = 6000;
  g.factors = 6;
  g.seed = seed;
  g.explicit_ratings = ratings;
  dataset ds = generate(g);
  return interaction_matrix::build(ds.users.size() + 1, ds.items.size() + 1, ds.events,
                                   ratings ? merge_policy::last : merge_policy::sum);
}

// Scattered 64-bit keys, in an order unrelated to the indices.
std::vector<std::uint64_t> keys_for(std::size_t n, std::uint64_t salt) {
  std::vector<std::uint64_t> k(n);
  for (std::size_t r = 0; r < n; ++r) {
    std::uint64_t z = (r + salt) * 0x9e3779b97f4a7c15ULL;
    k[r] = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ULL;
  }
  return k;
}

Eigen::RowVectorXf as_row(const std::vector<float>& v) {
  return Eigen::Map<const Eigen::RowVectorXf>(v.data(),
                                              static_cast<Eigen::Index>(v.size()));
}

// ---- implicit ALS ----

// Training for n + 1 iterations runs iteration n + 1's user half-step
// against the item factors after n iterations, warm-started from the user
// factors after n; its item half-step then runs against those new user
// factors, from the item factors after n. Fold-in of each row against the
// same fixed side, from the same start, must give the trainer's bits.
void expect_ials_fold_in_is_one_more_half_step(const interaction_matrix& m,
                                               ials_config cfg, const char* what) {
  const int n = cfg.iterations;
  auto before = train_ials_model(m, cfg);
  cfg.iterations = n + 1;
  auto after = train_ials_model(m, cfg);
  ASSERT_FALSE(before->user_factors() == after->user_factors()) << what;

  Eigen::MatrixXf item_gram = ials_trainer_gram(before->item_factors(), cfg.item_keys, 2);
  std::size_t users_differ = 0, nonzero = 0;
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto x = ials_fold_in_user(*before, item_gram, cells_of(m.user_row(u)), cfg,
                               before->user_factors().row(u).data());
    ASSERT_EQ(x.size(), cfg.factors);
    if (as_row(x) != after->user_factors().row(u))
      ++users_differ;
    nonzero += as_row(x).isZero(0.0f) ? 0 : 1;
  }
  EXPECT_EQ(users_differ, 0u) << what
                              << ": users whose fold-in is not the half-step's row";
  EXPECT_GT(nonzero, m.n_users() / 2) << what;

  Eigen::MatrixXf user_gram = ials_trainer_gram(after->user_factors(), cfg.user_keys);
  std::size_t items_differ = 0;
  for (index_t i = 0; i < m.n_items(); ++i) {
    auto y = ials_fold_in_item(*after, user_gram, cells_of(m.item_col(i)), cfg,
                               before->item_factors().row(i).data());
    if (as_row(y) != after->item_factors().row(i))
      ++items_differ;
  }
  EXPECT_EQ(items_differ, 0u) << what
                              << ": items whose fold-in is not the half-step's row";
}

TEST(fold_in, ials_rows_equal_one_more_half_step_bit_for_bit) {
  auto m = generated(false, 3);
  ials_config cfg;
  cfg.factors = 16; // no compiled CG specialisation
  cfg.iterations = 3;
  expect_ials_fold_in_is_one_more_half_step(m, cfg, "binary, k 16");

  cfg.factors = 32; // compiled specialisation
  cfg.binary = false;
  cfg.alpha = 2.0f;
  cfg.reg_exponent = 0.5f;
  cfg.threads = 2;
  expect_ials_fold_in_is_one_more_half_step(m, cfg, "values, k 32, 2 threads");

  cfg.factors = 8;
  cfg.exact_solve = true;
  expect_ials_fold_in_is_one_more_half_step(m, cfg, "values, exact, k 8");
}

// With keys the trainer sums each row's cells, and the Gram's rows, in key
// order; fold-in with the same config must follow.
TEST(fold_in, ials_rows_equal_one_more_half_step_of_a_keyed_trainer) {
  auto m = generated(false, 4);
  auto user_keys = keys_for(m.n_users(), 1), item_keys = keys_for(m.n_items(), 2);
  ials_config cfg;
  cfg.factors = 32;
  cfg.iterations = 2;
  cfg.binary = false;
  cfg.user_keys = &user_keys;
  cfg.item_keys = &item_keys;
  expect_ials_fold_in_is_one_more_half_step(m, cfg, "keyed");
}

// The double Gram sum depends on the order of the rows, and so, sometimes,
// its float rounding: with rows 2^27, 2^15, 1.25, 1.25 the squares summed
// first to last give 2^54 + 2^30 + 2 * 1.5625, of which double keeps 2^54 +
// 2^30 (a float tie, rounded to 2^54); last to first, 2^54 + 2^30 + 4 (rounded
// up to 2^54 + 2^31). The keyed trainer holds the rows in key order, so its
// Gram is the latter when the keys reverse the rows.
TEST(fold_in, ials_trainer_gram_sums_the_rows_in_key_order) {
  ials_matrix f(4, 1), reversed(4, 1);
  f << 134217728.0f, 32768.0f, 1.25f, 1.25f;
  reversed = f.colwise().reverse();
  std::vector<std::uint64_t> keys = {40, 30, 20, 10};
  ASSERT_FALSE(ials_gram(f, 1) == ials_gram(reversed, 1)); // the order matters here
  EXPECT_TRUE(ials_trainer_gram(f, &keys) == ials_gram(reversed, 1));
  EXPECT_TRUE(ials_trainer_gram(f, nullptr) == ials_gram(f, 1));
  std::vector<std::uint64_t> ascending = {1, 2, 3, 4};
  EXPECT_TRUE(ials_trainer_gram(f, &ascending) == ials_gram(f, 1));
}

TEST(fold_in, ials_row_without_preference_is_the_cold_zero_row) {
  auto m = generated(false, 5);
  ials_config cfg;
  cfg.factors = 16;
  cfg.iterations = 2;
  cfg.binary = false;
  auto model = train_ials_model(m, cfg);
  const index_t cold = static_cast<index_t>(m.n_users() - 1);
  ASSERT_EQ(m.user_row(cold).size, 0u);
  ASSERT_TRUE(model->user_factors().row(cold).isZero(0.0f));
  Eigen::MatrixXf gram = ials_trainer_gram(model->item_factors(), nullptr);
  std::vector<float> start(cfg.factors, 0.5f);
  auto x = ials_fold_in_user(*model, gram, {}, cfg, start.data());
  EXPECT_TRUE(as_row(x) == model->user_factors().row(cold));
  // Cells with r <= 0 carry no preference (binary = false).
  x = ials_fold_in_user(*model, gram, {{3, -1.0f}, {7, 0.0f}}, cfg, start.data());
  EXPECT_TRUE(as_row(x).isZero(0.0f));
  // The item side: the last item has no cell.
  const index_t cold_item = static_cast<index_t>(m.n_items() - 1);
  ASSERT_TRUE(model->item_factors().row(cold_item).isZero(0.0f));
  auto y = ials_fold_in_item(*model, ials_trainer_gram(model->user_factors(), nullptr),
                             {}, cfg, start.data());
  EXPECT_TRUE(as_row(y).isZero(0.0f));
}

// A positive event on an item the user had not touched changes the user's
// factors and raises that item's score.
TEST(fold_in, ials_new_positive_event_raises_the_items_score) {
  auto m = generated(false, 6);
  ials_config cfg;
  cfg.factors = 16;
  cfg.iterations = 4;
  auto model = train_ials_model(m, cfg);
  const auto& item = model->item_factors();
  Eigen::MatrixXf gram = ials_trainer_gram(item, nullptr);
  int checked = 0;
  for (index_t u = 0; u < m.n_users() && checked < 25; ++u) {
    auto row = cells_of(m.user_row(u));
    if (row.size() < 3)
      continue;
    // The untouched item the user's current factors score lowest: the
    // clearest case for a rise.
    Eigen::VectorXf s = item * model->user_factors().row(u).transpose();
    index_t j = 0;
    for (index_t i = 0; i + 1 < m.n_items(); ++i)
      if (!contains(row, i) && (contains(row, j) || s[i] < s[j]))
        j = i;
    ASSERT_FALSE(contains(row, j));
    const float* start = model->user_factors().row(u).data();
    auto x0 = ials_fold_in_user(*model, gram, row, cfg, start);
    row.emplace_back(j, 1.0f);
    auto x1 = ials_fold_in_user(*model, gram, row, cfg, start);
    EXPECT_FALSE(as_row(x0) == as_row(x1)) << "user " << u;
    float before = as_row(x0).dot(item.row(j)), after = as_row(x1).dot(item.row(j));
    EXPECT_GT(after, before) << "user " << u << " item " << j;
    ++checked;
  }
  EXPECT_EQ(checked, 25);

  // A new user (no factors, zero start): the first event's item scores > 0.
  for (index_t j : {0u, 17u, 150u}) {
    auto x = ials_fold_in_user(*model, gram, {{j, 1.0f}}, cfg);
    EXPECT_GT(as_row(x).dot(item.row(j)), 0.0f) << "item " << j;
  }
  // A new item: after one more user's event, that user scores it higher.
  Eigen::MatrixXf user_gram = ials_trainer_gram(model->user_factors(), nullptr);
  const auto& user = model->user_factors();
  fold_in_cells col = {{1, 1.0f}, {2, 1.0f}};
  auto y0 = ials_fold_in_item(*model, user_gram, col, cfg);
  col.emplace_back(5, 1.0f);
  auto y1 = ials_fold_in_item(*model, user_gram, col, cfg);
  EXPECT_GT(as_row(y1).dot(user.row(5)), as_row(y0).dot(user.row(5)));
}

// ---- rating MF ----

mf_rows widened(const mf_factors& f, bool users) {
  const auto& x = users ? f.user : f.item;
  const auto& b = users ? f.user_bias : f.item_bias;
  mf_rows r(x.rows(), x.cols() + 1);
  r.leftCols(x.cols()) = x.cast<double>();
  r.col(x.cols()) = b.cast<double>();
  return r;
}

void expect_same(const mf_fold_in_result& got, const mf_rows& want, Eigen::Index row,
                 std::size_t& differ) {
  const auto k = want.cols() - 1;
  Eigen::RowVectorXf w = want.row(row).head(k).cast<float>();
  if (as_row(got.factors) != w || got.bias != static_cast<float>(want(row, k)))
    ++differ;
}

mf_config als_config() {
  mf_config cfg;
  cfg.solver = mf_solver::als;
  cfg.factors = 8;
  cfg.iterations = 6;
  cfg.reg = 0.05f;
  return cfg;
}

// Fold-in against a trained model equals a half-step of the trainer's ALS
// kernel (mf_als_half_step, what train_mf_factors runs) on that model.
TEST(fold_in, mf_rows_equal_a_half_step_on_the_model_bit_for_bit) {
  auto m = generated(true, 7);
  mf_config cfg = als_config();
  cfg.threads = 2;
  mf_factors f = train_mf_factors(m, cfg);
  const auto k = static_cast<Eigen::Index>(cfg.factors);

  mf_rows items = widened(f, false), users = widened(f, true);
  mf_rows next_users(users.rows(), k + 1), next_items(items.rows(), k + 1);
  mf_als_half_step(m, true, items, f.mu, cfg, next_users);
  mf_als_half_step(m, false, users, f.mu, cfg, next_items);

  std::size_t users_differ = 0, raw_differ = 0;
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto row = cells_of(m.user_row(u));
    expect_same(mf_fold_in_user(f, row, cfg), next_users, u, users_differ);
    auto x = mf_fold_in(items, f.mu, row, cfg, nullptr);
    ASSERT_EQ(x.size(), cfg.factors + 1);
    if (Eigen::Map<const Eigen::RowVectorXd>(x.data(), k + 1) != next_users.row(u))
      ++raw_differ;
  }
  EXPECT_EQ(users_differ, 0u);
  EXPECT_EQ(raw_differ, 0u);
  std::size_t items_differ = 0;
  for (index_t i = 0; i < m.n_items(); ++i)
    expect_same(mf_fold_in_item(f, cells_of(m.item_col(i)), cfg), next_items, i,
                items_differ);
  EXPECT_EQ(items_differ, 0u);

  // The trainer's next sweep starts from its double state, of which the
  // model keeps the float rounding: the same up to that rounding.
  mf_config more = cfg;
  more.iterations = cfg.iterations + 1;
  mf_factors g = train_mf_factors(m, more);
  double worst = 0;
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto r = mf_fold_in_user(f, cells_of(m.user_row(u)), cfg);
    worst = std::max(
        worst,
        static_cast<double>((as_row(r.factors) - g.user.row(u)).cwiseAbs().maxCoeff()));
    worst = std::max(worst, static_cast<double>(std::abs(r.bias - g.user_bias[u])));
  }
  std::printf("largest difference to the trainer's next sweep: %.3g\n", worst);
  EXPECT_LT(worst, 1e-6);
}

// Keyed: the trainer sums each row in key order (on the matrix renumbered by
// key); fold-in with the keyed config follows.
TEST(fold_in, mf_rows_equal_a_half_step_of_a_keyed_trainer) {
  auto m = generated(true, 8);
  auto user_keys = keys_for(m.n_users(), 3), item_keys = keys_for(m.n_items(), 4);
  mf_config cfg = als_config();
  cfg.user_keys = &user_keys;
  cfg.item_keys = &item_keys;
  mf_factors f = train_mf_factors(m, cfg);
  const auto k = static_cast<Eigen::Index>(cfg.factors);

  auto kr = make_key_renumbering(m.n_users(), m.n_items(), &user_keys, &item_keys);
  auto mr = renumbered(m, kr.user_order, kr.item_order);
  mf_rows items = widened(f, false), users = widened(f, true);
  mf_rows items_r(items.rows(), k + 1), users_r(users.rows(), k + 1);
  for (std::size_t r = 0; r < kr.item_order.size(); ++r)
    items_r.row(static_cast<Eigen::Index>(r)) = items.row(kr.item_order[r]);
  for (std::size_t r = 0; r < kr.user_order.size(); ++r)
    users_r.row(static_cast<Eigen::Index>(r)) = users.row(kr.user_order[r]);
  mf_rows next_users(users.rows(), k + 1), next_items(items.rows(), k + 1);
  mf_als_half_step(mr, true, items_r, f.mu, cfg, next_users);
  mf_als_half_step(mr, false, users_r, f.mu, cfg, next_items);

  // The model-level results are rounded to float, which hides most
  // differences in the order of the double sums; mf_fold_in's are not.
  std::size_t differ = 0, raw_differ = 0;
  auto same_raw = [&](const std::vector<double>& x, const mf_rows& want, std::size_t r) {
    if (Eigen::Map<const Eigen::RowVectorXd>(x.data(), k + 1)
        != want.row(static_cast<Eigen::Index>(r)))
      ++raw_differ;
  };
  for (std::size_t r = 0; r < kr.user_order.size(); ++r) {
    auto row = cells_of(m.user_row(kr.user_order[r]));
    expect_same(mf_fold_in_user(f, row, cfg), next_users, static_cast<Eigen::Index>(r),
                differ);
    same_raw(mf_fold_in(items, f.mu, row, cfg, &item_keys), next_users, r);
  }
  for (std::size_t r = 0; r < kr.item_order.size(); ++r) {
    auto col = cells_of(m.item_col(kr.item_order[r]));
    expect_same(mf_fold_in_item(f, col, cfg), next_items, static_cast<Eigen::Index>(r),
                differ);
    same_raw(mf_fold_in(users, f.mu, col, cfg, &user_keys), next_items, r);
  }
  EXPECT_EQ(differ, 0u);
  EXPECT_EQ(raw_differ, 0u);
}

TEST(fold_in, mf_row_without_ratings_is_the_cold_zero_row) {
  auto m = generated(true, 9);
  mf_config cfg = als_config();
  mf_factors f = train_mf_factors(m, cfg);
  const auto cold = static_cast<Eigen::Index>(m.n_users() - 1);
  ASSERT_EQ(m.user_row(static_cast<index_t>(cold)).size, 0u);
  auto r = mf_fold_in_user(f, {}, cfg);
  EXPECT_TRUE(as_row(r.factors) == f.user.row(cold));
  EXPECT_EQ(r.bias, f.user_bias[cold]);
  EXPECT_TRUE(as_row(r.factors).isZero(0.0f));
  EXPECT_EQ(r.bias, 0.0f);
  auto s = mf_fold_in_item(f, {}, cfg);
  EXPECT_TRUE(as_row(s.factors).isZero(0.0f));
  EXPECT_EQ(s.bias, 0.0f);
}

// A new rating moves the user's prediction for that item towards it.
TEST(fold_in, mf_new_rating_moves_the_prediction_towards_it) {
  auto m = generated(true, 10);
  mf_config cfg = als_config();
  mf_factors f = train_mf_factors(m, cfg);
  auto predict = [&](const mf_fold_in_result& r, index_t i) {
    return f.mu + r.bias + f.item_bias[i] + as_row(r.factors).dot(f.item.row(i));
  };
  int checked = 0;
  for (index_t u = 0; u < m.n_users() && checked < 25; ++u) {
    auto row = cells_of(m.user_row(u));
    if (row.size() < 3)
      continue;
    auto r0 = mf_fold_in_user(f, row, cfg);
    for (float rating : {5.0f, 1.0f}) {
      index_t j =
          static_cast<index_t>((u * 37 + (rating > 3 ? 0 : 91)) % (m.n_items() - 1));
      while (contains(row, j))
        j = (j + 1) % static_cast<index_t>(m.n_items() - 1);
      float before = predict(r0, j);
      fold_in_cells more = row;
      more.emplace_back(j, rating);
      auto r1 = mf_fold_in_user(f, more, cfg);
      EXPECT_FALSE(as_row(r0.factors) == as_row(r1.factors) && r0.bias == r1.bias);
      float after = predict(r1, j);
      if (rating > before)
        EXPECT_GT(after, before) << "user " << u << " item " << j << " rating " << rating;
      else
        EXPECT_LT(after, before) << "user " << u << " item " << j << " rating " << rating;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 25);
}

} // namespace
} // namespace shardrec::core
