#include "core/popularity.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace shardrec::core {

status validate(const popularity_config& cfg) {
  if (cfg.trending
      && !(std::isfinite(cfg.half_life_seconds) && cfg.half_life_seconds > 0))
    return make_error(errc::invalid_argument,
                      "popularity_config.half_life_seconds = "
                          + std::to_string(cfg.half_life_seconds)
                          + ": must be a positive number of seconds");
  return {};
}

std::vector<float> popularity_scores(const interaction_matrix& train,
                                     const popularity_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  std::vector<double> acc(train.n_items(), 0.0);
  std::int64_t now = 0;
  if (cfg.trending) {
    if (cfg.now) {
      now = *cfg.now;
    } else {
      for (index_t u = 0; u < train.n_users(); ++u) {
        const auto* ts = train.user_timestamps(u);
        for (std::size_t k = 0; k < train.user_degree(u); ++k)
          now = std::max<std::int64_t>(now, ts[k]);
      }
    }
  }
  // Users ascending, items in row order: a fixed summation order.
  for (index_t u = 0; u < train.n_users(); ++u) {
    auto row = train.user_row(u);
    const auto* ts = train.user_timestamps(u);
    for (std::size_t k = 0; k < row.size; ++k) {
      double w = cfg.use_values ? static_cast<double>(row.value[k]) : 1.0;
      if (cfg.trending) {
        auto age = std::max<std::int64_t>(0, now - static_cast<std::int64_t>(ts[k]));
        w *= std::exp2(-static_cast<double>(age) / cfg.half_life_seconds);
      }
      acc[row.index[k]] += w;
    }
  }
  return std::vector<float>(acc.begin(), acc.end());
}

namespace {

class popularity_model final : public model {
public:
  popularity_model(std::vector<float> scores, bool trending)
      : scores_(std::move(scores)), trending_(trending) {}

  std::string name() const override { return trending_ ? "trending" : "popular"; }
  std::size_t n_items() const override { return scores_.size(); }
  void score_items(index_t, Eigen::Ref<Eigen::VectorXf> out) const override {
    SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == scores_.size());
    for (std::size_t i = 0; i < scores_.size(); ++i)
      out[static_cast<Eigen::Index>(i)] = scores_[i];
  }

private:
  std::vector<float> scores_;
  bool trending_;
};

} // namespace

std::unique_ptr<model> train_popularity(const interaction_matrix& train,
                                        const popularity_config& cfg) {
  return std::make_unique<popularity_model>(popularity_scores(train, cfg), cfg.trending);
}

} // namespace shardrec::core
