#include "dist/routing.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/partition.hpp"

namespace shardrec::dist {
namespace {

raw_event ev(std::string u, std::string i, float v = 1.0f) {
  raw_event e;
  e.user = std::move(u);
  e.item = std::move(i);
  e.value = v;
  return e;
}

// How many times the event (user, item) sits in partition p's batch.
std::size_t count_in(const routed_events& r, std::uint32_t p, const std::string& user,
                     const std::string& item) {
  std::size_t n = 0;
  for (const auto& e : r.per_partition[p])
    n += e.user == user && e.item == item;
  return n;
}

TEST(Routing, EveryEventLandsOnceAtItsUserAndItemPartition) {
  for (std::uint32_t parts : {1u, 2u, 7u}) {
    std::vector<raw_event> events;
    for (int u = 0; u < 12; ++u)
      for (int i = 0; i < 9; ++i)
        if ((u + i) % 3 != 0)
          events.push_back(ev("u" + std::to_string(u), "i" + std::to_string(i)));
    auto r = route_events(events, parts);
    ASSERT_EQ(r.per_partition.size(), parts);
    EXPECT_EQ(r.accepted, events.size());
    EXPECT_EQ(r.rejected, 0u);
    EXPECT_TRUE(r.problems.empty());
    std::size_t copies = 0;
    for (const auto& e : events) {
      auto pu = core::partition_of(e.user, parts);
      auto pi = core::partition_of(e.item, parts);
      for (std::uint32_t p = 0; p < parts; ++p) {
        std::size_t want = (p == pu || p == pi) ? 1 : 0;
        EXPECT_EQ(count_in(r, p, e.user, e.item), want)
            << e.user << " " << e.item << " partition " << p << " of " << parts;
      }
      copies += pu == pi ? 1 : 2;
    }
    std::size_t total = 0;
    for (const auto& b : r.per_partition)
      total += b.size();
    EXPECT_EQ(total, copies);
  }
}

TEST(Routing, KeepsInputOrderAndFieldsWithinAPartition) {
  std::vector<raw_event> events{ev("a", "x", 1), ev("a", "y", 2), ev("a", "z", 3)};
  events[1].timestamp = 42;
  events[1].device = "phone";
  events[1].location = "FR";
  events[1].type = core::event_type::purchase;
  auto r = route_events(events, 5);
  const auto& mine = r.per_partition[core::partition_of("a", 5)];
  std::vector<std::string> items;
  for (const auto& e : mine)
    if (e.user == "a")
      items.push_back(e.item);
  EXPECT_EQ(items, (std::vector<std::string>{"x", "y", "z"}));
  for (const auto& e : mine)
    if (e.item == "y") {
      EXPECT_EQ(e.value, 2.0f);
      EXPECT_EQ(e.timestamp, 42);
      EXPECT_EQ(e.device, "phone");
      EXPECT_EQ(e.location, "FR");
      EXPECT_EQ(e.type, core::event_type::purchase);
    }
}

TEST(Routing, RejectsAreCountedNamedAndSentNowhere) {
  std::vector<raw_event> events{ev("u1", "i1"), ev("", "i2"), ev("u3", ""),
                                ev("u4", "i4", std::numeric_limits<float>::quiet_NaN()),
                                ev("u5", "i5")};
  auto r = route_events(events, 3, 100);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.rejected, 3u);
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.problems[0], "event 101: field 'user': empty id");
  EXPECT_EQ(r.problems[1], "event 102: field 'item': empty id");
  EXPECT_EQ(r.problems[2], "event 103: field 'value': not a finite number");
  for (const auto& b : r.per_partition)
    for (const auto& e : b) {
      EXPECT_FALSE(e.user.empty());
      EXPECT_FALSE(e.item.empty());
      EXPECT_TRUE(std::isfinite(e.value));
    }
}

TEST(Routing, KeepsAtMostTenProblemsButCountsEveryReject) {
  std::vector<raw_event> events;
  for (int k = 0; k < 25; ++k)
    events.push_back(ev(k % 2 ? "u" : "", "i"));
  auto r = route_events(events, 4);
  EXPECT_EQ(r.rejected, 13u);
  EXPECT_EQ(r.accepted, 12u);
  ASSERT_EQ(r.problems.size(), max_problems);
  EXPECT_EQ(r.problems.front(), "event 0: field 'user': empty id");
  EXPECT_EQ(r.problems.back(), "event 18: field 'user': empty id");
}

TEST(Routing, EmptyBatch) {
  auto r = route_events({}, 3);
  EXPECT_EQ(r.per_partition.size(), 3u);
  EXPECT_EQ(r.accepted + r.rejected, 0u);
}

TEST(Routing, ItemsGoToTheirItemPartitionInOrder) {
  std::vector<item_entry> items;
  for (int i = 0; i < 30; ++i) {
    core::item_info info;
    info.title = "t" + std::to_string(i);
    items.emplace_back("i" + std::to_string(i), info);
  }
  auto per = route_items(items, 4);
  ASSERT_EQ(per.size(), 4u);
  std::size_t total = 0;
  for (std::uint32_t p = 0; p < 4; ++p) {
    int last = -1;
    for (const auto& [id, info] : per[p]) {
      EXPECT_EQ(core::partition_of(id, 4), p) << id;
      EXPECT_EQ(info.title, "t" + id.substr(1));
      int n = std::stoi(id.substr(1));
      EXPECT_GT(n, last);
      last = n;
    }
    total += per[p].size();
  }
  EXPECT_EQ(total, items.size());
}

} // namespace
} // namespace shardrec::dist
