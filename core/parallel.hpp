// Parallel loop over [0, n) in blocks handed out dynamically. Work on each
// index must be independent so that results do not depend on the thread
// count or on which thread ran which block.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace shardrec::core {

// Calls f(begin, end) on blocks of at most `grain` indices from `threads`
// threads (threads <= 1: inline, in order).
template <class F>
void parallel_for(std::size_t n, unsigned threads, F&& f, std::size_t grain = 64) {
  if (threads <= 1 || n <= grain) {
    if (n > 0)
      f(std::size_t{0}, n);
    return;
  }
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (;;) {
      auto b = next.fetch_add(grain);
      if (b >= n)
        return;
      f(b, std::min(n, b + grain));
    }
  };
  auto t = std::min<std::size_t>(threads, (n + grain - 1) / grain);
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (std::size_t k = 1; k < t; ++k)
    pool.emplace_back(worker);
  worker();
  for (auto& th : pool)
    th.join();
}

// Default thread count: hardware concurrency, at least 1.
inline unsigned default_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

} // namespace shardrec::core
