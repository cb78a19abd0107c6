#include "core/popularity.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

event ev(index_t u, index_t i, float v, std::int64_t t = 0,
         event_type type = event_type::purchase) {
  event e;
  e.user = u;
  e.item = i;
  e.value = v;
  e.timestamp = t;
  e.type = type;
  return e;
}

std::vector<float> scores_of(const model& m, index_t user) {
  Eigen::VectorXf out(static_cast<Eigen::Index>(m.n_items()));
  m.score_items(user, out);
  return {out.data(), out.data() + out.size()};
}

TEST(Popularity, CountsDistinctUsersOrSumsValues) {
  // item 0: users 0, 1, 2 (user 0 twice -> one cell); item 1: user 1;
  // item 2: nobody; item 3: users 0 and 3.
  std::vector<event> evs = {ev(0, 0, 2), ev(0, 0, 3), ev(1, 0, 1),   ev(2, 0, 1),
                            ev(1, 1, 4), ev(0, 3, 1), ev(3, 3, 0.5f)};
  auto m = interaction_matrix::build(4, 4, evs, merge_policy::sum);
  auto pop = train_popularity(m, popularity_config{});
  EXPECT_EQ(pop->name(), "popular");
  EXPECT_EQ(pop->n_items(), 4u);
  EXPECT_EQ(scores_of(*pop, 0), (std::vector<float>{3, 1, 0, 2}));

  popularity_config by_value;
  by_value.use_values = true;
  EXPECT_EQ(popularity_scores(m, by_value), (std::vector<float>{7, 4, 0, 1.5f}));
}

TEST(Popularity, SameScoresForEveryUserIncludingUnknown) {
  std::vector<event> evs = {ev(0, 0, 1), ev(1, 1, 1), ev(2, 1, 1)};
  auto m = interaction_matrix::build(3, 2, evs, merge_policy::sum);
  auto pop = train_popularity(m, popularity_config{});
  auto s0 = scores_of(*pop, 0);
  EXPECT_EQ(s0, scores_of(*pop, 2));
  EXPECT_EQ(s0, scores_of(*pop, 1000)); // beyond the matrix
  EXPECT_TRUE(pop->explain(0, 1, 5).empty());
  EXPECT_FALSE(pop->predicts_ratings());
}

TEST(Trending, DecaysByHalfLife) {
  const double h = 100;
  // Ages relative to now = 1000: item 0: 0 and 100 (1 + 0.5); item 1: 200
  // (0.25); item 2: 300 (0.125) and a future event (weighs 1).
  std::vector<event> evs = {ev(0, 0, 1, 1000), ev(1, 0, 1, 900), ev(0, 1, 1, 800),
                            ev(1, 2, 1, 700), ev(2, 2, 1, 1100)};
  auto m = interaction_matrix::build(3, 3, evs, merge_policy::sum);
  popularity_config cfg;
  cfg.trending = true;
  cfg.half_life_seconds = h;
  cfg.now = 1000;
  auto s = popularity_scores(m, cfg);
  EXPECT_FLOAT_EQ(s[0], 1.5f);
  EXPECT_FLOAT_EQ(s[1], 0.25f);
  EXPECT_FLOAT_EQ(s[2], 1.125f);

  // Default now = the latest timestamp (1100): ages 100, 200, 300, 400, 0.
  cfg.now.reset();
  s = popularity_scores(m, cfg);
  EXPECT_FLOAT_EQ(s[0], 0.5f + 0.25f);
  EXPECT_FLOAT_EQ(s[1], 0.125f);
  EXPECT_FLOAT_EQ(s[2], 0.0625f + 1.0f);

  cfg.use_values = true;
  auto mv = interaction_matrix::build(1, 1, {ev(0, 0, 3, 50)}, merge_policy::sum);
  cfg.now = 150;
  EXPECT_FLOAT_EQ(popularity_scores(mv, cfg)[0], 1.5f);

  auto model = train_popularity(m, cfg);
  EXPECT_EQ(model->name(), "trending");
}

TEST(Trending, ValidateRejectsBadHalfLife) {
  popularity_config cfg;
  cfg.half_life_seconds = 0;
  EXPECT_TRUE(validate(cfg).ok()); // ignored unless trending
  cfg.trending = true;
  auto st = validate(cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
  EXPECT_NE(st.err().message.find("half_life_seconds"), std::string::npos);
  cfg.half_life_seconds = std::nan("");
  EXPECT_FALSE(validate(cfg).ok());
  cfg.half_life_seconds = 3600;
  EXPECT_TRUE(validate(cfg).ok());
}

std::vector<event> load_ml100k() {
  const std::string path = test_data::path("ml-100k/u.data");
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing data set: " << path;
  std::vector<event> evs;
  long u, i, r, t;
  while (in >> u >> i >> r >> t)
    evs.push_back(ev(static_cast<index_t>(u - 1), static_cast<index_t>(i - 1),
                     static_cast<float>(r), t, event_type::rating));
  return evs;
}

TEST(Popularity, MovieLens100k) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u.data");
  auto evs = load_ml100k();
  ASSERT_EQ(evs.size(), 100000u);
  auto m = interaction_matrix::build(943, 1682, evs, merge_policy::last);
  auto pop = popularity_scores(m, popularity_config{});
  auto top = std::max_element(pop.begin(), pop.end()) - pop.begin();
  EXPECT_EQ(top, 49); // movie 50, Star Wars (1977): 583 ratings
  EXPECT_FLOAT_EQ(pop[49], 583.0f);

  // Trending against a brute-force sum over the raw events (u.data has one
  // rating per pair, so events and cells coincide).
  popularity_config cfg;
  cfg.trending = true;
  cfg.half_life_seconds = 30 * 86400.0;
  auto trend = popularity_scores(m, cfg);
  std::int64_t now = 0;
  for (const auto& e : evs)
    now = std::max(now, e.timestamp);
  std::vector<double> ref(1682, 0.0);
  for (const auto& e : evs)
    ref[e.item] +=
        std::exp2(-static_cast<double>(now - e.timestamp) / cfg.half_life_seconds);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(trend[i], ref[i], 1e-5 * std::max(1.0, ref[i])) << "item " << i;
    ASSERT_LE(trend[i], pop[i]);
  }
  EXPECT_EQ(trend, popularity_scores(m, cfg)); // deterministic
}

} // namespace
} // namespace shardrec::core
