// Accuracy and ranking metrics.
//
// Ranking metrics follow the usual top-N protocol: for each evaluated user,
// `ranked` is the model's list (best first, training items already removed)
// and `relevant` the user's held-out items. Figures are means over the users
// added (users without relevant items should not be added):
//   precision@K = hits / K            (so the mean equals hits / (K * users))
//   recall@K    = hits / |relevant|
//   ndcg@K      = DCG / IDCG, binary gains, log2(rank + 1) discounts, IDCG over
//                 min(K, |relevant|) hits
//   map@K       = sum over hit ranks r of precision@r / min(K, |relevant|)
//   hit_rate    = share of users with at least one hit
//   f1          = harmonic mean of the mean precision and mean recall
//   coverage    = distinct items recommended to anyone / catalogue size
#pragma once

#include <cstddef>
#include <vector>

#include "core/dataset.hpp"

namespace shardrec::core {

struct error_metrics {
  double rmse = 0.0;
  double mae = 0.0;
  std::size_t count = 0;
};

// Accumulates squared and absolute prediction errors.
class error_accumulator {
public:
  void add(double predicted, double actual) {
    double d = predicted - actual;
    se_ += d * d;
    ae_ += d < 0 ? -d : d;
    ++n_;
  }
  void merge(const error_accumulator& other) {
    se_ += other.se_;
    ae_ += other.ae_;
    n_ += other.n_;
  }
  error_metrics result() const;

private:
  double se_ = 0.0;
  double ae_ = 0.0;
  std::size_t n_ = 0;
};

struct ranking_metrics {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
  double ndcg = 0.0;
  double map = 0.0;
  double hit_rate = 0.0;
  double coverage = 0.0;
  std::size_t users = 0;
};

// Per-user metric values at cut-off k. REQUIRES: relevant sorted ascending,
// without duplicates; ranked without duplicates.
double precision_at_k(const std::vector<index_t>& ranked,
                      const std::vector<index_t>& relevant, std::size_t k);
double recall_at_k(const std::vector<index_t>& ranked,
                   const std::vector<index_t>& relevant, std::size_t k);
double ndcg_at_k(const std::vector<index_t>& ranked, const std::vector<index_t>& relevant,
                 std::size_t k);
double average_precision_at_k(const std::vector<index_t>& ranked,
                              const std::vector<index_t>& relevant, std::size_t k);

// Sums per-user metrics; merge() combines accumulators filled by different
// threads (sums are order-independent up to float rounding of doubles).
class ranking_accumulator {
public:
  ranking_accumulator(std::size_t k, std::size_t n_items);
  void add(const std::vector<index_t>& ranked, const std::vector<index_t>& relevant);
  void merge(const ranking_accumulator& other);
  ranking_metrics result() const;
  std::size_t k() const { return k_; }

private:
  std::size_t k_;
  double precision_ = 0, recall_ = 0, ndcg_ = 0, map_ = 0, hits_ = 0;
  std::size_t users_ = 0;
  std::vector<bool> recommended_; // catalogue coverage
};

} // namespace shardrec::core
