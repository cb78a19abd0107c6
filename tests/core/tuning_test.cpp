// Tuning of the hybrid (core/tuning.hpp): the sample rule, a data set that
// does not depend on how the sample was gathered, a deterministic choice
// that is never worse on validation than the defaults, and eval's
// --no-tune path reproducing the default blend.
#include "core/tuning.hpp"

#include <algorithm>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "core/evaluate.hpp"
#include "core/generator.hpp"
#include "core/split.hpp"

namespace shardrec::core {
namespace {

dataset generated() {
  generator_config gc;
  gc.users = 400;
  gc.items = 200;
  gc.events = 16000;
  return generate(gc);
}

TEST(Tuning, TheSampleIsEveryUserUpToTheLimitThenAHashShare) {
  EXPECT_TRUE(in_tuning_sample("anyone", 100, 100));
  std::size_t in = 0;
  const std::size_t n = 20000;
  for (std::size_t u = 0; u < n; ++u)
    in += in_tuning_sample("user-" + std::to_string(u), n, 5000);
  // A quarter, up to the hash's unevenness (binomial sd ~61).
  EXPECT_NEAR(static_cast<double>(in), 5000.0, 300.0);
  // The rule is the user's alone: the same answer every time.
  EXPECT_EQ(in_tuning_sample("user-7", n, 5000), in_tuning_sample("user-7", n, 5000));
}

TEST(Tuning, TheSampleDataSetDoesNotDependOnTheOrderOfThePartitions) {
  const auto ds = generated();
  const auto a = tuning_sample(ds, ds.events, 300);
  ASSERT_FALSE(a.events.empty());
  // The same events gathered user by user in another order (as partitions
  // would send them: each user's events in their own order).
  std::vector<sample_event> events;
  std::vector<index_t> users(ds.users.size());
  for (index_t u = 0; u < users.size(); ++u)
    users[u] = u;
  std::mt19937 rng(3);
  std::shuffle(users.begin(), users.end(), rng);
  const auto n_users = ds.users.size();
  for (auto u : users)
    for (const auto& e : ds.events)
      if (e.user == u && in_tuning_sample(ds.users.external(u), n_users, 300))
        events.push_back({ds.users.external(u), ds.items.external(e.item), e.value,
                          e.type, e.timestamp});
  std::vector<std::pair<std::string, item_info>> items;
  for (index_t i = 0; i < ds.item_meta.size(); ++i)
    items.emplace_back(ds.items.external(i), ds.item_meta[i]);
  std::reverse(items.begin(), items.end());
  const auto b = make_tuning_dataset(events, items);
  ASSERT_EQ(a.users.size(), b.users.size());
  ASSERT_LT(a.users.size(), ds.users.size()); // a share, not everyone
  ASSERT_EQ(a.items.size(), b.items.size());
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t k = 0; k < a.events.size(); ++k) {
    EXPECT_EQ(a.users.external(a.events[k].user), b.users.external(b.events[k].user));
    EXPECT_EQ(a.items.external(a.events[k].item), b.items.external(b.events[k].item));
    EXPECT_EQ(a.events[k].timestamp, b.events[k].timestamp);
    EXPECT_EQ(a.events[k].value, b.events[k].value);
  }
  ASSERT_EQ(a.item_meta.size(), b.item_meta.size());
  for (std::size_t i = 0; i < a.item_meta.size(); ++i)
    EXPECT_EQ(a.item_meta[i].title, b.item_meta[i].title);
  EXPECT_FALSE(a.item_meta.empty());
}

TEST(Tuning, IsDeterministicAndNeverWorseOnValidationThanTheDefaults) {
  const auto ds = generated();
  const auto sample = tuning_sample(ds, ds.events, 5000);
  algo_options base;
  base.threads = 2;
  auto a = tune_hybrid(sample, base);
  ASSERT_TRUE(a.ok()) << a.err().message;
  base.threads = 1; // the thread count changes nothing
  auto b = tune_hybrid(sample, base);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->chosen.weights, b->chosen.weights);
  EXPECT_EQ(a->chosen.ials_alpha, b->chosen.ials_alpha);
  EXPECT_EQ(a->chosen.ease_lambda, b->chosen.ease_lambda);
  EXPECT_EQ(a->chosen.ials_reg, b->chosen.ials_reg);
  EXPECT_EQ(a->chosen.knn_neighbors, b->chosen.knn_neighbors);
  EXPECT_EQ(a->best.ndcg, b->best.ndcg);
  ASSERT_EQ(a->variants.size(), b->variants.size());
  for (std::size_t v = 0; v < a->variants.size(); ++v)
    EXPECT_EQ(a->variants[v].ndcg, b->variants[v].ndcg) << a->variants[v].what;

  EXPECT_EQ(a->default_weights, default_hybrid_weights(true));
  EXPECT_GE(a->best.ndcg, a->defaults.ndcg);
  EXPECT_GT(a->validation_users, 100u);
  EXPECT_EQ(a->validation, "latest event per user");
  // The default blend, then the simplex grid of four components by tenths.
  EXPECT_EQ(a->blends_tried, 1u + 286u);
  // Every chosen variant is the default or beats it on validation.
  auto ndcg_of = [&](const std::string& what) {
    for (const auto& v : a->variants)
      if (v.what == what)
        return v.ndcg;
    ADD_FAILURE() << "no variant " << what;
    return 0.0;
  };
  std::ostringstream alpha, lambda;
  alpha << "implicit-als alpha=" << a->chosen.ials_alpha;
  if (a->chosen.ials_reg > 0)
    alpha << " reg=" << a->chosen.ials_reg;
  lambda << "ease lambda=" << a->chosen.ease_lambda;
  EXPECT_GE(ndcg_of(alpha.str()), ndcg_of("implicit-als alpha=0.5"));
  EXPECT_GE(ndcg_of(lambda.str()), ndcg_of("ease lambda=100"));
  // One setting changed at a time: 5 iALS, 3 item-kNN, 4 EASE, 1 content.
  EXPECT_EQ(a->variants.size(), 13u);
  ndcg_of("implicit-als alpha=0.5 reg=0.005");
  ndcg_of("itemknn neighbors=100");
  // The neighbour count is tuned only for a blend that ranks with item-kNN.
  if (a->chosen.knn_neighbors > 0) {
    EXPECT_NE(("," + a->chosen.weights).find(",itemknn="), std::string::npos);
    EXPECT_GE(ndcg_of("itemknn neighbors=" + std::to_string(a->chosen.knn_neighbors)),
              ndcg_of("itemknn neighbors=40"));
  }
}

TEST(Tuning, EvalTunesTheHybridUnlessToldNotToOrGivenWeights) {
  const auto ds = generated();
  const auto s = leave_last_out(ds.events);
  eval_options opt;
  opt.algo.algo = "hybrid";
  opt.algo.threads = 2;
  auto tuned = evaluate(ds, s.train, s.test, opt);
  ASSERT_TRUE(tuned.ok()) << tuned.err().message;
  ASSERT_TRUE(tuned->tuning.has_value());
  EXPECT_FALSE(tuned->tuning->chosen.weights.empty());
  // --no-tune: the default blend, exactly as explicit default weights.
  opt.tune = false;
  auto plain = evaluate(ds, s.train, s.test, opt);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tuning.has_value());
  opt.tune = true;
  opt.algo.weights = default_hybrid_weights(true);
  auto explicit_defaults = evaluate(ds, s.train, s.test, opt);
  ASSERT_TRUE(explicit_defaults.ok());
  EXPECT_FALSE(explicit_defaults->tuning.has_value());
  EXPECT_EQ(plain->ranking.ndcg, explicit_defaults->ranking.ndcg);
  EXPECT_EQ(plain->ranking.hit_rate, explicit_defaults->ranking.hit_rate);
}

TEST(Tuning, ASampleWithoutValidationUsersIsRefused) {
  std::vector<sample_event> events{{"u1", "a", 1.0f, event_type::view, 10}};
  const auto ds = make_tuning_dataset(events, {});
  auto r = tune_hybrid(ds, algo_options{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("held-out"), std::string::npos) << r.err().message;
}

} // namespace
} // namespace shardrec::core
