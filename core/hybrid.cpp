#include "core/hybrid.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace shardrec::core {

void standardise(Eigen::Ref<Eigen::VectorXf> v) {
  if (v.size() == 0)
    return;
  double mean = v.cast<double>().mean();
  double var = (v.cast<double>().array() - mean).square().mean();
  if (var <= 1e-20) {
    v.setZero();
    return;
  }
  float m = static_cast<float>(mean);
  float inv = static_cast<float>(1.0 / std::sqrt(var));
  v = (v.array() - m) * inv;
}

hybrid_model::hybrid_model(std::vector<hybrid_part> parts) : parts_(std::move(parts)) {
  SHARDREC_ASSERT(!parts_.empty());
  n_items_ = parts_.front().model->n_items();
  for (const auto& p : parts_) {
    SHARDREC_ASSERT(p.model != nullptr && p.model->n_items() == n_items_);
    if (p.model->predicts_ratings())
      rating_weight_sum_ += p.rating_weight;
  }
}

Eigen::MatrixXf hybrid_model::component_scores(index_t user, Eigen::MatrixXf* raw) const {
  auto n = static_cast<Eigen::Index>(n_items_);
  Eigen::MatrixXf z(n, static_cast<Eigen::Index>(parts_.size()));
  if (raw)
    raw->resize(n, z.cols());
  for (std::size_t c = 0; c < parts_.size(); ++c) {
    auto col = z.col(static_cast<Eigen::Index>(c));
    if (parts_[c].weight == 0.0f) {
      col.setZero();
      if (raw)
        raw->col(static_cast<Eigen::Index>(c)).setZero();
      continue;
    }
    parts_[c].model->score_items(user, col);
    if (raw)
      raw->col(static_cast<Eigen::Index>(c)) = col;
    standardise(col);
  }
  return z;
}

void hybrid_model::score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const {
  Eigen::VectorXf w(static_cast<Eigen::Index>(parts_.size()));
  for (std::size_t c = 0; c < parts_.size(); ++c)
    w[static_cast<Eigen::Index>(c)] = parts_[c].weight;
  out = component_scores(user, nullptr) * w;
}

float hybrid_model::predict(index_t user, index_t item) const {
  double s = 0.0;
  for (const auto& p : parts_)
    if (p.rating_weight > 0 && p.model->predicts_ratings())
      s += p.rating_weight * p.model->predict(user, item);
  return rating_weight_sum_ > 0 ? static_cast<float>(s / rating_weight_sum_) : 0.0f;
}

std::vector<contribution> hybrid_model::explain(index_t user, index_t item,
                                                std::size_t max) const {
  // Evidence from the heaviest component that has item-level evidence.
  std::vector<std::size_t> order(parts_.size());
  for (std::size_t c = 0; c < order.size(); ++c)
    order[c] = c;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return parts_[a].weight > parts_[b].weight;
  });
  for (auto c : order) {
    if (parts_[c].weight <= 0)
      continue;
    auto e = parts_[c].model->explain(user, item, max);
    if (!e.empty())
      return e;
  }
  return {};
}

std::vector<recommendation>
hybrid_model::recommend(index_t user, std::size_t n, const index_t* exclude,
                        std::size_t n_exclude, std::size_t max_because,
                        const std::function<bool(index_t)>& keep) const {
  Eigen::MatrixXf raw;
  Eigen::MatrixXf z = component_scores(user, &raw);
  Eigen::VectorXf w(static_cast<Eigen::Index>(parts_.size()));
  for (std::size_t c = 0; c < parts_.size(); ++c)
    w[static_cast<Eigen::Index>(c)] = parts_[c].weight;
  Eigen::VectorXf total = z * w;
  auto top = top_n(total, n, exclude, n_exclude, keep);
  std::vector<recommendation> out;
  out.reserve(top.size());
  for (const auto& t : top) {
    recommendation r;
    r.item = t.item;
    r.score = t.score;
    auto row = static_cast<Eigen::Index>(t.item);
    float best = -1e30f;
    std::size_t best_c = parts_.size();
    for (std::size_t c = 0; c < parts_.size(); ++c) {
      if (parts_[c].weight == 0.0f)
        continue;
      auto col = static_cast<Eigen::Index>(c);
      component_score cs{parts_[c].name, raw(row, col), z(row, col),
                         parts_[c].weight * z(row, col)};
      r.components.push_back(cs);
      if (max_because > 0 && cs.contribution > best) {
        auto e = parts_[c].model->explain(user, t.item, max_because);
        if (!e.empty()) {
          best = cs.contribution;
          best_c = c;
          r.because = std::move(e);
        }
      }
    }
    if (best_c < parts_.size())
      r.because_from = parts_[best_c].name;
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace shardrec::core
