#include "core/topn.hpp"

#include <algorithm>
#include <cmath>

namespace shardrec::core {

std::vector<scored_item> top_n(Eigen::Ref<const Eigen::VectorXf> scores, std::size_t n,
                               const index_t* exclude, std::size_t n_exclude,
                               const std::function<bool(index_t)>& keep) {
  std::vector<scored_item> heap; // min-heap by rank: heap.front() ranks last
  heap.reserve(n + 1);
  if (n == 0)
    return heap;
  auto worse_first = [](const scored_item& a, const scored_item& b) {
    return ranks_before(a, b);
  };
  std::size_t ex = 0;
  auto size = static_cast<std::size_t>(scores.size());
  for (std::size_t i = 0; i < size; ++i) {
    while (ex < n_exclude && exclude[ex] < i)
      ++ex;
    if (ex < n_exclude && exclude[ex] == i)
      continue;
    float s = scores[static_cast<Eigen::Index>(i)];
    if (std::isnan(s))
      continue;
    scored_item c{static_cast<index_t>(i), s};
    if (heap.size() == n && !ranks_before(c, heap.front()))
      continue;
    if (keep && !keep(c.item))
      continue;
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), worse_first);
    if (heap.size() > n) {
      std::pop_heap(heap.begin(), heap.end(), worse_first);
      heap.pop_back();
    }
  }
  std::sort(heap.begin(), heap.end(), ranks_before);
  return heap;
}

std::vector<index_t> items_of(const std::vector<scored_item>& ranked) {
  std::vector<index_t> out;
  out.reserve(ranked.size());
  for (const auto& s : ranked)
    out.push_back(s.item);
  return out;
}

} // namespace shardrec::core
