// Distributed EASE (dist/ease.hpp) against the core's: the partitions'
// co-occurrence partials summed and solved in key order give the core's
// weights bit for bit, at P = 1, 7 and 64.
#include "dist/ease.hpp"

#include <gtest/gtest.h>

#include "core/generator.hpp"
#include "core/partition.hpp"
#include "dist/sliced_cluster.hpp"

namespace shardrec::dist {
namespace {

class DistEase : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(DistEase, WeightsEqualTheCoresSolvedInKeyOrder) {
  const auto P = GetParam();
  generator_config gc;
  gc.users = 300;
  gc.items = 150;
  gc.events = 6000;
  const auto ds = generate(gc);
  const float lambda = 50.0f;
  // The core: binarized training matrix, solved in stable-hash order.
  const auto m = interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events,
                                           merge_policy::confidence)
                     .binarized();
  std::vector<std::uint64_t> keys;
  for (std::size_t i = 0; i < ds.items.size(); ++i)
    keys.push_back(stable_hash(ds.items.external(static_cast<index_t>(i))));
  const auto core_b = ease_weights(m, lambda, &keys);

  // E1..E5 over P partitions.
  auto stores = make_stores(ds, P, merge_policy::confidence);
  std::vector<std::vector<std::string>> items;
  for (const auto& s : stores)
    items.push_back(ease_items(s));
  auto cat = make_ease_catalogue(items, 10000);
  ASSERT_TRUE(cat.ok()) << cat.err().message;
  ASSERT_EQ(cat->items.size(), m.n_items());
  const auto n = cat->items.size();
  ease_gram gram(n * (n + 1) / 2, 0);
  for (const auto& s : stores)
    ASSERT_TRUE(add_ease_gram(gram, n, ease_user_rows(s, *cat)).ok());
  const auto b = ease_solve(gram, n, lambda);
  std::size_t compared = 0;
  for (const auto& s : stores) {
    const auto owned = ease_items(s);
    const auto cols = ease_columns(b, *cat, owned);
    ASSERT_EQ(cols.size(), owned.size() * cat->items.size());
    for (std::size_t r = 0; r < owned.size(); ++r) {
      const auto j = *ds.items.find(owned[r]);
      for (std::size_t k = 0; k < cat->items.size(); ++k) {
        const auto i = *ds.items.find(cat->items[k]);
        ASSERT_EQ(cols[r * cat->items.size() + k],
                  core_b(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)))
            << "B[" << cat->items[k] << "][" << owned[r] << "], P = " << P;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, m.n_items() * m.n_items());
  // Key order changes nothing but rounding: the plain solve agrees closely.
  const auto plain = ease_weights(m, lambda);
  EXPECT_LT((plain - core_b).cwiseAbs().maxCoeff(), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Partitions, DistEase, ::testing::Values(1u, 7u, 64u));

TEST(DistEase, TooLargeACatalogueAndADuplicateAreRefused) {
  auto big = make_ease_catalogue({{"a", "b"}, {"c"}}, 2);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.err().message.find("limit of 2"), std::string::npos);
  auto dup = make_ease_catalogue({{"a"}, {"a"}}, 10);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.err().message.find("'a'"), std::string::npos);
  // Malformed rows are refused and leave the sum as it was.
  ease_gram g(3, 7);
  ease_rows unordered{{2}, {1, 0}};
  EXPECT_FALSE(add_ease_gram(g, 2, unordered).ok());
  ease_rows outside{{1}, {2}};
  EXPECT_FALSE(add_ease_gram(g, 2, outside).ok());
  ease_rows short_rows{{3}, {0, 1}};
  EXPECT_FALSE(add_ease_gram(g, 2, short_rows).ok());
  EXPECT_FALSE(add_ease_gram(g, 3, ease_rows{}).ok()); // a Gram of another size
  EXPECT_EQ(g, ease_gram(3, 7));
  // Two rows {0, 1} and {1}: G = [[1, .], [1, 2]].
  ease_rows two{{2, 1}, {0, 1, 1}};
  ASSERT_TRUE(add_ease_gram(g, 2, two).ok());
  EXPECT_EQ(g, (ease_gram{8, 8, 9}));
}

} // namespace
} // namespace shardrec::dist
