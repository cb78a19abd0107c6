#include "core/split.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

// Events tagged by their position in `value`, so both halves can be traced
// back to the input.
std::vector<event> make_events(std::size_t n, std::size_t n_users) {
  std::vector<event> evs(n);
  for (std::size_t k = 0; k < n; ++k) {
    evs[k].user = static_cast<index_t>((k * 7) % n_users);
    evs[k].item = static_cast<index_t>(k % 13);
    evs[k].value = static_cast<float>(k);
    evs[k].timestamp = static_cast<std::int64_t>((k * 31) % 97);
  }
  return evs;
}

std::vector<int> ids(const std::vector<event>& v) {
  std::vector<int> r;
  for (const auto& e : v)
    r.push_back(static_cast<int>(e.value));
  return r;
}

// Disjoint halves whose union is the input, each in input order.
void expect_partition(const split_result& s, std::size_t n) {
  auto a = ids(s.train), b = ids(s.test);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  std::vector<int> all;
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(all));
  ASSERT_EQ(all.size(), n);
  for (std::size_t k = 0; k < n; ++k)
    ASSERT_EQ(all[k], static_cast<int>(k)) << "event missing or duplicated";
}

TEST(RandomSplit, SizesPartitionAndDeterminism) {
  auto evs = make_events(1000, 37);
  auto s = random_split(evs, 0.2, 42);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->test.size(), 200u);
  EXPECT_EQ(s->train.size(), 800u);
  expect_partition(*s, evs.size());

  auto again = random_split(evs, 0.2, 42);
  EXPECT_EQ(ids(again->test), ids(s->test));
  auto other = random_split(evs, 0.2, 43);
  EXPECT_NE(ids(other->test), ids(s->test));

  // Not a prefix or a stride: test events spread over the whole input.
  auto t = ids(s->test);
  auto first_half = std::count_if(t.begin(), t.end(), [](int k) { return k < 500; });
  EXPECT_GT(first_half, 60);
  EXPECT_LT(first_half, 140);

  EXPECT_EQ(random_split(evs, 0.0, 1)->test.size(), 0u);
  EXPECT_EQ(random_split(evs, 1.0, 1)->train.size(), 0u);
  EXPECT_EQ(random_split(make_events(7, 3), 0.5, 1)->test.size(), 4u); // round(3.5)
  EXPECT_TRUE(random_split({}, 0.3, 1)->test.empty());
}

TEST(RandomSplit, RejectsBadFraction) {
  auto evs = make_events(10, 2);
  for (double p : {-0.1, 1.5, std::nan("")}) {
    auto s = random_split(evs, p, 1);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code, errc::invalid_argument);
    EXPECT_NE(s.err().message.find("test_fraction"), std::string::npos);
  }
}

TEST(LeaveLastOut, PicksLatestPerUser) {
  auto e = [](index_t u, std::int64_t t, int id) {
    event x;
    x.user = u;
    x.timestamp = t;
    x.value = static_cast<float>(id);
    return x;
  };
  // user 0: latest is id 1 (t=9); user 1: tie at t=5 -> later input (id 4);
  // user 2: single event stays in train; user 3: latest id 6.
  std::vector<event> evs = {e(0, 3, 0), e(0, 9, 1), e(1, 5, 2), e(2, 7, 3), e(1, 5, 4),
                            e(0, 4, 5), e(3, 1, 6), e(1, 2, 7), e(3, 0, 8)};
  auto s = leave_last_out(evs);
  EXPECT_EQ(ids(s.test), (std::vector<int>{1, 4, 6}));
  expect_partition(s, evs.size());
}

TEST(LeaveLastOut, MovieLens100k) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u.data");
  const std::string path = test_data::path("ml-100k/u.data");
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing data set: " << path;
  std::vector<event> evs;
  long u, i, r, t;
  while (in >> u >> i >> r >> t) {
    event x;
    x.user = static_cast<index_t>(u - 1);
    x.item = static_cast<index_t>(i - 1);
    x.value = static_cast<float>(r);
    x.timestamp = t;
    evs.push_back(x);
  }
  ASSERT_EQ(evs.size(), 100000u);
  auto s = leave_last_out(evs);
  EXPECT_EQ(s.test.size(), 943u); // every user rated at least 20 movies
  EXPECT_EQ(s.train.size(), 100000u - 943u);
  std::vector<std::int64_t> latest(943, 0);
  for (const auto& x : evs)
    latest[x.user] = std::max(latest[x.user], x.timestamp);
  std::vector<int> seen(943, 0);
  for (const auto& x : s.test) {
    EXPECT_EQ(x.timestamp, latest[x.user]);
    ++seen[x.user];
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 943);
}

TEST(KFold, FoldsPartitionTheData) {
  auto evs = make_events(1003, 41);
  for (bool per_user : {false, true}) {
    const std::uint32_t k = 5;
    std::vector<int> in_test(evs.size(), 0);
    std::vector<std::size_t> sizes;
    for (std::uint32_t f = 0; f < k; ++f) {
      auto s = kfold_split(evs, k, f, 7, per_user);
      ASSERT_TRUE(s.ok());
      expect_partition(*s, evs.size());
      sizes.push_back(s->test.size());
      for (int id : ids(s->test))
        ++in_test[static_cast<std::size_t>(id)];
    }
    EXPECT_EQ(std::count(in_test.begin(), in_test.end(), 1),
              static_cast<std::ptrdiff_t>(evs.size()))
        << "every event in exactly one test fold, per_user=" << per_user;
    auto [lo, hi] = std::minmax_element(sizes.begin(), sizes.end());
    if (!per_user)
      EXPECT_LE(*hi - *lo, 1u);
    else
      EXPECT_LE(*hi - *lo, 41u); // at most one event per user of imbalance
  }
}

TEST(KFold, StratifiedSpreadsEachUserAcrossFolds) {
  auto evs = make_events(1003, 41);
  auto folds = kfold_assign(evs, 4, 11, true);
  ASSERT_TRUE(folds.ok());
  std::map<index_t, std::vector<int>> per_user;
  for (std::size_t p = 0; p < evs.size(); ++p) {
    auto& c = per_user[evs[p].user];
    c.resize(4, 0);
    ++c[(*folds)[p]];
  }
  for (const auto& [u, c] : per_user) {
    auto [lo, hi] = std::minmax_element(c.begin(), c.end());
    EXPECT_LE(*hi - *lo, 1) << "user " << u;
  }
  // Deterministic; the seed matters.
  EXPECT_EQ(*kfold_assign(evs, 4, 11, true), *folds);
  EXPECT_NE(*kfold_assign(evs, 4, 12, true), *folds);
  EXPECT_EQ(*kfold_assign(evs, 4, 11, false), *kfold_assign(evs, 4, 11, false));
  EXPECT_NE(*kfold_assign(evs, 4, 11, false), *kfold_assign(evs, 4, 12, false));
}

TEST(KFold, RejectsBadArguments) {
  auto evs = make_events(10, 2);
  auto s = kfold_split(evs, 1, 0, 1, false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::invalid_argument);
  s = kfold_split(evs, 3, 3, 1, true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.err().message.find("fold"), std::string::npos);
  EXPECT_FALSE(kfold_assign(evs, 0, 1, false).ok());
}

} // namespace
} // namespace shardrec::core
