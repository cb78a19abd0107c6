#include "core/topn.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace shardrec::core {
namespace {

TEST(TopN, PicksBestInRankOrderAndBreaksTiesByIndex) {
  Eigen::VectorXf s(6);
  s << 0.5f, 2.0f, 1.0f, 2.0f, -1.0f, 1.0f;
  auto top = top_n(s, 4);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(items_of(top), (std::vector<index_t>{1, 3, 2, 5}));
  EXPECT_FLOAT_EQ(top[0].score, 2.0f);
}

TEST(TopN, ExcludesSeenItemsNaNAndFiltered) {
  Eigen::VectorXf s(6);
  s << 9.0f, 8.0f, std::nanf(""), 6.0f, 5.0f, 4.0f;
  std::vector<index_t> seen{0, 3};
  auto top = top_n(s, 3, seen.data(), seen.size(), [](index_t i) { return i != 4; });
  EXPECT_EQ(items_of(top), (std::vector<index_t>{1, 5}));
}

TEST(TopN, NLargerThanCatalogueReturnsAllSorted) {
  Eigen::VectorXf s(3);
  s << 1.0f, 3.0f, 2.0f;
  EXPECT_EQ(items_of(top_n(s, 10)), (std::vector<index_t>{1, 2, 0}));
  EXPECT_TRUE(top_n(s, 0).empty());
}

TEST(TopN, AgreesWithFullSortOnRandomScores) {
  std::mt19937 rng(7);
  Eigen::VectorXf s(500);
  for (int i = 0; i < s.size(); ++i)
    s[i] = static_cast<float>(rng() % 50); // many ties
  std::vector<scored_item> all;
  for (int i = 0; i < s.size(); ++i)
    all.push_back({static_cast<index_t>(i), s[i]});
  std::sort(all.begin(), all.end(), ranks_before);
  auto top = top_n(s, 37);
  ASSERT_EQ(top.size(), 37u);
  for (std::size_t r = 0; r < top.size(); ++r) {
    EXPECT_EQ(top[r].item, all[r].item);
    EXPECT_EQ(top[r].score, all[r].score);
  }
}

} // namespace
} // namespace shardrec::core
