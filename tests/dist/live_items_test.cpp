// The live item side of a partition (dist/live_items.hpp) and the scorer's
// live part (partition_scorer::with_live): popularity counted per new
// (user, item) pair, items newer than the model scored at once with a
// content vector from their attributes, trending decayed by event time.
#include "dist/live_items.hpp"

#include <cmath>
#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace shardrec::dist {
namespace {

raw_event ev(const std::string& u, const std::string& i, std::int64_t t = 0) {
  raw_event e;
  e.user = u;
  e.item = i;
  e.type = event_type::view;
  e.timestamp = t;
  return e;
}

item_info genre(const std::string& g) {
  item_info info;
  info.genres = {g};
  return info;
}

// One partition (P = 1) with items a, b trained on, served by popularity
// and content.
struct fixture {
  partition_store store{0, 1};
  served_models model;
  live_items live;
  content_vocabulary voc;

  fixture() {
    store.set_item_info("a", genre("comedy"));
    store.set_item_info("b", genre("drama"));
    for (auto [u, i] : {std::pair{"u1", "a"}, {"u2", "a"}, {"u1", "b"}})
      EXPECT_TRUE(store.add(ev(u, i)).ok());
    store.build(merge_policy::sum);
    const content_config cfg;
    auto df = count_content_df(store, cfg);
    voc = *merge_content_df({df}, 1, cfg);
    partition_item_models m;
    m.items = {"a", "b"};
    m.popularity = partition_popularity(store);
    m.content = build_item_vectors(store, voc, cfg);
    m.knn_reverse.assign(2, {});
    blend_spec spec{{"popular", blend_kind::popular, 1.0f},
                    {"content", blend_kind::content, 1.0f}};
    model.scorer = std::make_shared<const partition_scorer>(
        *partition_scorer::make(std::move(m), std::move(spec)));
    model.users.content.vocabulary = std::make_shared<const content_vocabulary>(voc);
    live.reset(store, model);
  }
  void add(const raw_event& e) {
    ASSERT_TRUE(store.add(e).ok());
    live.on_item_event(store);
  }
  // Raw scores of a cold profile (popularity) and of a content profile.
  std::vector<float> popularity() {
    auto s = live.take_scorer(store);
    EXPECT_TRUE(s);
    if (!s)
      return {};
    scorer = s;
    auto sc = s->score(user_profile{});
    EXPECT_TRUE(sc.ok());
    return {sc->raw.begin(), sc->raw.begin() + static_cast<std::ptrdiff_t>(sc->n_items)};
  }
  std::shared_ptr<const partition_scorer> scorer;
};

TEST(LiveItems, EveryNewUserItemPairCountsInPopularityAtOnce) {
  fixture f;
  EXPECT_EQ(f.popularity(), (std::vector<float>{2, 1}));
  EXPECT_FALSE(f.live.take_scorer(f.store)) << "nothing changed: no new scorer";
  f.add(ev("u3", "b"));
  EXPECT_EQ(f.popularity(), (std::vector<float>{2, 2}));
  f.add(ev("u3", "b")); // the same pair again: not another user
  f.add(ev("u1", "a")); // a pair of the build
  EXPECT_EQ(f.popularity(), (std::vector<float>{2, 2}));
  // The scorer shares the model's trained part: same ids, no dictionary
  // rebuild for a node.
  auto before = f.scorer;
  f.add(ev("u4", "a"));
  EXPECT_EQ(f.popularity(), (std::vector<float>{3, 2}));
  EXPECT_TRUE(before->same_ids(*f.scorer));
}

// A node's dictionary keeps views of a scorer's ids (partition_scorer::
// for_each_id) while it holds a scorer with the same ids: the new items'
// strings must be the very same ones, not equal copies in a freed scorer.
TEST(LiveItems, ScorersWithTheSameIdsShareTheNewItemsStrings) {
  fixture f;
  f.add(ev("u9", "c"));
  f.popularity();
  auto first = f.scorer;
  std::vector<std::string_view> views;
  first->for_each_id([&](std::string_view id, std::uint64_t, partition_scorer::id_slot) {
    views.push_back(id);
  });
  f.add(ev("u8", "c")); // popularity only
  f.popularity();
  ASSERT_TRUE(first->same_ids(*f.scorer));
  first.reset(); // the node drops the old scorer, keeps its views
  std::size_t found = 0;
  for (auto v : views)
    found += v == "c";
  EXPECT_EQ(found, 1u);
  f.add(ev("u7", "d")); // a new item: other ids
  auto second = f.scorer;
  f.popularity();
  EXPECT_FALSE(second->same_ids(*f.scorer));
}

TEST(LiveItems, ANewItemIsScoredAtOnceWithItsContentVector) {
  fixture f;
  f.store.set_item_info("c", genre("comedy"));
  f.live.on_item_info(f.store, *f.store.items().find("c"));
  f.add(ev("u9", "c"));
  EXPECT_EQ(f.popularity(), (std::vector<float>{2, 1, 1}));
  ASSERT_EQ(f.scorer->n_items(), 3u);
  EXPECT_EQ(f.scorer->item_id(2), "c");
  EXPECT_FALSE(f.scorer->same_ids(*f.model.scorer));
  // Its vector is the one a training would give it under the vocabulary:
  // the same as item a's (both "comedy" only).
  ASSERT_TRUE(f.scorer->live());
  const auto& v = f.scorer->live()->content.at(0);
  const auto& a = f.scorer->models().content.at(0);
  EXPECT_EQ(v.feature, a.feature);
  EXPECT_EQ(v.weight, a.weight);
  // A comedy lover scores c as a, and a profile lookup finds c as seen.
  user_profile p;
  p.user = "u1";
  p.content = a;
  p.seen = {"c"};
  auto s = f.scorer->score(p);
  ASSERT_TRUE(s.ok());
  const auto n = s->n_items;
  EXPECT_FLOAT_EQ(s->raw[n + 2], s->raw[n + 0]);
  EXPECT_GT(s->raw[n + 2], 0.5f);
  EXPECT_EQ(s->seen_item, (std::vector<std::uint8_t>{0, 0, 1}));
  // A new item's id is one a node's dictionary knows.
  bool listed = false;
  f.scorer->for_each_id(
      [&](std::string_view id, std::uint64_t, partition_scorer::id_slot slot) {
        if (id == "c")
          listed = slot.row == 2;
      });
  EXPECT_TRUE(listed);
}

TEST(LiveItems, TheLiveRowsMustMatchTheModel) {
  fixture f;
  auto rows = std::make_shared<live_item_rows>();
  rows->popularity = {1, 2}; // no new item
  EXPECT_TRUE(f.model.scorer->with_live(rows).ok());
  rows->popularity = {1};
  auto bad = f.model.scorer->with_live(rows);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("popularity"), std::string::npos);
  rows->popularity = {1, 2, 3};
  rows->items = std::make_shared<std::vector<std::string>>(
      std::vector<std::string>{"a"}); // one of the model's
  rows->content.resize(1);
  bad = f.model.scorer->with_live(rows);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("'a'"), std::string::npos);
}

TEST(LiveItems, TrendingHalvesPerHalfLifeOfEventTime) {
  fixture f;
  const std::int64_t hl =
      static_cast<std::int64_t>(live_items::default_half_life_seconds);
  const std::int64_t t0 = 1'700'000'000;
  f.add(ev("u1", "a", t0));
  f.add(ev("u2", "b", t0 + hl));
  // At t0 + hl: b's event weighs 1, a's 0.5; the build's events (time 0)
  // weigh nothing.
  EXPECT_NEAR(f.live.trending(0), 0.5, 1e-9);
  EXPECT_NEAR(f.live.trending(1), 1.0, 1e-9);
  // Far later (past the rebase of the weights), the ratio is the same.
  f.add(ev("u3", "b", t0 + 100 * hl));
  EXPECT_NEAR(f.live.trending(1), 1.0, 1e-9);
  EXPECT_NEAR(f.live.trending(0), std::exp2(-100.0) * 1.0, 1e-12);
}

} // namespace
} // namespace shardrec::dist

namespace shardrec::dist {
namespace {

// A new item the trained reverse lists already name (a neighbour the users'
// side knew of before the item's partition did): one id, one slot holding
// both its new row and its reverse-list entry.
TEST(LiveItems, ANewItemThatIsAlsoANeighbourHasOneSlot) {
  partition_item_models m;
  m.items = {"a"};
  m.popularity = {1};
  m.knn_reverse = {{{"c", 0.5f}}}; // sim(c, a) = 0.5
  auto base = partition_scorer::make(std::move(m), {{"itemknn", blend_kind::itemknn, 1}});
  ASSERT_TRUE(base.ok());
  auto rows = std::make_shared<live_item_rows>();
  rows->popularity = {1, 1};
  rows->items = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"c"});
  auto s = base->with_live(rows);
  ASSERT_TRUE(s.ok()) << s.err().message;
  std::size_t seen_c = 0;
  s->for_each_id([&](std::string_view id, std::uint64_t, partition_scorer::id_slot slot) {
    if (id != "c")
      return;
    ++seen_c;
    EXPECT_EQ(slot.row, 1u);
    EXPECT_NE(slot.ref, partition_scorer::none);
  });
  EXPECT_EQ(seen_c, 1u);
  // A user who touched c: a's item-kNN score still counts sim(c, a), and c
  // itself is seen.
  user_profile p;
  p.user = "u";
  p.seen = {"c"};
  auto sc = s->score(p);
  ASSERT_TRUE(sc.ok());
  EXPECT_FLOAT_EQ(sc->raw[0], 0.5f);
  EXPECT_EQ(sc->seen_item, (std::vector<std::uint8_t>{0, 1}));
}

} // namespace
} // namespace shardrec::dist
