#include "core/split.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <utility>

namespace shardrec::core {

namespace {

// Uniform integer in [0, n) by rejection: no modulo bias and, unlike
// std::uniform_int_distribution, the same sequence on every standard library.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  SHARDREC_ASSERT(n > 0);
  const std::uint64_t threshold = (0 - n) % n; // 2^64 mod n
  for (;;) {
    std::uint64_t x = rng();
    if (x >= threshold)
      return x % n;
  }
}

template <class T> void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

split_result partition(const std::vector<event>& events,
                       const std::vector<char>& is_test) {
  split_result r;
  std::size_t n_test =
      static_cast<std::size_t>(std::count(is_test.begin(), is_test.end(), 1));
  r.test.reserve(n_test);
  r.train.reserve(events.size() - n_test);
  for (std::size_t k = 0; k < events.size(); ++k)
    (is_test[k] ? r.test : r.train).push_back(events[k]);
  return r;
}

} // namespace

result<split_result> random_split(const std::vector<event>& events, double test_fraction,
                                  std::uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction <= 1.0))
    return make_error(errc::invalid_argument,
                      "random_split: test_fraction = " + std::to_string(test_fraction)
                          + " must be in [0, 1]");
  const auto n = events.size();
  const auto n_test =
      static_cast<std::size_t>(std::llround(test_fraction * static_cast<double>(n)));
  // A partial Fisher-Yates shuffle: the first n_test positions are a uniform
  // sample without replacement.
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < n_test; ++i)
    std::swap(order[i], order[i + uniform_below(rng, n - i)]);
  std::vector<char> is_test(n, 0);
  for (std::size_t i = 0; i < n_test; ++i)
    is_test[order[i]] = 1;
  return partition(events, is_test);
}

split_result leave_last_out(const std::vector<event>& events) {
  constexpr auto none = static_cast<std::size_t>(-1);
  std::vector<std::size_t> last; // per user: position of the latest event
  std::vector<std::uint32_t> count;
  for (std::size_t k = 0; k < events.size(); ++k) {
    const auto& e = events[k];
    if (e.user >= last.size()) {
      last.resize(e.user + 1, none);
      count.resize(e.user + 1, 0);
    }
    ++count[e.user];
    if (last[e.user] == none || e.timestamp >= events[last[e.user]].timestamp)
      last[e.user] = k;
  }
  std::vector<char> is_test(events.size(), 0);
  for (std::size_t u = 0; u < last.size(); ++u)
    if (count[u] >= 2)
      is_test[last[u]] = 1;
  return partition(events, is_test);
}

result<std::vector<std::uint32_t>> kfold_assign(const std::vector<event>& events,
                                                std::uint32_t k, std::uint64_t seed,
                                                bool per_user) {
  if (k < 2)
    return make_error(errc::invalid_argument,
                      "kfold: k = " + std::to_string(k) + " must be at least 2");
  std::vector<std::uint32_t> fold(events.size(), 0);
  if (!per_user) {
    std::vector<std::uint32_t> order(events.size());
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(seed);
    shuffle(order, rng);
    for (std::size_t p = 0; p < order.size(); ++p)
      fold[order[p]] = static_cast<std::uint32_t>(p % k);
    return fold;
  }
  // Group positions by user (input order within a user), CSR style.
  std::vector<std::size_t> ptr;
  for (const auto& e : events) {
    if (e.user + std::size_t{2} > ptr.size())
      ptr.resize(e.user + std::size_t{2}, 0);
    ++ptr[e.user + 1];
  }
  std::partial_sum(ptr.begin(), ptr.end(), ptr.begin());
  std::vector<std::uint32_t> by_user(events.size());
  {
    auto fill = ptr;
    for (std::size_t p = 0; p < events.size(); ++p)
      by_user[fill[events[p].user]++] = static_cast<std::uint32_t>(p);
  }
  for (std::size_t u = 0; u + 1 < ptr.size(); ++u) {
    if (ptr[u] == ptr[u + 1])
      continue;
    // One stream per user: the split of a user does not depend on others.
    std::mt19937_64 rng(splitmix64(seed ^ splitmix64(u)));
    std::vector<std::uint32_t> mine(by_user.begin() + static_cast<std::ptrdiff_t>(ptr[u]),
                                    by_user.begin()
                                        + static_cast<std::ptrdiff_t>(ptr[u + 1]));
    shuffle(mine, rng);
    const auto start = uniform_below(rng, k);
    for (std::size_t p = 0; p < mine.size(); ++p)
      fold[mine[p]] = static_cast<std::uint32_t>((start + p) % k);
  }
  return fold;
}

result<split_result> kfold_split(const std::vector<event>& events, std::uint32_t k,
                                 std::uint32_t fold, std::uint64_t seed, bool per_user) {
  if (k >= 2 && fold >= k)
    return make_error(errc::invalid_argument,
                      "kfold_split: fold = " + std::to_string(fold)
                          + " must be below k = " + std::to_string(k));
  auto folds = kfold_assign(events, k, seed, per_user);
  if (!folds)
    return folds.err();
  std::vector<char> is_test(events.size());
  for (std::size_t p = 0; p < events.size(); ++p)
    is_test[p] = (*folds)[p] == fold ? 1 : 0;
  return partition(events, is_test);
}

} // namespace shardrec::core
