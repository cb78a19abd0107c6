#include "core/knn.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>

#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

constexpr float nan_v = std::numeric_limits<float>::quiet_NaN();

// A dense table (NaN = missing) as an interaction matrix, rows = users.
interaction_matrix from_table(const std::vector<std::vector<float>>& t) {
  std::vector<event> ev;
  for (std::size_t u = 0; u < t.size(); ++u)
    for (std::size_t i = 0; i < t[u].size(); ++i)
      if (!std::isnan(t[u][i]))
        ev.push_back({static_cast<index_t>(u), static_cast<index_t>(i), t[u][i]});
  return interaction_matrix::build(t.size(), t.empty() ? 0 : t[0].size(), ev,
                                   merge_policy::last);
}

//      i0 i1 i2
// u0:  5  3  4
// u1:  4  2  -
// u2:  1  5  2
// u3:  2  4  5
const std::vector<std::vector<float>> table4x3 = {
    {5, 3, 4}, {4, 2, nan_v}, {1, 5, 2}, {2, 4, 5}};

knn_config config_of(similarity_kind k, float shrinkage) {
  knn_config c;
  c.similarity = k;
  c.shrinkage = shrinkage;
  return c;
}

std::vector<index_t> all_of(std::size_t n) {
  std::vector<index_t> v(n);
  std::iota(v.begin(), v.end(), index_t{0});
  return v;
}

// Similarity of (a, b) through the public pieces, over every rater.
float sim_of(const interaction_matrix& m, const knn_config& cfg, knn_side side, index_t a,
             index_t b) {
  biases bs = fit_biases(m, cfg.baseline);
  auto ctx = make_pair_context(m, side, cfg, &bs);
  EXPECT_TRUE(ctx.ok());
  const std::size_t n_r = side == knn_side::item ? m.n_users() : m.n_items();
  auto sums = accumulate_pairs(m, *ctx, all_of(n_r), a, a + 1);
  auto totals = accumulate_totals(m, *ctx, all_of(n_r));
  for (auto k = sums.row_ptr[0]; k < sums.row_ptr[1]; ++k)
    if (sums.other[k] == b)
      return pair_similarity(*ctx, sums.stats[k], totals[a], totals[b]);
  return 0.0f;
}

TEST(Knn, ParseSimilarityRoundTrips) {
  for (auto k : {similarity_kind::cosine, similarity_kind::adjusted_cosine,
                 similarity_kind::pearson, similarity_kind::pearson_baseline,
                 similarity_kind::jaccard}) {
    auto p = parse_similarity(to_string(k));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, k);
  }
  EXPECT_FALSE(parse_similarity("msd").has_value());
  EXPECT_FALSE(parse_similarity("").has_value());
}

TEST(Knn, HandComputedItemSimilarities) {
  auto m = from_table(table4x3);
  auto s = [&](similarity_kind k, float shrink, index_t a, index_t b) {
    return sim_of(m, config_of(k, shrink), knn_side::item, a, b);
  };
  using sk = similarity_kind;
  // cosine: full norms ||i0||^2 = 46, ||i1||^2 = 54, ||i2||^2 = 45.
  EXPECT_NEAR(s(sk::cosine, 0, 0, 1), 36.0 / std::sqrt(46.0 * 54.0), 1e-6);
  EXPECT_NEAR(s(sk::cosine, 0, 0, 2), 32.0 / std::sqrt(46.0 * 45.0), 1e-6);
  EXPECT_NEAR(s(sk::cosine, 0, 1, 2), 42.0 / std::sqrt(54.0 * 45.0), 1e-6);
  // adjusted cosine: user means 4, 3, 8/3, 11/3.
  EXPECT_NEAR(s(sk::adjusted_cosine, 0, 0, 1), -29.0 / 34.0, 1e-6);
  EXPECT_NEAR(s(sk::adjusted_cosine, 0, 0, 2), -10.0 / std::sqrt(1180.0), 1e-6);
  EXPECT_NEAR(s(sk::adjusted_cosine, 0, 1, 2), -10.0 / std::sqrt(1180.0), 1e-6);
  // pearson on co-rated users with co-rated means.
  EXPECT_NEAR(s(sk::pearson, 0, 0, 1), -6.0 / std::sqrt(50.0), 1e-6);
  EXPECT_NEAR(s(sk::pearson, 0, 0, 2), 24.0 / std::sqrt(3276.0), 1e-6);
  EXPECT_NEAR(s(sk::pearson, 0, 1, 2), -6.0 / std::sqrt(84.0), 1e-6);
  // jaccard: raters {0,1,2,3}, {0,1,2,3}, {0,2,3}.
  EXPECT_FLOAT_EQ(s(sk::jaccard, 0, 0, 1), 1.0f);
  EXPECT_FLOAT_EQ(s(sk::jaccard, 0, 0, 2), 0.75f);
  EXPECT_FLOAT_EQ(s(sk::jaccard, 0, 1, 2), 0.75f);
  // shrinkage 2: times n / (n + 2), n = 4 for (0,1), 3 for (0,2) and (1,2).
  EXPECT_NEAR(s(sk::cosine, 2, 0, 1), 36.0 / std::sqrt(46.0 * 54.0) * 4 / 6, 1e-6);
  EXPECT_NEAR(s(sk::cosine, 2, 0, 2), 32.0 / std::sqrt(46.0 * 45.0) * 3 / 5, 1e-6);
  EXPECT_NEAR(s(sk::adjusted_cosine, 2, 0, 1), -29.0 / 34.0 * 4 / 6, 1e-6);
  EXPECT_NEAR(s(sk::pearson, 2, 0, 2), 24.0 / std::sqrt(3276.0) * 3 / 5, 1e-6);
  EXPECT_NEAR(s(sk::jaccard, 2, 1, 2), 0.75 * 3 / 5, 1e-6);

  // pearson_baseline against a direct evaluation on the residuals.
  biases b = fit_biases(m, knn_default_baseline());
  for (index_t a = 0; a < 3; ++a)
    for (index_t c = 0; c < 3; ++c) {
      if (a == c)
        continue;
      double sxy = 0, sxx = 0, syy = 0;
      int n = 0;
      for (index_t u = 0; u < 4; ++u) {
        float x = table4x3[u][a], y = table4x3[u][c];
        if (std::isnan(x) || std::isnan(y))
          continue;
        double ex = x - b.predict(u, a), ey = y - b.predict(u, c);
        sxy += ex * ey;
        sxx += ex * ex;
        syy += ey * ey;
        ++n;
      }
      double want = sxy / std::sqrt(sxx * syy) * n / (n + 10.0);
      EXPECT_NEAR(s(sk::pearson_baseline, 10, a, c), want, 1e-6) << a << "," << c;
    }

  // min_support drops pairs with fewer co-raters.
  auto c = config_of(sk::cosine, 0);
  c.min_support = 4;
  EXPECT_GT(sim_of(m, c, knn_side::item, 0, 1), 0.0f);
  EXPECT_EQ(sim_of(m, c, knn_side::item, 0, 2), 0.0f);
}

TEST(Knn, HandComputedUserSimilarities) {
  auto m = from_table(table4x3);
  using sk = similarity_kind;
  // u0 = (5,3,4), u2 = (1,5,2): dot 28, norms 50 and 30.
  EXPECT_NEAR(sim_of(m, config_of(sk::cosine, 0), knn_side::user, 0, 2),
              28.0 / std::sqrt(1500.0), 1e-6);
  // u0 and u1 share items {0,1} of {0,1,2}.
  EXPECT_FLOAT_EQ(sim_of(m, config_of(sk::jaccard, 0), knn_side::user, 0, 1), 2.0f / 3);
  // pearson(u0, u2): x = 5,3,4 (mean 4), y = 1,5,2 (mean 8/3):
  // sum dx dy = 1*(-5/3) + (-1)(7/3) + 0 = -4, sum dx^2 = 2, sum dy^2 = 78/9.
  EXPECT_NEAR(sim_of(m, config_of(sk::pearson, 0), knn_side::user, 0, 2),
              -4.0 / std::sqrt(2.0 * 78.0 / 9.0), 1e-6);
  // adjusted cosine (user side: minus the item's mean; item means 3, 3.5, 11/3):
  // u0 = (2, -0.5, 1/3), u3 = (-1, 0.5, 4/3): sxy = -2 - 0.25 + 4/9.
  double sxy = -2 - 0.25 + 4.0 / 9, sxx = 4 + 0.25 + 1.0 / 9, syy = 1 + 0.25 + 16.0 / 9;
  EXPECT_NEAR(sim_of(m, config_of(sk::adjusted_cosine, 0), knn_side::user, 0, 3),
              sxy / std::sqrt(sxx * syy), 1e-6);
}

TEST(Knn, NeighbourListsFromTableAreSortedAndPositive) {
  auto m = from_table(table4x3);
  auto cfg = config_of(similarity_kind::cosine, 0);
  auto l = item_neighbors(m, cfg);
  ASSERT_EQ(l.size(), 3u);
  // Row 0: cos(0,1) = 0.7223 > cos(0,2) = 0.7033.
  ASSERT_EQ(l[0].size(), 2u);
  EXPECT_EQ(l[0][0].id, 1u);
  EXPECT_EQ(l[0][1].id, 2u);
  EXPECT_NEAR(l[0][0].similarity, 36.0 / std::sqrt(46.0 * 54.0), 1e-6);
  // Adjusted cosine is negative everywhere here: no neighbours at all.
  for (const auto& row :
       item_neighbors(m, config_of(similarity_kind::adjusted_cosine, 0)))
    EXPECT_TRUE(row.empty());
}

TEST(Knn, TiesBreakByIdAscending) {
  // Items 1..3 have the same raters as item 0; item 4 only half of them.
  std::vector<event> ev;
  for (index_t u : {0u, 1u})
    for (index_t i : {3u, 1u, 0u, 2u})
      ev.push_back({u, i, 1.0f});
  ev.push_back({0, 4, 1.0f});
  auto m = interaction_matrix::build(2, 5, ev, merge_policy::last);
  auto cfg = config_of(similarity_kind::jaccard, 0);
  cfg.neighbors = 0;
  auto all = item_neighbors(m, cfg);
  ASSERT_EQ(all[0].size(), 4u);
  for (index_t k = 0; k < 3; ++k) {
    EXPECT_EQ(all[0][k].id, k + 1);
    EXPECT_EQ(all[0][k].similarity, 1.0f);
  }
  EXPECT_EQ(all[0][3].id, 4u);
  EXPECT_EQ(all[0][3].similarity, 0.5f);
  cfg.neighbors = 2;
  auto top2 = item_neighbors(m, cfg);
  ASSERT_EQ(top2[2].size(), 2u);
  EXPECT_EQ(top2[2][0].id, 0u);
  EXPECT_EQ(top2[2][1].id, 1u);
}

// ---- ML-100K u1 ----------------------------------------------------------

struct u1_data {
  dataset ds;
  interaction_matrix train;
  std::vector<event> test;
};

void read_tsv(const std::string& path, dataset& ds, std::vector<event>& out) {
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing data file " << path
                  << " (SHARDREC_DATA_DIR must point at the shared data sets)";
  std::string u, i, r, ts;
  while (std::getline(in, u, '\t') && std::getline(in, i, '\t')
         && std::getline(in, r, '\t') && std::getline(in, ts)) {
    event e;
    e.user = ds.users.intern(u);
    e.item = ds.items.intern(i);
    e.value = std::stof(r);
    e.timestamp = std::stoll(ts);
    out.push_back(e);
  }
}

const u1_data& u1() {
  static const u1_data d = [] {
    u1_data d;
    std::vector<event> train;
    [&] { read_tsv(test_data::path("ml-100k/u1.base"), d.ds, train); }();
    d.train = interaction_matrix::build(d.ds.users.size(), d.ds.items.size(), train,
                                        merge_policy::last);
    // Test ids interned after the build: unseen ones fall outside the shape.
    [&] { read_tsv(test_data::path("ml-100k/u1.test"), d.ds, d.test); }();
    return d;
  }();
  return d;
}

bool same_lists(const neighbor_lists& a, const neighbor_lists& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t e = 0; e < a.size(); ++e) {
    if (a[e].size() != b[e].size())
      return false;
    for (std::size_t k = 0; k < a[e].size(); ++k)
      if (a[e][k].id != b[e][k].id
          || std::memcmp(&a[e][k].similarity, &b[e][k].similarity, sizeof(float)) != 0)
        return false;
  }
  return true;
}

TEST(Knn, Ml100kListsSymmetricSelfFreeAndThreadIndependent) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  const auto& m = u1().train;
  ASSERT_EQ(m.nnz(), 80000u);
  for (auto kind : {similarity_kind::cosine, similarity_kind::adjusted_cosine,
                    similarity_kind::pearson, similarity_kind::pearson_baseline,
                    similarity_kind::jaccard}) {
    auto cfg = config_of(kind, 100);
    cfg.neighbors = 0;
    auto all = item_neighbors(m, cfg);
    ASSERT_EQ(all.size(), m.n_items());
    // Dense copy of the positive similarities (0 = absent) to check symmetry.
    const std::size_t n = all.size();
    std::vector<float> dense(n * n, 0.0f);
    std::size_t pairs = 0;
    for (index_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < all[i].size(); ++k) {
        const auto& nb = all[i][k];
        ASSERT_NE(nb.id, i) << to_string(kind);
        ASSERT_GT(nb.similarity, 0.0f);
        ASSERT_LE(nb.similarity, 1.0f);
        if (k > 0) {
          ASSERT_TRUE(
              all[i][k - 1].similarity > nb.similarity
              || (all[i][k - 1].similarity == nb.similarity && all[i][k - 1].id < nb.id));
        }
        dense[i * n + nb.id] = nb.similarity;
        ++pairs;
      }
    }
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j)
        ASSERT_EQ(dense[i * n + j], dense[j * n + i])
            << to_string(kind) << " " << i << "," << j;
    EXPECT_GT(pairs, 10000u) << to_string(kind);
    cfg.neighbors = 40;
    auto one = item_neighbors(m, cfg);
    cfg.threads = 2;
    EXPECT_TRUE(same_lists(one, item_neighbors(m, cfg))) << to_string(kind);
    for (std::size_t i = 0; i < one.size(); ++i) {
      ASSERT_LE(one[i].size(), 40u);
      ASSERT_TRUE(std::equal(one[i].begin(), one[i].end(), all[i].begin(),
                             [](const neighbor& a, const neighbor& b) {
                               return a.id == b.id && a.similarity == b.similarity;
                             }));
    }
  }
}

// Three arbitrary rater subsets, merged in two orders and computed by two
// entity-row owners, give exactly the lists of item_neighbors/user_neighbors.
TEST(Knn, Ml100kPartialSumsMergeExactly) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  const auto& m = u1().train;
  std::mt19937 rng(7);
  for (auto side : {knn_side::item, knn_side::user}) {
    for (auto kind : {similarity_kind::cosine, similarity_kind::adjusted_cosine,
                      similarity_kind::pearson, similarity_kind::pearson_baseline,
                      similarity_kind::jaccard}) {
      // The user side shares every code path; two kinds keep the test short.
      if (side == knn_side::user
          && (kind == similarity_kind::cosine || kind == similarity_kind::adjusted_cosine
              || kind == similarity_kind::pearson_baseline))
        continue;
      auto cfg = config_of(kind, 100);
      const auto want =
          side == knn_side::item ? item_neighbors(m, cfg) : user_neighbors(m, cfg);
      biases b = fit_biases(m, cfg.baseline);
      auto ctx = make_pair_context(m, side, cfg, &b);
      ASSERT_TRUE(ctx.ok());
      const std::size_t n_r = side == knn_side::item ? m.n_users() : m.n_items();
      const auto n_e = static_cast<index_t>(want.size());
      std::vector<std::vector<index_t>> part(3);
      for (index_t r = 0; r < n_r; ++r)
        part[std::uniform_int_distribution<int>(0, 2)(rng)].push_back(r);
      for (auto& p : part)
        std::shuffle(p.begin(), p.end(), rng);
      ASSERT_FALSE(part[0].empty() || part[1].empty() || part[2].empty());

      std::vector<entity_total> t[3];
      for (int p = 0; p < 3; ++p)
        t[p] = accumulate_totals(m, *ctx, part[p]);
      auto totals = t[2];
      ASSERT_TRUE(merge(totals, t[0]).ok());
      ASSERT_TRUE(merge(totals, t[1]).ok());

      neighbor_lists got;
      // Three owners of entity rows: [0, n/4), [n/4, n/2), [n/2, n).
      const index_t q1 = n_e / 4, q2 = n_e / 2;
      for (auto [lo, hi] :
           {std::pair{index_t{0}, q1}, std::pair{q1, q2}, std::pair{q2, n_e}}) {
        pair_sums s[3];
        for (int p = 0; p < 3; ++p)
          s[p] = accumulate_pairs(m, *ctx, part[p], lo, hi);
        pair_sums ab = s[0];
        ASSERT_TRUE(merge(ab, s[1]).ok());
        ASSERT_TRUE(merge(ab, s[2]).ok());
        pair_sums cb = s[2];
        ASSERT_TRUE(merge(cb, s[1]).ok());
        ASSERT_TRUE(merge(cb, s[0]).ok());
        ASSERT_EQ(ab.other, cb.other);
        ASSERT_EQ(ab.row_ptr, cb.row_ptr);
        ASSERT_EQ(0, std::memcmp(ab.stats.data(), cb.stats.data(),
                                 ab.stats.size() * sizeof(pair_stats)));
        auto lists = finalize_neighbors(ab, totals, *ctx, cfg.neighbors);
        for (auto& l : lists)
          got.push_back(std::move(l));
      }
      EXPECT_TRUE(same_lists(got, want))
          << (side == knn_side::item ? "item " : "user ") << to_string(kind);
    }
  }
  // Mismatched pieces are refused.
  pair_sums a, c;
  a.entity_end = 2;
  a.row_ptr = {0, 0, 0};
  c.row_ptr = {0};
  EXPECT_FALSE(merge(a, c).ok());
  std::vector<entity_total> x(3), y(4);
  EXPECT_FALSE(merge(x, y).ok());
}

TEST(Knn, ContextRejectsMissingBiases) {
  auto m = from_table(table4x3);
  auto cfg = config_of(similarity_kind::pearson_baseline, 0);
  EXPECT_FALSE(make_pair_context(m, knn_side::item, cfg, nullptr).ok());
  biases wrong;
  wrong.user.assign(2, 0.0f);
  wrong.item.assign(3, 0.0f);
  EXPECT_FALSE(make_pair_context(m, knn_side::item, cfg, &wrong).ok());
  cfg.similarity = similarity_kind::cosine;
  EXPECT_FALSE(
      make_pair_context(m, knn_side::item, cfg, nullptr, std::ldexp(1.0, 40)).ok());
  EXPECT_TRUE(make_pair_context(m, knn_side::item, cfg, nullptr).ok());
}

// ---- Prediction, ranking, explanations --------------------------------------

// u0: i0=4, i1=2; u1: i0=5, i1=3, i2=1; u2: i1=4, i2=2.
// Item jaccard: (0,1) = 2/3, (0,2) = 1/3, (1,2) = 2/3.
// User jaccard: (0,1) = 2/3, (0,2) = 1/3, (1,2) = 2/3.
interaction_matrix tiny() {
  return from_table({{4, 2, nan_v}, {5, 3, 1}, {nan_v, 4, 2}});
}

TEST(Knn, ItemPredictionByHand) {
  auto m = tiny();
  auto cfg = config_of(similarity_kind::jaccard, 0);
  cfg.baseline_correction = false;
  cfg.neighbors = 0;
  auto basic = train_item_knn(m, cfg);
  EXPECT_TRUE(basic->predicts_ratings());
  EXPECT_EQ(basic->name(), "itemknn");
  // u2 rated i1 = 4 (sim 2/3) and i2 = 2 (sim 1/3).
  EXPECT_NEAR(basic->predict(2, 0), (2.0 / 3 * 4 + 1.0 / 3 * 2) / 1.0, 1e-6);
  cfg.neighbors = 1;
  EXPECT_NEAR(train_item_knn(m, cfg)->predict(2, 0), 4.0, 1e-6);

  cfg.neighbors = 40;
  cfg.baseline_correction = true;
  auto knnb = train_item_knn(m, cfg);
  biases b = fit_biases(m, cfg.baseline);
  double want = b.predict(2, 0)
                + (2.0 / 3 * (4 - b.predict(2, 1)) + 1.0 / 3 * (2 - b.predict(2, 2)));
  EXPECT_NEAR(knnb->predict(2, 0), want, 1e-5);
  // Cold user / item: the clamped baseline.
  EXPECT_NEAR(knnb->predict(7, 0), std::clamp(b.predict(7, 0), 1.0f, 5.0f), 1e-6);
  EXPECT_NEAR(knnb->predict(0, 9), std::clamp(b.predict(0, 9), 1.0f, 5.0f), 1e-6);
}

TEST(Knn, UserPredictionByHand) {
  auto m = tiny();
  auto cfg = config_of(similarity_kind::jaccard, 0);
  cfg.baseline_correction = false;
  auto basic = train_user_knn(m, cfg);
  EXPECT_EQ(basic->name(), "userknn");
  // i2 was rated by u1 = 1 (sim 2/3) and u2 = 2 (sim 1/3).
  EXPECT_NEAR(basic->predict(0, 2), (2.0 / 3 * 1 + 1.0 / 3 * 2) / 1.0, 1e-6);
  // Clamped to the training range [1, 5]: a lone neighbour's rating stays inside.
  cfg.baseline_correction = true;
  auto knnb = train_user_knn(m, cfg);
  biases b = fit_biases(m, cfg.baseline);
  double want = b.predict(0, 2)
                + (2.0 / 3 * (1 - b.predict(1, 2)) + 1.0 / 3 * (2 - b.predict(2, 2)));
  EXPECT_NEAR(knnb->predict(0, 2), std::clamp(want, 1.0, 5.0), 1e-5);
}

TEST(Knn, ScoresAndExplanations) {
  auto m = tiny();
  auto cfg = config_of(similarity_kind::jaccard, 0);
  auto item = train_item_knn(m, cfg);
  Eigen::VectorXf s(3);
  item->score_items(2, s);
  // u2 has i1, i2: i0 gets 2/3 + 1/3, i1 gets 2/3 (from i2), i2 gets 2/3.
  EXPECT_NEAR(s[0], 1.0, 1e-6);
  EXPECT_NEAR(s[1], 2.0 / 3, 1e-6);
  EXPECT_NEAR(s[2], 2.0 / 3, 1e-6);
  auto why = item->explain(2, 0, 5);
  ASSERT_EQ(why.size(), 2u);
  EXPECT_EQ(why[0].item, 1u);
  EXPECT_NEAR(why[0].weight, 2.0 / 3, 1e-6);
  EXPECT_EQ(why[1].item, 2u);
  EXPECT_NEAR(why[1].weight, 1.0 / 3, 1e-6);
  EXPECT_EQ(item->explain(2, 0, 1).size(), 1u);
  // Unknown user: popularity.
  item->score_items(9, s);
  EXPECT_EQ(s, Eigen::Vector3f(2, 3, 2));

  auto user = train_user_knn(m, cfg);
  user->score_items(0, s);
  // u0's neighbours u1 (2/3: i0,i1,i2) and u2 (1/3: i1,i2).
  EXPECT_NEAR(s[0], 2.0 / 3, 1e-6);
  EXPECT_NEAR(s[1], 1.0, 1e-6);
  EXPECT_NEAR(s[2], 1.0, 1e-6);
  // i2 for u0: u1 shares i0, i1 (2/3 each), u2 shares i1 (1/3).
  why = user->explain(0, 2, 5);
  ASSERT_EQ(why.size(), 2u);
  EXPECT_EQ(why[0].item, 1u);
  EXPECT_NEAR(why[0].weight, 1.0, 1e-6);
  EXPECT_EQ(why[1].item, 0u);
  EXPECT_NEAR(why[1].weight, 2.0 / 3, 1e-6);
}

double rmse_of(const model& mdl, const std::vector<event>& test, float& lo, float& hi) {
  double se = 0;
  lo = 1e9f;
  hi = -1e9f;
  for (const auto& e : test) {
    float p = mdl.predict(e.user, e.item);
    lo = std::min(lo, p);
    hi = std::max(hi, p);
    se += (p - e.value) * (p - e.value);
  }
  return std::sqrt(se / static_cast<double>(test.size()));
}

TEST(Knn, Ml100kU1Rmse) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  const auto& d = u1();
  ASSERT_EQ(d.test.size(), 20000u);
  knn_config cfg; // defaults: pearson_baseline, k = 40, shrinkage 100
  for (auto side : {knn_side::item, knn_side::user}) {
    auto t0 = std::chrono::steady_clock::now();
    auto mdl = side == knn_side::item ? train_item_knn(d.train, cfg)
                                      : train_user_knn(d.train, cfg);
    auto t1 = std::chrono::steady_clock::now();
    float lo, hi;
    double rmse = rmse_of(*mdl, d.test, lo, hi);
    auto t2 = std::chrono::steady_clock::now();
    std::printf(
        "ml-100k u1 %s pearson_baseline k=40 shrink=100: RMSE %.4f, train %.3f s, "
        "predict 20000 in %.3f s\n",
        mdl->name().c_str(), rmse, std::chrono::duration<double>(t1 - t0).count(),
        std::chrono::duration<double>(t2 - t1).count());
    EXPECT_LT(rmse, 0.95) << mdl->name();
    EXPECT_GE(lo, 1.0f);
    EXPECT_LE(hi, 5.0f);
  }
}

} // namespace
} // namespace shardrec::core
