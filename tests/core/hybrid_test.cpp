#include "core/hybrid.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace shardrec::core {
namespace {

// A model with fixed per-item scores (the same for every user) and fixed
// evidence, so blends can be computed by hand.
class fixed_model final : public model {
public:
  fixed_model(std::vector<float> s, bool ratings, std::vector<contribution> why = {})
      : s_(std::move(s)), ratings_(ratings), why_(std::move(why)) {}
  std::string name() const override { return "fixed"; }
  std::size_t n_items() const override { return s_.size(); }
  void score_items(index_t, Eigen::Ref<Eigen::VectorXf> out) const override {
    for (std::size_t i = 0; i < s_.size(); ++i)
      out[static_cast<Eigen::Index>(i)] = s_[i];
  }
  bool predicts_ratings() const override { return ratings_; }
  float predict(index_t, index_t i) const override { return s_[i]; }
  std::vector<contribution> explain(index_t, index_t, std::size_t max) const override {
    auto w = why_;
    if (w.size() > max)
      w.resize(max);
    return w;
  }

private:
  std::vector<float> s_;
  bool ratings_;
  std::vector<contribution> why_;
};

TEST(Hybrid, StandardiseGivesZeroMeanUnitVariance) {
  Eigen::VectorXf v(4);
  v << 1, 2, 3, 4;
  standardise(v);
  EXPECT_NEAR(v.mean(), 0.0f, 1e-6);
  EXPECT_NEAR(v.squaredNorm() / 4, 1.0f, 1e-5);
  Eigen::VectorXf c = Eigen::VectorXf::Constant(3, 7.0f);
  standardise(c);
  EXPECT_EQ(c, Eigen::VectorXf::Zero(3));
}

TEST(Hybrid, BlendIsWeightedSumOfStandardisedScores) {
  // cf ranks 0 > 1 > 2; content ranks 2 > 1 > 0 with a larger scale.
  auto cf = std::make_shared<fixed_model>(std::vector<float>{3, 2, 1}, true);
  auto content = std::make_shared<fixed_model>(std::vector<float>{0, 50, 100}, false);
  hybrid_model h({{"cf", cf, 0.75f, 1.0f}, {"content", content, 0.25f, 0.0f}});
  Eigen::VectorXf out(3);
  h.score_items(0, out);
  // z-scores of (1,2,3) pattern: (-1.2247, 0, 1.2247)
  float z = std::sqrt(1.5f);
  EXPECT_NEAR(out[0], 0.75f * z - 0.25f * z, 1e-5);
  EXPECT_NEAR(out[1], 0.0f, 1e-5);
  EXPECT_NEAR(out[2], -0.75f * z + 0.25f * z, 1e-5);
  // Equal weights cancel exactly: scale of the raw scores does not matter.
  hybrid_model even({{"cf", cf, 0.5f, 0.0f}, {"content", content, 0.5f, 0.0f}});
  even.score_items(0, out);
  EXPECT_NEAR(out.cwiseAbs().maxCoeff(), 0.0f, 1e-5);
}

TEST(Hybrid, RecommendCarriesContributionsThatSumToScoreAndEvidence) {
  auto cf =
      std::make_shared<fixed_model>(std::vector<float>{3, 2, 1, 0}, true,
                                    std::vector<contribution>{{7, 0.9f}, {8, 0.5f}});
  auto pop = std::make_shared<fixed_model>(std::vector<float>{1, 1, 5, 1}, false);
  hybrid_model h({{"itemknn", cf, 0.6f, 1.0f}, {"popular", pop, 0.4f, 0.0f}});
  std::vector<index_t> seen{0};
  auto recs = h.recommend(0, 2, seen.data(), seen.size(), 1);
  ASSERT_EQ(recs.size(), 2u);
  for (const auto& r : recs) {
    EXPECT_NE(r.item, 0u);
    ASSERT_EQ(r.components.size(), 2u);
    EXPECT_NEAR(r.components[0].contribution + r.components[1].contribution, r.score,
                1e-5);
    EXPECT_EQ(r.components[0].name, "itemknn");
  }
  EXPECT_GE(recs[0].score, recs[1].score);
  // The evidence comes from the only component that has any, cut to max.
  ASSERT_EQ(recs[0].because.size(), 1u);
  EXPECT_EQ(recs[0].because[0].item, 7u);
  EXPECT_EQ(recs[0].because_from, "itemknn");
}

TEST(Hybrid, PredictBlendsOnlyRatingPredictors) {
  auto a = std::make_shared<fixed_model>(std::vector<float>{4, 2}, true);
  auto b = std::make_shared<fixed_model>(std::vector<float>{2, 4}, true);
  auto c = std::make_shared<fixed_model>(std::vector<float>{100, 100}, false);
  hybrid_model h({{"a", a, 1, 3}, {"b", b, 1, 1}, {"c", c, 1, 5}});
  EXPECT_TRUE(h.predicts_ratings());
  EXPECT_NEAR(h.predict(0, 0), (3 * 4 + 1 * 2) / 4.0f, 1e-6);
  EXPECT_NEAR(h.predict(0, 1), (3 * 2 + 1 * 4) / 4.0f, 1e-6);
}

} // namespace
} // namespace shardrec::core
