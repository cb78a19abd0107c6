#include "core/metrics.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cmath>

namespace shardrec::core {

namespace {

bool is_relevant(const std::vector<index_t>& relevant, index_t item) {
  return std::binary_search(relevant.begin(), relevant.end(), item);
}

std::size_t hits_at_k(const std::vector<index_t>& ranked,
                      const std::vector<index_t>& relevant, std::size_t k) {
  std::size_t hits = 0;
  for (std::size_t r = 0; r < std::min(k, ranked.size()); ++r)
    hits += is_relevant(relevant, ranked[r]) ? 1 : 0;
  return hits;
}

} // namespace

error_metrics error_accumulator::result() const {
  error_metrics m;
  m.count = n_;
  if (n_ > 0) {
    m.rmse = std::sqrt(se_ / static_cast<double>(n_));
    m.mae = ae_ / static_cast<double>(n_);
  }
  return m;
}

double precision_at_k(const std::vector<index_t>& ranked,
                      const std::vector<index_t>& relevant, std::size_t k) {
  if (k == 0)
    return 0.0;
  return static_cast<double>(hits_at_k(ranked, relevant, k)) / static_cast<double>(k);
}

double recall_at_k(const std::vector<index_t>& ranked,
                   const std::vector<index_t>& relevant, std::size_t k) {
  if (relevant.empty())
    return 0.0;
  return static_cast<double>(hits_at_k(ranked, relevant, k))
         / static_cast<double>(relevant.size());
}

double ndcg_at_k(const std::vector<index_t>& ranked, const std::vector<index_t>& relevant,
                 std::size_t k) {
  double dcg = 0.0, idcg = 0.0;
  for (std::size_t r = 0; r < std::min(k, ranked.size()); ++r)
    if (is_relevant(relevant, ranked[r]))
      dcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  for (std::size_t r = 0; r < std::min(k, relevant.size()); ++r)
    idcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  return idcg > 0 ? dcg / idcg : 0.0;
}

double average_precision_at_k(const std::vector<index_t>& ranked,
                              const std::vector<index_t>& relevant, std::size_t k) {
  std::size_t denom = std::min(k, relevant.size());
  if (denom == 0)
    return 0.0;
  double sum = 0.0;
  std::size_t hits = 0;
  for (std::size_t r = 0; r < std::min(k, ranked.size()); ++r)
    if (is_relevant(relevant, ranked[r])) {
      ++hits;
      sum += static_cast<double>(hits) / static_cast<double>(r + 1);
    }
  return sum / static_cast<double>(denom);
}

ranking_accumulator::ranking_accumulator(std::size_t k, std::size_t n_items)
    : k_(k), recommended_(n_items, false) {}

void ranking_accumulator::add(const std::vector<index_t>& ranked,
                              const std::vector<index_t>& relevant) {
  auto hits = hits_at_k(ranked, relevant, k_);
  precision_ += k_ ? static_cast<double>(hits) / static_cast<double>(k_) : 0.0;
  recall_ += recall_at_k(ranked, relevant, k_);
  ndcg_ += ndcg_at_k(ranked, relevant, k_);
  map_ += average_precision_at_k(ranked, relevant, k_);
  hits_ += hits > 0 ? 1.0 : 0.0;
  ++users_;
  for (std::size_t r = 0; r < std::min(k_, ranked.size()); ++r)
    if (ranked[r] < recommended_.size())
      recommended_[ranked[r]] = true;
}

void ranking_accumulator::merge(const ranking_accumulator& other) {
  SHARDREC_ASSERT(other.k_ == k_ && other.recommended_.size() == recommended_.size());
  precision_ += other.precision_;
  recall_ += other.recall_;
  ndcg_ += other.ndcg_;
  map_ += other.map_;
  hits_ += other.hits_;
  users_ += other.users_;
  for (std::size_t i = 0; i < recommended_.size(); ++i)
    if (other.recommended_[i])
      recommended_[i] = true;
}

ranking_metrics ranking_accumulator::result() const {
  ranking_metrics m;
  m.users = users_;
  if (users_ > 0) {
    auto n = static_cast<double>(users_);
    m.precision = precision_ / n;
    m.recall = recall_ / n;
    m.ndcg = ndcg_ / n;
    m.map = map_ / n;
    m.hit_rate = hits_ / n;
    double pr = m.precision + m.recall;
    m.f1 = pr > 0 ? 2.0 * m.precision * m.recall / pr : 0.0;
  }
  if (!recommended_.empty())
    m.coverage =
        static_cast<double>(std::count(recommended_.begin(), recommended_.end(), true))
        / static_cast<double>(recommended_.size());
  return m;
}

} // namespace shardrec::core
