#include "core/interactions.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <utility>

#include <gtest/gtest.h>

#include "core/generator.hpp"
#include "core/loaders.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

event ev(index_t u, index_t i, float v, std::int64_t ts,
         event_type t = event_type::rating) {
  event e;
  e.user = u;
  e.item = i;
  e.value = v;
  e.timestamp = ts;
  e.type = t;
  return e;
}

// 3 users x 4 items; (0,1) and (2,2) appear twice, two events are out of shape.
std::vector<event> small_events() {
  return {
      ev(0, 1, 2.0f, 10, event_type::view),
      ev(1, 0, 4.0f, 1),
      ev(0, 3, 1.0f, 3),
      ev(0, 1, 5.0f, 5, event_type::purchase), // earlier than the first (0,1) event
      ev(2, 2, 3.0f, 7),
      ev(5, 0, 9.0f, 1), // user out of range: ignored
      ev(0, 9, 9.0f, 1), // item out of range: ignored
      ev(2, 2, 1.0f, 7), // same time as the previous (2,2): input order decides
  };
}

std::vector<std::pair<index_t, float>> row(const interaction_matrix& m, index_t u) {
  auto r = m.user_row(u);
  std::vector<std::pair<index_t, float>> out;
  for (std::size_t k = 0; k < r.size; ++k)
    out.emplace_back(r.index[k], r.value[k]);
  return out;
}

std::vector<std::pair<index_t, float>> col(const interaction_matrix& m, index_t i) {
  auto c = m.item_col(i);
  std::vector<std::pair<index_t, float>> out;
  for (std::size_t k = 0; k < c.size; ++k)
    out.emplace_back(c.index[k], c.value[k]);
  return out;
}

using cells = std::vector<std::pair<index_t, float>>;

TEST(Interactions, BuildsSortedRowsAndColumnsByHand) {
  auto m = interaction_matrix::build(3, 4, small_events(), merge_policy::last);
  EXPECT_EQ(m.n_users(), 3u);
  EXPECT_EQ(m.n_items(), 4u);
  EXPECT_EQ(m.nnz(), 4u);
  EXPECT_EQ(row(m, 0), (cells{{1, 2.0f}, {3, 1.0f}}));
  EXPECT_EQ(row(m, 1), (cells{{0, 4.0f}}));
  EXPECT_EQ(row(m, 2), (cells{{2, 1.0f}}));
  EXPECT_EQ(col(m, 0), (cells{{1, 4.0f}}));
  EXPECT_EQ(col(m, 1), (cells{{0, 2.0f}}));
  EXPECT_EQ(col(m, 2), (cells{{2, 1.0f}}));
  EXPECT_EQ(col(m, 3), (cells{{0, 1.0f}}));
  EXPECT_EQ(m.user_degree(0), 2u);
  EXPECT_EQ(m.user_degree(1), 1u);
  EXPECT_EQ(m.item_degree(3), 1u);
  EXPECT_DOUBLE_EQ(m.mean_value(), (2.0 + 1.0 + 4.0 + 1.0) / 4.0);
}

TEST(Interactions, MergePolicies) {
  auto sum = interaction_matrix::build(3, 4, small_events(), merge_policy::sum);
  EXPECT_EQ(row(sum, 0), (cells{{1, 7.0f}, {3, 1.0f}}));
  EXPECT_EQ(row(sum, 2), (cells{{2, 4.0f}}));
  EXPECT_EQ(col(sum, 1), (cells{{0, 7.0f}}));
  auto max = interaction_matrix::build(3, 4, small_events(), merge_policy::max);
  EXPECT_EQ(row(max, 0), (cells{{1, 5.0f}, {3, 1.0f}}));
  EXPECT_EQ(row(max, 2), (cells{{2, 3.0f}}));
  EXPECT_EQ(col(max, 2), (cells{{2, 3.0f}}));
  // `last` takes the latest timestamp, not the latest line: (0,1) at t=10.
  auto last = interaction_matrix::build(3, 4, small_events(), merge_policy::last);
  EXPECT_EQ(*last.find(0, 1), 2.0f);
}

// Hand-computed confidences: type weight x log2(1 + value).
TEST(Interactions, EventConfidenceWeighsTypesAndQuantities) {
  EXPECT_FLOAT_EQ(event_confidence(event_type::view, 1.0f), 1.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::view, 3.0f), 2.0f); // 3 views: log2 4
  EXPECT_FLOAT_EQ(event_confidence(event_type::click, 1.0f), 2.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::cart, 1.0f), 3.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::purchase, 1.0f), 4.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::purchase, 7.0f), 12.0f);    // 4 log2 8
  EXPECT_FLOAT_EQ(event_confidence(event_type::purchase, 1023.0f), 40.0f); // 4 log2 1024
  EXPECT_FLOAT_EQ(event_confidence(event_type::purchase, -5.0f), 0.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::cancel, 7.0f), -12.0f);
  EXPECT_FLOAT_EQ(event_confidence(event_type::rating, 3.5f), 3.5f);
}

// A cancellation takes its purchase back; views and a cart add up.
TEST(Interactions, ConfidenceCellsSumTheEventsAndCancellationsLowerThem) {
  std::vector<event> evs{
      ev(0, 0, 7.0f, 1, event_type::purchase), ev(0, 0, 7.0f, 2, event_type::cancel),
      ev(0, 1, 3.0f, 1, event_type::purchase), ev(0, 1, 1.0f, 2, event_type::cancel),
      ev(1, 0, 1.0f, 1, event_type::view),     ev(1, 0, 1.0f, 2, event_type::view),
      ev(1, 0, 1.0f, 3, event_type::cart),
  };
  auto m = interaction_matrix::build(2, 2, evs, merge_policy::confidence);
  EXPECT_FLOAT_EQ(*m.find(0, 0), 0.0f);               // 12 - 12: no preference left
  EXPECT_FLOAT_EQ(*m.find(0, 1), 8.0f - 4.0f);        // bought 3, returned 1
  EXPECT_FLOAT_EQ(*m.find(1, 0), 1.0f + 1.0f + 3.0f); // two views and a cart
  // The same merge one event at a time, as a partition's store does.
  float cell = first_cell_value(merge_policy::confidence, event_type::purchase, 3.0f);
  cell = merge_cell_value(merge_policy::confidence, cell, event_type::cancel, 1.0f);
  EXPECT_FLOAT_EQ(cell, *m.find(0, 1));
}

TEST(Interactions, MergedCellKeepsLatestTimeAndDeepestType) {
  auto m = interaction_matrix::build(3, 4, small_events(), merge_policy::sum);
  const std::uint32_t* ts = m.user_timestamps(0);
  const event_type* ty = m.user_types(0);
  EXPECT_EQ(ts[0], 10u); // item 1: latest of 10 and 5
  EXPECT_EQ(ty[0], event_type::purchase);
  EXPECT_EQ(ts[1], 3u); // item 3
  EXPECT_EQ(ty[1], event_type::rating);
}

TEST(Interactions, TimestampsSaturateTo32Bits) {
  std::vector<event> e = {ev(0, 0, 1, -5), ev(0, 1, 1, std::int64_t{1} << 40),
                          ev(0, 2, 1, 4000000000)};
  auto m = interaction_matrix::build(1, 3, e, merge_policy::last);
  const std::uint32_t* ts = m.user_timestamps(0);
  EXPECT_EQ(ts[0], 0u);
  EXPECT_EQ(ts[1], std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(ts[2], 4000000000u);
}

TEST(Interactions, FindAndBinarized) {
  auto m = interaction_matrix::build(3, 4, small_events(), merge_policy::sum);
  ASSERT_NE(m.find(0, 3), nullptr);
  EXPECT_EQ(*m.find(0, 3), 1.0f);
  EXPECT_EQ(*m.find(1, 0), 4.0f);
  EXPECT_EQ(m.find(0, 0), nullptr);
  EXPECT_EQ(m.find(0, 2), nullptr);
  EXPECT_EQ(m.find(1, 3), nullptr);
  auto b = m.binarized();
  EXPECT_EQ(b.nnz(), m.nnz());
  for (index_t u = 0; u < 3; ++u) {
    auto rb = row(b, u), rm = row(m, u);
    ASSERT_EQ(rb.size(), rm.size());
    for (std::size_t k = 0; k < rb.size(); ++k) {
      EXPECT_EQ(rb[k].first, rm[k].first);
      EXPECT_EQ(rb[k].second, 1.0f);
    }
  }
  for (index_t i = 0; i < 4; ++i)
    for (auto [u, v] : col(b, i)) {
      (void)u;
      EXPECT_EQ(v, 1.0f);
    }
  EXPECT_DOUBLE_EQ(b.mean_value(), 1.0);
  EXPECT_EQ(*m.find(1, 0), 4.0f); // the original is untouched
}

TEST(Interactions, EmptyShapes) {
  auto m = interaction_matrix::build(2, 3, {}, merge_policy::sum);
  EXPECT_EQ(m.nnz(), 0u);
  EXPECT_EQ(m.user_row(1).size, 0u);
  EXPECT_EQ(m.item_col(2).size, 0u);
  EXPECT_EQ(m.find(0, 0), nullptr);
  EXPECT_DOUBLE_EQ(m.mean_value(), 0.0);
  EXPECT_EQ(m.memory_bytes(), 8u * (3 + 4));
}

// Every cell of the user-major copy is in the item-major copy with the same
// value, both are sorted, and the two hold the same number of cells.
void expect_orientations_agree(const interaction_matrix& m) {
  std::size_t from_cols = 0;
  for (index_t i = 0; i < m.n_items(); ++i) {
    auto c = m.item_col(i);
    from_cols += c.size;
    for (std::size_t k = 1; k < c.size; ++k)
      ASSERT_LT(c.index[k - 1], c.index[k]) << "column " << i << " not sorted";
  }
  ASSERT_EQ(from_cols, m.nnz());
  std::size_t from_rows = 0;
  for (index_t u = 0; u < m.n_users(); ++u) {
    auto r = m.user_row(u);
    from_rows += r.size;
    for (std::size_t k = 0; k < r.size; ++k) {
      if (k > 0) {
        ASSERT_LT(r.index[k - 1], r.index[k]) << "row " << u << " not sorted";
      }
      auto c = m.item_col(r.index[k]);
      auto it = std::lower_bound(c.index, c.index + c.size, u);
      ASSERT_TRUE(it != c.index + c.size && *it == u);
      ASSERT_EQ(c.value[it - c.index], r.value[k]);
    }
  }
  ASSERT_EQ(from_rows, m.nnz());
}

void expect_memory_bound(const interaction_matrix& m) {
  const std::size_t offsets = 8 * (m.n_users() + 1 + m.n_items() + 1);
  EXPECT_LE(m.memory_bytes(), 24 * m.nnz() + offsets);
  EXPECT_EQ(m.memory_bytes(), 21 * m.nnz() + offsets); // the figure the header states
}

TEST(Interactions, OrientationsAgreeOnGeneratedData) {
  generator_config cfg;
  cfg.users = 400;
  cfg.items = 300;
  cfg.events = 30000;
  dataset ds = generate(cfg);
  for (auto policy : {merge_policy::last, merge_policy::sum, merge_policy::max,
                      merge_policy::confidence}) {
    auto m = interaction_matrix::build(cfg.users, cfg.items, ds.events, policy);
    expect_orientations_agree(m);
    expect_memory_bound(m);
    // Reference merge with a map.
    std::map<std::pair<index_t, index_t>, std::pair<float, std::int64_t>> ref;
    for (const auto& e : ds.events) {
      auto key = std::make_pair(e.user, e.item);
      auto it = ref.find(key);
      // Confidence: the events' weights summed (in input order here, in
      // time order in the matrix: equal to float rounding).
      const float value = policy == merge_policy::confidence
                              ? event_confidence(e.type, e.value)
                              : e.value;
      if (it == ref.end()) {
        ref.emplace(key, std::make_pair(value, e.timestamp));
        continue;
      }
      auto& [v, ts] = it->second;
      switch (policy) {
        case merge_policy::sum:
        case merge_policy::confidence: v += value; break;
        case merge_policy::max: v = std::max(v, e.value); break;
        case merge_policy::last:
          if (e.timestamp >= ts) {
            v = e.value;
            ts = e.timestamp;
          }
          break;
      }
    }
    ASSERT_EQ(m.nnz(), ref.size());
    for (const auto& [key, val] : ref) {
      const float* got = m.find(key.first, key.second);
      ASSERT_NE(got, nullptr);
      ASSERT_NEAR(*got, val.first, 1e-5f * std::max(1.0f, std::abs(val.first)));
    }
  }
}

TEST(Interactions, RealMl100kU1Base) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  const std::string path = test_data::path("ml-100k/u1.base");
  ASSERT_TRUE(std::ifstream(path).good()) << "data set file missing: " << path;
  dataset ds;
  auto rep = load_events(path, data_format::movielens, ds);
  ASSERT_TRUE(rep.ok()) << rep.err().message;
  auto m = interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events,
                                     merge_policy::last);
  EXPECT_EQ(m.nnz(), 80000u); // no user rates a movie twice
  expect_orientations_agree(m);
  expect_memory_bound(m);
  double sum = 0;
  for (const auto& e : ds.events)
    sum += e.value;
  EXPECT_NEAR(m.mean_value(), sum / 80000.0, 1e-9);
}

} // namespace
} // namespace shardrec::core
