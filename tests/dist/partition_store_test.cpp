#include "dist/partition_store.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/partition.hpp"

namespace shardrec::dist {
namespace {

raw_event ev(std::string u, std::string i, float v, std::int64_t ts = 0) {
  raw_event e;
  e.user = std::move(u);
  e.item = std::move(i);
  e.value = v;
  e.timestamp = ts;
  return e;
}

TEST(Partition, StableHashIsFixedAcrossBuilds) {
  // Values pinned (computed once from FNV-1a + splitmix64): a change here
  // would move every partition of every cluster, and make nodes built from
  // different sources disagree on who owns an id.
  EXPECT_EQ(stable_hash(""), 0x552d3fb62b3c344full);
  EXPECT_EQ(stable_hash("a"), 0xb4d2960f93be2488ull);
  EXPECT_EQ(stable_hash("u1"), 0x653ae389c84fbe2dull);
  EXPECT_EQ(stable_hash("u2"), 0xa3a802ad767f7e06ull);
  EXPECT_EQ(stable_hash("405"), 0x2fc61875752fdd8full);
  EXPECT_EQ(stable_hash("85123A"), 0x240159239b81c08cull);
  EXPECT_EQ(partition_of("", 7), 2u);
  EXPECT_EQ(partition_of("1", 7), 3u);
  EXPECT_EQ(partition_of("405", 7), 5u);
  EXPECT_EQ(partition_of("85123A", 7), 6u);
  EXPECT_EQ(partition_of("user0", 7), 1u);
  EXPECT_EQ(partition_of("u1", 3), 2u);
  EXPECT_EQ(partition_of("u2", 3), 1u);
  EXPECT_EQ(partition_of("1", 64), 49u);
  EXPECT_EQ(partition_of("user0", 64), 61u);
  EXPECT_EQ(partition_of("anything", 1), 0u);
  std::vector<int> count(7, 0);
  for (int i = 0; i < 7000; ++i)
    ++count[partition_of("user" + std::to_string(i), 7)];
  for (int c : count) {
    EXPECT_GT(c, 800); // roughly uniform: 1000 expected per partition
    EXPECT_LT(c, 1200);
  }
}

TEST(PartitionStore, EveryEventLandsAtItsUserAndItemPartition) {
  const std::uint32_t parts = 3;
  std::vector<partition_store> stores;
  for (std::uint32_t p = 0; p < parts; ++p)
    stores.emplace_back(p, parts);
  std::vector<raw_event> events;
  for (int u = 0; u < 20; ++u)
    for (int i = 0; i < 10; i += 1 + u % 3)
      events.push_back(
          ev("u" + std::to_string(u), "i" + std::to_string(i), 1.0f + i % 5));
  for (const auto& e : events)
    for (auto& s : stores)
      ASSERT_TRUE(s.add(e).ok());
  std::size_t user_side = 0, item_side = 0;
  for (auto& s : stores) {
    s.build(merge_policy::last);
    user_side += s.user_matrix().nnz();
    item_side += s.item_matrix().nnz();
    for (std::size_t u = 0; u < s.users().size(); ++u)
      EXPECT_EQ(partition_of(s.users().external(static_cast<index_t>(u)), parts),
                s.partition());
    for (std::size_t i = 0; i < s.items().size(); ++i)
      EXPECT_EQ(partition_of(s.items().external(static_cast<index_t>(i)), parts),
                s.partition());
  }
  EXPECT_EQ(user_side, events.size());
  EXPECT_EQ(item_side, events.size());
}

TEST(PartitionStore, RowsHoldExternalIdsAndValues) {
  partition_store s(0, 1);
  ASSERT_TRUE(s.add(ev("alice", "book", 4, 10)).ok());
  ASSERT_TRUE(s.add(ev("alice", "pen", 2, 11)).ok());
  ASSERT_TRUE(s.add(ev("bob", "book", 5, 12)).ok());
  ASSERT_TRUE(s.add(ev("alice", "book", 1, 13)).ok()); // later rating wins
  s.build(merge_policy::last);
  auto a = *s.users().find("alice");
  auto row = s.user_matrix().user_row(a);
  ASSERT_EQ(row.size, 2u);
  EXPECT_EQ(s.item_refs().external(row.index[0]), "book");
  EXPECT_FLOAT_EQ(row.value[0], 1.0f);
  auto book = *s.items().find("book");
  auto col = s.item_matrix().item_col(book);
  ASSERT_EQ(col.size, 2u);
  EXPECT_EQ(s.user_refs().external(col.index[1]), "bob");
}

TEST(PartitionStore, KnowsWhenItsMatricesAreCurrent) {
  partition_store s(0, 1);
  EXPECT_FALSE(s.built_with(merge_policy::sum));
  ASSERT_TRUE(s.add(ev("alice", "book", 4, 10)).ok());
  s.build(merge_policy::sum);
  EXPECT_TRUE(s.built_with(merge_policy::sum));
  EXPECT_FALSE(s.built_with(merge_policy::last));
  ASSERT_TRUE(s.add(ev("bob", "book", 5, 12)).ok());
  EXPECT_FALSE(s.built_with(merge_policy::sum));
  s.build(merge_policy::last);
  EXPECT_TRUE(s.built_with(merge_policy::last));
  s.set_item_info("book", {});
  EXPECT_FALSE(s.built_with(merge_policy::last));
}

TEST(PartitionStore, RejectsInvalidEventsAndKeepsOthers) {
  partition_store s(0, 1);
  ASSERT_TRUE(s.add(ev("a", "x", 1)).ok());
  auto st = s.add(ev("", "x", 1));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("user"), std::string::npos);
  EXPECT_FALSE(s.add(ev("a", "x", std::nanf(""))).ok());
  s.build(merge_policy::sum);
  EXPECT_EQ(s.user_matrix().nnz(), 1u);
}

TEST(PartitionStore, ImageGivesTheSameStoreWithTheLastBuildAndRecentItems) {
  partition_store s(0, 1);
  ASSERT_TRUE(s.add(ev("alice", "book", 4, 10)).ok());
  ASSERT_TRUE(s.add(ev("bob", "book", 5, 12)).ok());
  s.build(merge_policy::last);
  ASSERT_TRUE(s.add(ev("alice", "pen", 2, 13)).ok());  // recent for alice
  ASSERT_TRUE(s.add(ev("alice", "book", 1, 14)).ok()); // in alice's row: not recent
  ASSERT_TRUE(s.add(ev("carol", "pen", 3, 15)).ok());  // a user after the build
  auto r = partition_store::from_image(s.image());
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_FALSE(r->built());
  EXPECT_EQ(r->user_events(), 5u);
  // The matrices of the last build: two users, alice's book still 4.
  EXPECT_EQ(r->user_matrix().n_users(), 2u);
  EXPECT_EQ(r->user_matrix().nnz(), 2u);
  EXPECT_EQ(*r->user_matrix().find(0, 0), 4.0f);
  EXPECT_EQ(r->item_matrix().nnz(), 2u);
  ASSERT_EQ(r->recent_items(0).size(), 1u);
  EXPECT_EQ(r->item_refs().external(r->recent_items(0)[0].item_ref), "pen");
  EXPECT_EQ(r->recent_items(2).size(), 1u); // carol: no row yet, her item is recent
  r->build(merge_policy::last);
  EXPECT_EQ(*r->user_matrix().find(0, 0), 1.0f);
  EXPECT_EQ(r->user_matrix().nnz(), 4u);
}

TEST(PartitionStore, ImageWithAnIndexOutOfRangeIsRejected) {
  partition_store s(0, 1);
  ASSERT_TRUE(s.add(ev("alice", "book", 4, 10)).ok());
  auto im = s.image();
  im.partition = 1;
  auto r = partition_store::from_image(im);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  im = s.image();
  im.user_side[0].item = 5;
  r = partition_store::from_image(im);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("user_side[0]: item out of range"), std::string::npos)
      << r.err().message;
}

// has_pair: what the cluster's eval removes from a user's test items.
TEST(PartitionStore, KnowsWhichPairsItHoldsBeforeAtAndAfterABuild) {
  partition_store s(0, 1);
  ASSERT_TRUE(s.add(ev("alice", "book", 4, 10)).ok());
  EXPECT_TRUE(s.has_pair("alice", "book")); // before any build
  EXPECT_FALSE(s.has_pair("alice", "pen"));
  EXPECT_FALSE(s.has_pair("carol", "book"));
  s.build(merge_policy::last);
  EXPECT_TRUE(s.has_pair("alice", "book")); // in the built row
  ASSERT_TRUE(s.add(ev("alice", "pen", 2, 11)).ok());
  ASSERT_TRUE(s.add(ev("bob", "book", 5, 12)).ok());
  EXPECT_TRUE(s.has_pair("alice", "pen")); // since the build
  EXPECT_TRUE(s.has_pair("bob", "book"));  // a user newer than the build
  EXPECT_FALSE(s.has_pair("bob", "pen"));
  EXPECT_FALSE(s.has_pair("alice", "lamp"));
}

} // namespace
} // namespace shardrec::dist
