#include "core/evaluate.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace shardrec::core {
namespace {

// Adds a rating of (user, item) to ds, interning the ids.
event rate(dataset& ds, const char* u, const char* i, float v) {
  event e;
  e.user = ds.users.intern(u);
  e.item = ds.items.intern(i);
  e.value = v;
  e.type = event_type::rating;
  return e;
}

TEST(Evaluate, PopularityRankingMetricsByHand) {
  dataset ds;
  // Train: item a seen by 3 users, b by 2, c by 1, d by nobody.
  std::vector<event> train{rate(ds, "u1", "a", 5), rate(ds, "u2", "a", 4),
                           rate(ds, "u3", "a", 3), rate(ds, "u2", "b", 2),
                           rate(ds, "u3", "b", 1), rate(ds, "u3", "c", 3)};
  ds.items.intern("d");
  // Test: u1 holds b (popular rank 1 among unseen), u2 holds d (rank 2 after c).
  std::vector<event> test{rate(ds, "u1", "b", 4), rate(ds, "u2", "d", 5)};
  eval_options opt;
  opt.algo.algo = "popular";
  opt.algo.threads = 2;
  opt.k = 1;
  auto rep = evaluate(ds, train, test, opt);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_EQ(rep->users, 3u);
  EXPECT_EQ(rep->items, 4u);
  EXPECT_EQ(rep->train_interactions, 6u);
  EXPECT_FALSE(rep->predicts_ratings);
  EXPECT_EQ(rep->ranking.users, 2u);
  // u1: top-1 of {b, c, d} = b: hit. u2: top-1 of {c, d} = c: miss.
  EXPECT_DOUBLE_EQ(rep->ranking.precision, 0.5);
  EXPECT_DOUBLE_EQ(rep->ranking.ndcg, 0.5);
  EXPECT_DOUBLE_EQ(rep->ranking.hit_rate, 0.5);
  EXPECT_DOUBLE_EQ(rep->ranking.coverage, 0.5); // b and c of 4 items

  opt.k = 2; // u2 now finds d at rank 2
  rep = evaluate(ds, train, test, opt);
  ASSERT_TRUE(rep.ok());
  EXPECT_DOUBLE_EQ(rep->ranking.recall, 1.0);
  EXPECT_NEAR(rep->ranking.ndcg, (1.0 + 1.0 / std::log2(3.0)) / 2, 1e-12);
}

TEST(Evaluate, BaselineReportsRatingErrors) {
  dataset ds;
  std::vector<event> train{rate(ds, "u1", "a", 5), rate(ds, "u2", "a", 3),
                           rate(ds, "u1", "b", 4), rate(ds, "u2", "b", 2)};
  std::vector<event> test{rate(ds, "u1", "c", 4)};
  eval_options opt;
  opt.algo.algo = "baseline";
  auto rep = evaluate(ds, train, test, opt);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  EXPECT_TRUE(rep->predicts_ratings);
  EXPECT_EQ(rep->errors.count, 1u);
  // Item c is cold: prediction = mu + b_u1 with mu = 3.5, b_u1 > 0.
  EXPECT_GT(rep->errors.rmse, 0.0);
  EXPECT_LT(rep->errors.rmse, 0.5);
}

TEST(Evaluate, RejectsUnknownAlgorithmAndZeroK) {
  dataset ds;
  std::vector<event> train{rate(ds, "u1", "a", 5)};
  eval_options opt;
  opt.algo.algo = "nonsense";
  auto rep = evaluate(ds, train, {}, opt);
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.err().code, errc::invalid_argument);
  EXPECT_NE(rep.err().message.find("nonsense"), std::string::npos);
  opt.algo.algo = "popular";
  opt.k = 0;
  EXPECT_FALSE(evaluate(ds, train, {}, opt).ok());
}

TEST(Evaluate, HybridRejectsBadWeights) {
  dataset ds;
  std::vector<event> train{rate(ds, "u1", "a", 5), rate(ds, "u2", "b", 3)};
  eval_options opt;
  opt.algo.algo = "hybrid";
  opt.algo.weights = "popular=abc";
  auto rep = evaluate(ds, train, {}, opt);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.err().message.find("popular"), std::string::npos);
  opt.algo.weights = "unknownthing=1";
  EXPECT_FALSE(evaluate(ds, train, {}, opt).ok());
}

} // namespace
} // namespace shardrec::core
