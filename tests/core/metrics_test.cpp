#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace shardrec::core {
namespace {

TEST(Metrics, RmseAndMaeByHand) {
  error_accumulator acc;
  acc.add(3.0, 4.0); // -1
  acc.add(5.0, 3.0); // +2
  acc.add(2.0, 2.0); // 0
  auto m = acc.result();
  EXPECT_EQ(m.count, 3u);
  EXPECT_NEAR(m.rmse, std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_NEAR(m.mae, 1.0, 1e-12);
}

TEST(Metrics, IdealRankingHasNdcgOne) {
  std::vector<index_t> relevant{2, 5, 9};
  EXPECT_DOUBLE_EQ(ndcg_at_k({5, 9, 2, 1, 0}, relevant, 5), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k({9, 2, 5}, relevant, 2), 1.0); // IDCG over min(k, |rel|)
  EXPECT_DOUBLE_EQ(average_precision_at_k({2, 5, 9}, relevant, 3), 1.0);
}

TEST(Metrics, HandComputedRankingValues) {
  std::vector<index_t> relevant{1, 4};
  std::vector<index_t> ranked{3, 1, 7, 4};
  // hits at ranks 2 and 4
  EXPECT_DOUBLE_EQ(precision_at_k(ranked, relevant, 4), 0.5);
  EXPECT_DOUBLE_EQ(recall_at_k(ranked, relevant, 2), 0.5);
  double dcg = 1.0 / std::log2(3.0) + 1.0 / std::log2(5.0);
  double idcg = 1.0 + 1.0 / std::log2(3.0);
  EXPECT_NEAR(ndcg_at_k(ranked, relevant, 4), dcg / idcg, 1e-12);
  EXPECT_NEAR(average_precision_at_k(ranked, relevant, 4), (1.0 / 2 + 2.0 / 4) / 2,
              1e-12);
  EXPECT_DOUBLE_EQ(ndcg_at_k({3, 7}, relevant, 2), 0.0);
}

TEST(Metrics, AccumulatorAveragesOverUsersAndMerges) {
  ranking_accumulator a(2, 10), b(2, 10);
  a.add({1, 2}, {1});    // P=0.5 R=1 hit
  b.add({3, 4}, {5, 6}); // P=0 R=0 no hit
  a.merge(b);
  auto m = a.result();
  EXPECT_EQ(m.users, 2u);
  EXPECT_DOUBLE_EQ(m.precision, 0.25); // hits / (k * users) = 1 / 4
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
  EXPECT_DOUBLE_EQ(m.hit_rate, 0.5);
  EXPECT_NEAR(m.f1, 2 * 0.25 * 0.5 / 0.75, 1e-12);
  EXPECT_DOUBLE_EQ(m.coverage, 0.4); // items 1,2,3,4 of 10
}

} // namespace
} // namespace shardrec::core
