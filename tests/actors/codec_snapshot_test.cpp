// Snapshots of a partition (actors/codec_snapshot.hpp): a store with events
// after its last build and a model trained the distributed way come back
// from the bytes indistinguishable from the originals; bytes that are not a
// snapshot give an error, never a crash.
#include "actors/codec_snapshot.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/generator.hpp"
#include "core/loaders.hpp"
#include "dist/als.hpp"
#include "dist/knn.hpp"
#include "dist/recommend.hpp"
#include "dist/sliced_cluster.hpp"
#include "dist/training.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::actors {
namespace {

using namespace shardrec::core;
using dist::partition_store;
using dist::raw_event;

// ---- bitwise comparisons ------------------------------------------------------

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Bit for bit (NaN payloads and -0 included).
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size()
         && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same(const dist::sparse_vector& a, const dist::sparse_vector& b) {
  return a.feature == b.feature && same(a.weight, b.weight);
}

bool same(const std::vector<dist::sparse_vector>& a,
          const std::vector<dist::sparse_vector>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i]))
      return false;
  return true;
}

bool same(const event& a, const event& b) {
  return a.user == b.user && a.item == b.item && bits(a.value) == bits(b.value)
         && a.type == b.type && a.device == b.device && a.location == b.location
         && a.timestamp == b.timestamp;
}

void expect_same_events(const std::vector<event>& a, const std::vector<event>& b,
                        const char* side) {
  ASSERT_EQ(a.size(), b.size()) << side;
  for (std::size_t k = 0; k < a.size(); ++k)
    EXPECT_TRUE(same(a[k], b[k])) << side << " event " << k;
}

void expect_same_meta(const std::vector<item_info>& a, const std::vector<item_info>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].title, b[i].title) << i;
    EXPECT_EQ(a[i].genres, b[i].genres) << i;
    EXPECT_EQ(a[i].tags, b[i].tags) << i;
    EXPECT_EQ(a[i].text, b[i].text) << i;
  }
}

void expect_same_image(const dist::store_image& a, const dist::store_image& b) {
  EXPECT_EQ(a.partition, b.partition);
  EXPECT_EQ(a.partitions, b.partitions);
  EXPECT_EQ(a.users, b.users);
  EXPECT_EQ(a.item_refs, b.item_refs);
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(a.user_refs, b.user_refs);
  EXPECT_EQ(a.devices, b.devices);
  EXPECT_EQ(a.locations, b.locations);
  expect_same_events(a.user_side, b.user_side, "user_side");
  expect_same_events(a.item_side, b.item_side, "item_side");
  expect_same_meta(a.item_meta, b.item_meta);
  EXPECT_EQ(a.built, b.built);
  EXPECT_EQ(a.built_once, b.built_once);
  EXPECT_EQ(a.built_policy, b.built_policy);
  EXPECT_EQ(a.binarized, b.binarized);
  EXPECT_EQ(a.built_users, b.built_users);
  EXPECT_EQ(a.built_item_refs, b.built_item_refs);
  EXPECT_EQ(a.built_user_events, b.built_user_events);
  EXPECT_EQ(a.built_user_refs, b.built_user_refs);
  EXPECT_EQ(a.built_items, b.built_items);
  EXPECT_EQ(a.built_item_events, b.built_item_events);
}

// Every cell, value, timestamp and type of both orientations.
void expect_same_matrix(const interaction_matrix& a, const interaction_matrix& b,
                        const char* name) {
  ASSERT_EQ(a.n_users(), b.n_users()) << name;
  ASSERT_EQ(a.n_items(), b.n_items()) << name;
  ASSERT_EQ(a.nnz(), b.nnz()) << name;
  for (index_t u = 0; u < a.n_users(); ++u) {
    auto ra = a.user_row(u), rb = b.user_row(u);
    ASSERT_EQ(ra.size, rb.size) << name << " row " << u;
    for (std::size_t k = 0; k < ra.size; ++k) {
      EXPECT_EQ(ra.index[k], rb.index[k]) << name << " row " << u;
      EXPECT_EQ(bits(ra.value[k]), bits(rb.value[k])) << name << " row " << u;
      EXPECT_EQ(a.user_timestamps(u)[k], b.user_timestamps(u)[k]) << name;
      EXPECT_EQ(a.user_types(u)[k], b.user_types(u)[k]) << name;
    }
  }
  for (index_t i = 0; i < a.n_items(); ++i) {
    auto ca = a.item_col(i), cb = b.item_col(i);
    ASSERT_EQ(ca.size, cb.size) << name << " column " << i;
    for (std::size_t k = 0; k < ca.size; ++k) {
      EXPECT_EQ(ca.index[k], cb.index[k]) << name << " column " << i;
      EXPECT_EQ(bits(ca.value[k]), bits(cb.value[k])) << name << " column " << i;
    }
  }
}

// What a caller of partition_store can see, all of it.
void expect_same_store(const partition_store& a, const partition_store& b) {
  expect_same_image(a.image(), b.image());
  EXPECT_EQ(a.built(), b.built());
  for (auto p : {merge_policy::last, merge_policy::sum, merge_policy::max,
                 merge_policy::confidence})
    EXPECT_EQ(a.built_with(p), b.built_with(p));
  EXPECT_EQ(a.user_events(), b.user_events());
  EXPECT_EQ(a.item_events(), b.item_events());
  expect_same_matrix(a.user_matrix(), b.user_matrix(), "user_matrix");
  expect_same_matrix(a.item_matrix(), b.item_matrix(), "item_matrix");
  ASSERT_EQ(a.users().size(), b.users().size());
  for (index_t u = 0; u < a.users().size() + 2; ++u) { // +2: unknown users too
    const auto& ra = a.recent_items(u);
    const auto& rb = b.recent_items(u);
    ASSERT_EQ(ra.size(), rb.size()) << "user " << u;
    for (std::size_t k = 0; k < ra.size(); ++k) {
      EXPECT_EQ(ra[k].item_ref, rb[k].item_ref) << "user " << u;
      EXPECT_EQ(bits(ra[k].value), bits(rb[k].value)) << "user " << u;
    }
  }
  for (index_t u = 0; u < a.users().size(); ++u)
    EXPECT_EQ(b.users().find(a.users().external(u)), u);
  for (index_t i = 0; i < a.item_refs().size(); ++i)
    EXPECT_EQ(b.item_refs().find(a.item_refs().external(i)), i);
  for (index_t i = 0; i < a.items().size(); ++i)
    EXPECT_EQ(b.items().find(a.items().external(i)), i);
  for (index_t u = 0; u < a.user_refs().size(); ++u)
    EXPECT_EQ(b.user_refs().find(a.user_refs().external(u)), u);
}

// image -> bytes -> image -> store.
partition_store round_trip(const partition_store& s) {
  partition_snapshot snap;
  snap.store = s.image();
  const auto bytes = encode_snapshot(snap);
  auto back = decode_snapshot(bytes.data(), bytes.size());
  EXPECT_TRUE(back.ok()) << back.err().message;
  auto restored = partition_store::from_image(std::move(back->store));
  EXPECT_TRUE(restored.ok()) << restored.err().message;
  return std::move(*restored);
}

// ---- stores ---------------------------------------------------------------------

raw_event ev(const std::string& u, const std::string& i, float v, std::int64_t ts,
             event_type t = event_type::rating, const std::string& device = "",
             const std::string& location = "") {
  raw_event e;
  e.user = u;
  e.item = i;
  e.value = v;
  e.timestamp = ts;
  e.type = t;
  e.device = device;
  e.location = location;
  return e;
}

const char* const devices[] = {"", "phone", "web", "tv"};
const char* const locations[] = {"", "DE", "FR"};

// Three partitions fed the same events: 30 users x some of 25 items with
// devices, locations, types and item information, built with `policy`.
std::vector<partition_store> built_stores(merge_policy policy) {
  std::vector<partition_store> stores;
  for (std::uint32_t p = 0; p < 3; ++p)
    stores.emplace_back(p, 3);
  std::int64_t ts = 1000;
  for (int u = 0; u < 30; ++u)
    for (int i = u % 4; i < 25; i += 2 + u % 3)
      for (auto& s : stores) {
        auto e = ev("u" + std::to_string(u), "i" + std::to_string(i),
                    static_cast<float>(1 + (u + i) % 5) * 0.5f, ts,
                    static_cast<event_type>((u + i) % event_type_count),
                    devices[(u + i) % 4], locations[u % 3]);
        EXPECT_TRUE(s.add(e).ok());
      }
  for (auto& s : stores) {
    // A repeated cell (merged by the policy) and item information.
    EXPECT_TRUE(s.add(ev("u1", "i1", 4.5f, ++ts)).ok());
    for (int i = 0; i < 25; i += 3)
      s.set_item_info("i" + std::to_string(i), {"title " + std::to_string(i),
                                                {"g" + std::to_string(i % 4), "x"},
                                                {"t" + std::to_string(i)},
                                                "some text"});
    s.build(policy);
  }
  return stores;
}

// After the build: new users, new items, old users with new items (recent
// items), an old user's item already in its row (not recent), a new item
// touched twice (one recent entry, latest value), a new device and location,
// item information for a new item.
void add_after_build(std::vector<partition_store>& stores) {
  std::int64_t ts = 5000;
  const std::vector<raw_event> more = {
      ev("u2", "new1", 3, ++ts, event_type::click, "watch", "IT"),
      ev("u2", "i2", 5, ++ts), // already in u2's row
      ev("u5", "new1", 1, ++ts),
      ev("u5", "new1", 2.5f, ++ts, event_type::purchase), // latest value wins
      ev("u7", "i24", 4, ++ts),
      ev("fresh1", "i3", 2, ++ts, event_type::view, "phone"),
      ev("fresh2", "new2", 1, ++ts),
      ev("u11", "new2", 3, ++ts, event_type::cart, "", "FR"),
  };
  for (auto& s : stores) {
    for (const auto& e : more)
      ASSERT_TRUE(s.add(e).ok());
    s.set_item_info("new3", {"only information", {"g9"}, {}, ""});
  }
}

TEST(CodecSnapshot, StoreWithEventsAfterTheBuildComesBackTheSame) {
  for (auto policy : {merge_policy::last, merge_policy::sum, merge_policy::max,
                      merge_policy::confidence}) {
    auto stores = built_stores(policy);
    add_after_build(stores);
    std::size_t recent = 0;
    for (const auto& s : stores) {
      EXPECT_FALSE(s.built());
      for (index_t u = 0; u < s.users().size(); ++u)
        recent += s.recent_items(u).size();
      // Some events are not in the matrices yet.
      EXPECT_GT(s.user_events(), s.user_matrix().nnz());
    }
    EXPECT_GE(recent, 4u); // the case that needs the replay
    for (auto& s : stores) {
      SCOPED_TRACE("partition " + std::to_string(s.partition()));
      auto r = round_trip(s);
      expect_same_store(s, r);
      // The same next events give the same state again, before and after a
      // build.
      for (const auto& e : {ev("u5", "new4", 2, 9000), ev("u2", "i2", 1, 9001),
                            ev("fresh3", "i1", 5, 9002, event_type::rating, "car")}) {
        ASSERT_TRUE(s.add(e).ok());
        ASSERT_TRUE(r.add(e).ok());
      }
      expect_same_store(s, r);
      s.build(merge_policy::sum);
      r.build(merge_policy::sum);
      expect_same_store(s, r);
    }
  }
}

TEST(CodecSnapshot, StoresBeforeTheFirstBuildBuiltAndBinarizedComeBackTheSame) {
  // Never built: events but no matrices and no recent items.
  partition_store fresh(1, 2);
  for (int u = 0; u < 12; ++u)
    ASSERT_TRUE(
        fresh.add(ev("a" + std::to_string(u), "b" + std::to_string(u % 5), 1, u)).ok());
  auto r = round_trip(fresh);
  expect_same_store(fresh, r);
  EXPECT_FALSE(r.image().built_once);
  // Empty.
  partition_store empty(0, 1);
  expect_same_store(empty, round_trip(empty));
  // Built with nothing added since: built() and built_with() hold.
  auto stores = built_stores(merge_policy::last);
  EXPECT_TRUE(stores[0].built_with(merge_policy::last));
  auto b = round_trip(stores[0]);
  EXPECT_TRUE(b.built_with(merge_policy::last));
  expect_same_store(stores[0], b);
  // Binarized (what a training run scores with), then more events.
  auto bin = stores[1].binarized();
  ASSERT_TRUE(bin.add(ev("u3", "new9", 7, 99999)).ok());
  auto rb = round_trip(bin);
  expect_same_store(bin, rb);
  EXPECT_EQ(rb.user_matrix().user_row(0).value[0], 1.0f);
}

TEST(CodecSnapshot, SnapshotFieldsComeBack) {
  partition_snapshot s;
  s.log_seq = 0x123456789abcull;
  s.model_version = 17;
  s.ratings_only = false;
  s.scale = {0.5f, 10.0f};
  s.store = built_stores(merge_policy::sum)[2].image();
  const auto bytes = encode_snapshot(s);
  EXPECT_EQ(bytes.size() % 8, 0u);
  auto back = decode_snapshot(bytes.data(), bytes.size());
  ASSERT_TRUE(back.ok()) << back.err().message;
  EXPECT_EQ(back->log_seq, s.log_seq);
  EXPECT_EQ(back->model_version, 17u);
  EXPECT_FALSE(back->ratings_only);
  EXPECT_EQ(back->scale.min, 0.5f);
  EXPECT_EQ(back->scale.max, 10.0f);
  EXPECT_FALSE(back->model.has_value());
  expect_same_image(s.store, back->store);
  // The buffer need not be aligned.
  std::vector<char> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  auto unaligned = decode_snapshot(shifted.data() + 1, bytes.size());
  ASSERT_TRUE(unaligned.ok()) << unaligned.err().message;
  expect_same_image(s.store, unaligned->store);
}

// ---- a trained model --------------------------------------------------------------

// Stores of a generated data set with every part of the hybrid trained by
// the distributed steps (content, item-kNN by row exchange, iALS, MF) and
// packed as a shard packs them, in one process.
struct trained {
  std::vector<partition_store> stores;
  std::vector<dist::served_models> served;
};

trained train_cluster(std::uint32_t P, std::size_t users = 150, std::size_t items = 90,
                      std::size_t events = 3000) {
  generator_config g;
  g.users = users;
  g.items = items;
  g.events = events;
  g.explicit_ratings = true;
  g.seed = 11;
  auto ds = generate(g);
  trained t;
  t.stores = dist::make_stores(ds, P, merge_policy::last);
  auto settings = dist::make_train_settings(6, 3, 5, 1);
  // The snapshot holds MF rows however they were trained: ALS sweeps keep
  // this hand-driven flow short (the Gibbs flow is dist.als's).
  settings.mf.solver = core::mf_solver::als;
  std::vector<partition_store> bins;
  for (const auto& s : t.stores)
    bins.push_back(s.binarized());

  std::vector<dist::content_session> content(P, dist::content_session(settings.content));
  std::vector<dist::content_df_partial> dfs;
  for (std::uint32_t p = 0; p < P; ++p)
    dfs.push_back(content[p].count_df(t.stores[p]));
  auto voc = dist::merge_content_df(dfs, P, settings.content);
  EXPECT_TRUE(voc.ok());
  for (std::uint32_t p = 0; p < P; ++p)
    for (auto& m : content[p].build_vectors(t.stores[p], *voc))
      content[m.to].receive(std::move(m));
  for (std::uint32_t p = 0; p < P; ++p)
    EXPECT_TRUE(content[p].finish_users(t.stores[p]).ok());

  std::vector<dist::knn_session> knn;
  std::vector<dist::scale_partial> scales;
  for (std::uint32_t p = 0; p < P; ++p) {
    knn.emplace_back(P, settings.knn);
    auto sp = knn[p].scale(t.stores[p], bins[p]);
    EXPECT_TRUE(sp.ok());
    scales.push_back(*sp);
  }
  // One node: partition 0 gathers; two rounds.
  const std::vector<std::uint32_t> node_of(P, 0);
  std::vector<dist::reverse_block> reverse;
  for (std::uint32_t round = 0; round < 2; ++round) {
    const dist::knn_round r{dist::global_scale(scales), round, 2};
    for (std::uint32_t p = 0; p < P; ++p) {
      auto rows = knn[p].rows(bins[p], r, node_of);
      EXPECT_TRUE(rows.ok());
      for (auto& b : *rows)
        EXPECT_TRUE(knn[0].add_rows(std::move(b), 0, node_of).ok());
    }
    auto raters = knn[0].gather();
    EXPECT_TRUE(raters.ok());
    for (std::uint32_t p = 0; p < P; ++p) {
      knn[p].set_raters(*raters);
      auto blocks = knn[p].lists_round(t.stores[p], r, 1);
      EXPECT_TRUE(blocks.ok());
      for (auto& b : *blocks)
        reverse.push_back(std::move(b));
    }
  }
  for (const auto& b : reverse)
    EXPECT_TRUE(knn[b.to].receive(t.stores[b.to], b).ok());
  for (auto& k : knn)
    k.complete();

  std::vector<dist::als_census> census;
  for (const auto& s : t.stores)
    census.push_back(dist::census(s));
  auto globals = dist::merge_census(census, P);
  EXPECT_TRUE(globals.ok());
  std::vector<std::unique_ptr<dist::ials_partition>> ials;
  std::vector<std::unique_ptr<dist::mf_partition>> mf;
  for (const auto& s : t.stores) {
    ials.push_back(std::make_unique<dist::ials_partition>(s, settings.ials, *globals));
    mf.push_back(std::make_unique<dist::mf_partition>(s, settings.mf, *globals));
  }
  for (int it = 0; it < settings.ials.iterations; ++it)
    for (auto fixed : {dist::als_side::items, dist::als_side::users}) {
      const auto solving =
          fixed == dist::als_side::items ? dist::als_side::users : dist::als_side::items;
      std::vector<dist::gram_partial> grams;
      std::vector<dist::ials_block> blocks;
      for (auto& p : ials) {
        grams.push_back(p->make_gram_partial(fixed));
        for (auto& b : p->make_blocks(fixed))
          blocks.push_back(std::move(b));
      }
      auto total = dist::sum_gram(grams, P);
      EXPECT_TRUE(total.ok());
      for (const auto& b : blocks)
        EXPECT_TRUE(ials[b.to]->receive(b).ok());
      for (auto& p : ials)
        EXPECT_TRUE(p->solve(solving, *total).ok());
    }
  for (int it = 0; it < settings.mf.iterations; ++it)
    for (auto fixed : {dist::als_side::items, dist::als_side::users}) {
      const auto solving =
          fixed == dist::als_side::items ? dist::als_side::users : dist::als_side::items;
      std::vector<dist::mf_block> blocks;
      for (auto& p : mf)
        for (auto& b : p->make_blocks(fixed))
          blocks.push_back(std::move(b));
      for (const auto& b : blocks)
        EXPECT_TRUE(mf[b.to]->receive(b).ok());
      for (auto& p : mf)
        EXPECT_TRUE(p->solve(solving).ok());
    }

  // EASE: E1..E5 through the sessions, columns in two chunks per partition.
  std::vector<std::vector<std::string>> ease_items;
  for (const auto& b : bins)
    ease_items.push_back(dist::ease_items(b));
  auto cat = dist::make_ease_catalogue(ease_items, 100000);
  EXPECT_TRUE(cat.ok());
  const auto n_cat = cat->items.size();
  std::vector<dist::ease_session> ease(P);
  dist::ease_gram gram(n_cat * (n_cat + 1) / 2, 0);
  for (std::uint32_t p = 0; p < P; ++p)
    EXPECT_TRUE(dist::add_ease_gram(gram, n_cat, ease[p].rows(bins[p], *cat)).ok());
  const auto b = dist::ease_solve(gram, n_cat, 200.0f);
  for (std::uint32_t p = 0; p < P; ++p) {
    const auto& owned = ease_items[p];
    const auto half = owned.size() / 2;
    for (auto [from, to] :
         {std::pair{std::size_t{0}, half}, std::pair{half, owned.size()}}) {
      std::vector<std::string> chunk(owned.begin() + static_cast<std::ptrdiff_t>(from),
                                     owned.begin() + static_cast<std::ptrdiff_t>(to));
      EXPECT_TRUE(
          ease[p].receive(t.stores[p], chunk, dist::ease_columns(b, *cat, chunk)).ok());
    }
  }

  const dist::blend_spec spec = {{"implicit-als", dist::blend_kind::implicit_als, 1.0f},
                                 {"itemknn", dist::blend_kind::itemknn, 0.5f},
                                 {"content", dist::blend_kind::content, 0.25f},
                                 {"popular", dist::blend_kind::popular, 0.125f},
                                 {"mf", dist::blend_kind::mf, 0.3f},
                                 {"ease", dist::blend_kind::ease, 0.7f}};
  for (std::uint32_t p = 0; p < P; ++p) {
    auto served = dist::pack_models(t.stores[p], dist::partition_popularity(t.stores[p]),
                                    &content[p], &knn[p], ials[p].get(), mf[p].get(),
                                    &ease[p], spec);
    EXPECT_TRUE(served.ok()) << served.err().message;
    t.served.push_back(std::move(*served));
  }
  return t;
}

void expect_same_item_models(const dist::partition_item_models& a,
                             const dist::partition_item_models& b) {
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(a.ials_factors, b.ials_factors);
  EXPECT_TRUE(same(a.ials_item, b.ials_item));
  EXPECT_EQ(a.mf_factors, b.mf_factors);
  EXPECT_EQ(bits(a.mf_mu), bits(b.mf_mu));
  EXPECT_TRUE(same(a.mf_item, b.mf_item));
  EXPECT_TRUE(same(a.mf_item_bias, b.mf_item_bias));
  ASSERT_EQ(a.knn_reverse.size(), b.knn_reverse.size());
  for (std::size_t i = 0; i < a.knn_reverse.size(); ++i) {
    ASSERT_EQ(a.knn_reverse[i].size(), b.knn_reverse[i].size());
    for (std::size_t k = 0; k < a.knn_reverse[i].size(); ++k) {
      EXPECT_EQ(a.knn_reverse[i][k].item, b.knn_reverse[i][k].item);
      EXPECT_EQ(bits(a.knn_reverse[i][k].similarity),
                bits(b.knn_reverse[i][k].similarity));
    }
  }
  EXPECT_TRUE(same(a.popularity, b.popularity));
  EXPECT_TRUE(same(a.content, b.content));
  ASSERT_EQ(a.ease == nullptr, b.ease == nullptr);
  if (a.ease) {
    EXPECT_EQ(a.ease->items, b.ease->items);
    EXPECT_EQ(a.ease->keys, b.ease->keys);
    EXPECT_TRUE(same(a.ease_weight, b.ease_weight));
  }
}

void expect_same_neighbors(const dist::neighbor_lists& a, const dist::neighbor_lists& b) {
  ASSERT_EQ(a.lists().size(), b.lists().size());
  for (std::size_t i = 0; i < a.lists().size(); ++i) {
    const auto& la = a.lists()[i];
    const auto& lb = b.lists()[i];
    EXPECT_EQ(la.id, lb.id);
    ASSERT_EQ(la.neighbors.size(), lb.neighbors.size()) << la.id;
    for (std::size_t k = 0; k < la.neighbors.size(); ++k) {
      EXPECT_EQ(la.neighbors[k].id, lb.neighbors[k].id);
      EXPECT_EQ(bits(la.neighbors[k].similarity), bits(lb.neighbors[k].similarity));
    }
    EXPECT_EQ(b.find(la.id), &lb);
  }
}

// The scores of every owned user (and a cold one) are bit-identical.
void expect_same_scores(const partition_store& sa, const dist::served_models& a,
                        const partition_store& sb, const dist::served_models& b) {
  std::vector<std::string> users;
  for (index_t u = 0; u < sa.users().size(); ++u)
    users.push_back(sa.users().external(u));
  std::size_t scored = 0;
  for (const auto& user : users) {
    auto pa = dist::make_user_profile(sa, a.users, user);
    auto pb = dist::make_user_profile(sb, b.users, user);
    ASSERT_TRUE(pa.ok()) << pa.err().message;
    ASSERT_TRUE(pb.ok()) << pb.err().message;
    EXPECT_EQ(pa->seen, pb->seen) << user;
    EXPECT_TRUE(same(pa->seen_value, pb->seen_value)) << user;
    EXPECT_TRUE(same(pa->ials, pb->ials)) << user;
    EXPECT_TRUE(same(pa->mf, pb->mf)) << user;
    EXPECT_TRUE(same(pa->content, pb->content)) << user;
    auto xa = a.scorer->score(*pa);
    auto xb = b.scorer->score(*pb);
    ASSERT_TRUE(xa.ok()) << xa.err().message;
    ASSERT_TRUE(xb.ok()) << xb.err().message;
    EXPECT_EQ(xa->n_components, xb->n_components);
    EXPECT_TRUE(same(xa->raw, xb->raw)) << user;
    EXPECT_EQ(xa->seen_item, xb->seen_item) << user;
    EXPECT_EQ(xa->seen_refs, xb->seen_refs) << user;
    scored += xa->raw.size();
  }
  EXPECT_GT(scored, 0u);
}

TEST(CodecSnapshot, TrainedModelComesBackWithBitIdenticalScoresAndNeighbours) {
  const std::uint32_t P = 3;
  auto t = train_cluster(P);
  // Events after the training: the profiles see them as recent items.
  for (auto& s : t.stores) {
    std::vector<std::string> some_items;
    for (index_t i = 0; i < s.item_refs().size() && some_items.size() < 3; ++i)
      some_items.push_back(s.item_refs().external(i));
    for (std::uint32_t p = 0; p < P; ++p)
      for (const auto& item : some_items)
        ASSERT_TRUE(s.add(ev("late" + std::to_string(p), item, 4, 1 << 30)).ok());
    ASSERT_GT(s.users().size(), 0u);
    ASSERT_TRUE(s.add(ev(s.users().external(0), "brand-new-item", 5, 1 << 30)).ok());
  }
  std::size_t lists = 0;
  for (std::uint32_t p = 0; p < P; ++p) {
    SCOPED_TRACE("partition " + std::to_string(p));
    const auto& served = t.served[p];
    ASSERT_TRUE(served.scorer && served.neighbors);
    EXPECT_EQ(served.scorer->spec().size(), 6u); // every part trained
    ASSERT_TRUE(served.scorer->models().ease);
    EXPECT_FALSE(served.scorer->models().ease_weight.empty());
    partition_snapshot snap;
    snap.log_seq = 1000 + p;
    snap.model_version = 3;
    snap.store = t.stores[p].image();
    snap.model = image_of(served);
    const auto bytes = encode_snapshot(snap);
    auto back = decode_snapshot(bytes.data(), bytes.size());
    ASSERT_TRUE(back.ok()) << back.err().message;
    ASSERT_TRUE(back->model.has_value());
    EXPECT_EQ(back->model_version, 3u);
    auto store = partition_store::from_image(std::move(back->store));
    ASSERT_TRUE(store.ok()) << store.err().message;
    expect_same_store(t.stores[p], *store);
    auto restored = make_served(*back->model);
    ASSERT_TRUE(restored.ok()) << restored.err().message;
    expect_same_item_models(served.scorer->models(), restored->scorer->models());
    EXPECT_EQ(restored->scorer->spec().size(), served.scorer->spec().size());
    for (std::size_t c = 0; c < served.scorer->spec().size(); ++c) {
      EXPECT_EQ(restored->scorer->spec()[c].name, served.scorer->spec()[c].name);
      EXPECT_EQ(restored->scorer->spec()[c].kind, served.scorer->spec()[c].kind);
      EXPECT_EQ(bits(restored->scorer->spec()[c].weight),
                bits(served.scorer->spec()[c].weight));
    }
    EXPECT_TRUE(same(restored->users.ials_user, served.users.ials_user));
    EXPECT_TRUE(same(restored->users.mf_user, served.users.mf_user));
    EXPECT_TRUE(same(restored->users.mf_user_bias, served.users.mf_user_bias));
    EXPECT_TRUE(same(restored->users.content.profiles, served.users.content.profiles));
    EXPECT_TRUE(
        same(restored->users.content.ref_vectors, served.users.content.ref_vectors));
    ASSERT_TRUE(restored->neighbors);
    expect_same_neighbors(*served.neighbors, *restored->neighbors);
    lists += served.neighbors->lists().size();
    expect_same_scores(t.stores[p], served, *store, *restored);
  }
  EXPECT_GT(lists, 0u);
}

TEST(CodecSnapshot, ModelWithoutNeighboursOrTrainedPartsComesBackSo) {
  auto stores = built_stores(merge_policy::sum);
  auto served = dist::pack_models(stores[0], dist::partition_popularity(stores[0]),
                                  nullptr, nullptr, nullptr, nullptr, nullptr,
                                  {{"popular", dist::blend_kind::popular, 1.0f}});
  ASSERT_TRUE(served.ok()) << served.err().message;
  ASSERT_FALSE(served->neighbors);
  partition_snapshot snap;
  snap.store = stores[0].image();
  snap.model = image_of(*served);
  const auto bytes = encode_snapshot(snap);
  auto back = decode_snapshot(bytes.data(), bytes.size());
  ASSERT_TRUE(back.ok()) << back.err().message;
  ASSERT_TRUE(back->model.has_value());
  EXPECT_FALSE(back->model->neighbors.has_value());
  auto restored = make_served(std::move(*back->model));
  ASSERT_TRUE(restored.ok()) << restored.err().message;
  EXPECT_FALSE(restored->neighbors);
  expect_same_item_models(served->scorer->models(), restored->scorer->models());
  // An empty neighbour list is not an absent one.
  served_model_image with_empty = image_of(*served);
  with_empty.neighbors.emplace();
  snap.model = with_empty;
  const auto bytes2 = encode_snapshot(snap);
  auto back2 = decode_snapshot(bytes2.data(), bytes2.size());
  ASSERT_TRUE(back2.ok()) << back2.err().message;
  ASSERT_TRUE(back2->model->neighbors.has_value());
  EXPECT_TRUE(back2->model->neighbors->empty());
}

// ---- inconsistent images and bad bytes ----------------------------------------------

TEST(CodecSnapshot, InconsistentImagesAreRejectedWithAReason) {
  auto stores = built_stores(merge_policy::last);
  add_after_build(stores);
  // A partition with a user and user-side events that came after the build.
  std::size_t p = 0;
  while (p < stores.size()
         && (stores[p].image().built_users == stores[p].users().size()
             || stores[p].image().built_user_events == stores[p].user_events()))
    ++p;
  ASSERT_LT(p, stores.size());
  const auto good = stores[p].image();
  ASSERT_TRUE(partition_store::from_image(good).ok());
  auto rejected = [&](auto&& spoil, const std::string& says) {
    auto im = good;
    spoil(im);
    auto r = partition_store::from_image(std::move(im));
    ASSERT_FALSE(r.ok()) << "accepted an image that " << says;
    EXPECT_EQ(r.err().code, errc::invalid_argument);
    EXPECT_NE(r.err().message.find(says), std::string::npos) << r.err().message;
  };
  rejected([](dist::store_image& im) { im.partition = 3; }, "partition 3 of 3");
  rejected([](dist::store_image& im) { im.partitions = 0; }, "partition");
  rejected([](dist::store_image& im) { im.partitions = 7; }, "belongs to partition");
  rejected([](dist::store_image& im) { im.users.push_back(im.users[0]); }, "duplicate");
  rejected([](dist::store_image& im) { im.item_refs.push_back(im.item_refs[1]); },
           "duplicate");
  rejected([](dist::store_image& im) { im.devices.clear(); }, "devices");
  rejected([](dist::store_image& im) { im.locations[0] = "x"; }, "locations");
  rejected([](dist::store_image& im) { im.user_side[3].user = 100000; },
           "user_side[3]: user");
  rejected([](dist::store_image& im) { im.item_side.back().item = 100000; },
           "item_side[");
  rejected([](dist::store_image& im) { im.user_side[0].device = 60; }, "device");
  rejected([](dist::store_image& im) { im.item_side[0].location = 60; }, "location");
  rejected([](dist::store_image& im) { im.user_side[0].value = std::nanf(""); },
           "finite");
  rejected(
      [](dist::store_image& im) { im.user_side[0].type = static_cast<event_type>(9); },
      "event type");
  rejected([](dist::store_image& im) { im.item_meta.resize(im.items.size() + 1); },
           "item_meta");
  rejected([](dist::store_image& im) { im.built_users = im.users.size() + 1; }, "users");
  rejected([](dist::store_image& im) { im.built_user_events = im.user_side.size() + 1; },
           "user events");
  rejected([](dist::store_image& im) { im.built = true; }, "is built");
  rejected(
      [](dist::store_image& im) {
        im.built_once = false;
        im.binarized = false;
      },
      "without a build");
  rejected([](dist::store_image& im) { im.built_policy = static_cast<merge_policy>(7); },
           "merge policy");
  // An event of the last build outside that build's shape.
  rejected(
      [](dist::store_image& im) {
        im.user_side[0].user = static_cast<index_t>(im.users.size() - 1);
      },
      "outside the last build");
}

TEST(CodecSnapshot, BadBytesGiveAnErrorNeverACrash) {
  auto t = train_cluster(2, 40, 30, 400);
  partition_snapshot snap;
  snap.store = t.stores[1].image();
  snap.model = image_of(t.served[1]);
  const auto bytes = encode_snapshot(snap);
  ASSERT_TRUE(decode_snapshot(bytes.data(), bytes.size()).ok());

  auto fails = [](const std::string& b, const std::string& says) {
    auto r = decode_snapshot(b.data(), b.size());
    ASSERT_FALSE(r.ok()) << says;
    EXPECT_EQ(r.err().code, errc::bad_message);
    EXPECT_NE(r.err().message.find(says), std::string::npos) << r.err().message;
    EXPECT_EQ(r.err().message.rfind("bad snapshot: ", 0), 0u) << r.err().message;
  };
  fails("", "empty");
  fails(bytes.substr(0, 13), "multiple of 8");
  fails(bytes + std::string(8, '\0'), "8 bytes after the message");
  {
    auto b = bytes;
    const auto at = b.find("SRS1"); // the magic, little-endian
    ASSERT_LT(at, 64u);
    b[at] ^= 0x40;
    fails(b, "magic");
  }
  // Every truncation.
  for (std::size_t n = 8; n < bytes.size(); n += 8) {
    auto r = decode_snapshot(bytes.data(), n);
    EXPECT_FALSE(r.ok()) << "truncated to " << n << " bytes";
  }
  // Random bytes (a plausible segment table first, so that the reader goes on).
  std::mt19937_64 rng(3);
  for (int k = 0; k < 200; ++k) {
    std::string b(8 * (1 + rng() % 64), '\0');
    for (auto& c : b)
      c = static_cast<char>(rng());
    if (k % 2 == 0) {
      const std::uint32_t header[2] = {0, static_cast<std::uint32_t>(b.size() / 8 - 1)};
      std::memcpy(b.data(), header, sizeof header);
    }
    auto r = decode_snapshot(b.data(), b.size());
    EXPECT_FALSE(r.ok()) << "random buffer " << k;
  }
  // Flipped bytes: either an error or values that the store and the scorer
  // check in turn; nothing crashes, and flips in the structure are caught.
  std::size_t decode_errors = 0, later_errors = 0, flips = 0;
  auto try_flip = [&](std::size_t pos, unsigned char mask) {
    auto b = bytes;
    b[pos] = static_cast<char>(b[pos] ^ mask);
    ++flips;
    auto r = decode_snapshot(b.data(), b.size());
    if (!r.ok()) {
      ++decode_errors;
      EXPECT_EQ(r.err().code, errc::bad_message);
      return;
    }
    auto store = partition_store::from_image(std::move(r->store));
    auto served = r->model ? make_served(std::move(*r->model))
                           : core::result<dist::served_models>(dist::served_models{});
    if (!store.ok() || !served.ok())
      ++later_errors;
  };
  for (std::size_t pos = 0; pos < std::min<std::size_t>(bytes.size(), 1024); ++pos)
    try_flip(pos, 0xff);
  for (int k = 0; k < 3000; ++k)
    try_flip(rng() % bytes.size(), static_cast<unsigned char>(1u << (rng() % 8)));
  EXPECT_GT(decode_errors, 0u);
  EXPECT_GT(later_errors, 0u);
  std::cout << "snapshot of " << bytes.size() << " bytes, " << flips
            << " flips: " << decode_errors << " rejected by decode_snapshot, "
            << later_errors << " by from_image / make_served\n";
}

// ---- size ---------------------------------------------------------------------------

TEST(CodecSnapshot, Ml100kStoresBytesPerEvent) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u.item");
  dataset ds;
  auto loaded =
      load_events(test_data::path("ml-100k/u1.base"), data_format::movielens, ds);
  ASSERT_TRUE(loaded.ok()) << loaded.err().message;
  ASSERT_TRUE(load_item_attributes(test_data::path("ml-100k/u.item"), ds).ok());
  for (bool with_info : {false, true}) {
    auto stores = with_info
                      ? dist::make_stores(ds, 8, merge_policy::last)
                      : dist::make_stores(dist::raw_events_of(ds), 8, merge_policy::last);
    std::size_t total = 0;
    for (const auto& s : stores) {
      partition_snapshot snap;
      snap.store = s.image();
      const auto bytes = encode_snapshot(snap);
      total += bytes.size();
      auto back = decode_snapshot(bytes.data(), bytes.size());
      ASSERT_TRUE(back.ok()) << back.err().message;
      auto r = partition_store::from_image(std::move(back->store));
      ASSERT_TRUE(r.ok()) << r.err().message;
      EXPECT_EQ(r->user_matrix().nnz(), s.user_matrix().nnz());
    }
    const double per_event = static_cast<double>(total) / ds.events.size();
    std::cout << "ML-100K u1.base (" << ds.events.size() << " events) over 8 partitions"
              << (with_info ? ", with u.item information" : ", events only") << ": "
              << total << " bytes, " << per_event << " bytes per event\n";
    // Each event is stored at its user's and its item's partition, 25 bytes
    // of columns each, plus the ids.
    EXPECT_LT(per_event, with_info ? 80.0 : 60.0);
  }
}

} // namespace
} // namespace shardrec::actors
