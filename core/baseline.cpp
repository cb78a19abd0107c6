#include "core/baseline.hpp"

#include <algorithm>

namespace shardrec::core {

biases fit_biases(const interaction_matrix& train, const baseline_config& cfg) {
  biases b;
  b.mu = static_cast<float>(train.mean_value());
  b.user.assign(train.n_users(), 0.0f);
  b.item.assign(train.n_items(), 0.0f);
  for (int it = 0; it < cfg.iterations; ++it) {
    for (index_t i = 0; i < train.n_items(); ++i) {
      auto col = train.item_col(i);
      double s = 0;
      for (std::size_t k = 0; k < col.size; ++k)
        s += col.value[k] - b.mu - b.user[col.index[k]];
      b.item[i] = static_cast<float>(s / (cfg.reg_item + static_cast<double>(col.size)));
    }
    for (index_t u = 0; u < train.n_users(); ++u) {
      auto row = train.user_row(u);
      double s = 0;
      for (std::size_t k = 0; k < row.size; ++k)
        s += row.value[k] - b.mu - b.item[row.index[k]];
      b.user[u] = static_cast<float>(s / (cfg.reg_user + static_cast<double>(row.size)));
    }
  }
  return b;
}

namespace {

class baseline_model final : public model {
public:
  baseline_model(biases b, float lo, float hi) : b_(std::move(b)), lo_(lo), hi_(hi) {}
  std::string name() const override { return "baseline"; }
  std::size_t n_items() const override { return b_.item.size(); }
  void score_items(index_t, Eigen::Ref<Eigen::VectorXf> out) const override {
    for (std::size_t i = 0; i < b_.item.size(); ++i)
      out[static_cast<Eigen::Index>(i)] = b_.mu + b_.item[i];
  }
  bool predicts_ratings() const override { return true; }
  float predict(index_t u, index_t i) const override {
    return std::clamp(b_.predict(u, i), lo_, hi_);
  }

private:
  biases b_;
  float lo_, hi_;
};

} // namespace

std::unique_ptr<model> make_baseline_model(biases b, float min_rating, float max_rating) {
  return std::make_unique<baseline_model>(std::move(b), min_rating, max_rating);
}

} // namespace shardrec::core
