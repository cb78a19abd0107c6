#include "dist/recommend.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>

#include <gtest/gtest.h>

#include "core/algorithms.hpp"
#include "core/content.hpp"
#include "core/hybrid.hpp"
#include "core/ials.hpp"
#include "core/knn.hpp"
#include "core/loaders.hpp"
#include "core/mf.hpp"
#include "core/partition.hpp"
#include "core/popularity.hpp"
#include "dist/node_query.hpp"
#include "dist/sliced_cluster.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::dist {
namespace {

std::mt19937 rng(20240611);

// The stores and the distributed content steps (messages shuffled) of
// dist/sliced_cluster.hpp, with this file's merge policy and random order.
std::vector<partition_store> make_stores(const dataset& ds, std::uint32_t P) {
  return dist::make_stores(ds, P, merge_policy::last);
}

dist::content_result run_content_shuffled(const std::vector<partition_store>& stores,
                                          const content_config& cfg) {
  return dist::run_content(stores, cfg, &rng);
}

// C1..C3 over every partition, replies shuffled.
merged_recommendations run_query(const std::vector<partition_scorer>& scorers,
                                 const user_profile& profile, std::size_t n,
                                 blend_stats* stats_out = nullptr) {
  const auto P = static_cast<std::uint32_t>(scorers.size());
  std::vector<partition_scores> kept;
  std::vector<phase1_reply> r1;
  for (std::uint32_t p = 0; p < P; ++p) {
    auto s = scorers[p].score(profile);
    EXPECT_TRUE(s.ok());
    r1.push_back(moments(*s, p));
    kept.push_back(std::move(*s));
  }
  std::shuffle(r1.begin(), r1.end(), rng);
  auto stats = combine_moments(r1, scorers[0].spec().size(), P);
  EXPECT_TRUE(stats.ok());
  EXPECT_TRUE(stats->missing.empty());
  std::vector<phase2_reply> r2;
  for (std::uint32_t p = 0; p < P; ++p)
    r2.push_back(scorers[p].select_candidates(kept[p], profile, *stats, n, 3, p));
  std::shuffle(r2.begin(), r2.end(), rng);
  auto merged = merge_candidates(r2, P, n);
  EXPECT_TRUE(merged.ok());
  explain_candidates(merged->items, profile, 3);
  if (stats_out)
    *stats_out = *stats;
  // The cluster's way: partitions score and select without the user's
  // content evidence. Same items, scores and explanations.
  user_profile lean = profile;
  lean.seen_content.clear();
  std::vector<phase2_reply> lean_r2;
  for (std::uint32_t p = 0; p < P; ++p)
    lean_r2.push_back(scorers[p].select_candidates(kept[p], lean, *stats, n, 3, p));
  auto lean_merged = merge_candidates(lean_r2, P, n);
  EXPECT_TRUE(lean_merged.ok());
  explain_candidates(lean_merged->items, profile, 3);
  EXPECT_EQ(lean_merged->items.size(), merged->items.size());
  for (std::size_t k = 0; k < merged->items.size() && k < lean_merged->items.size();
       ++k) {
    const auto& a = merged->items[k];
    const auto& b = lean_merged->items[k];
    EXPECT_EQ(a.item, b.item);
    EXPECT_EQ(a.score, b.score);
    EXPECT_EQ(a.because_from, b.because_from) << a.item;
    EXPECT_EQ(a.because.size(), b.because.size()) << a.item;
    for (std::size_t e = 0; e < a.because.size() && e < b.because.size(); ++e) {
      EXPECT_EQ(a.because[e].item, b.because[e].item);
      EXPECT_EQ(a.because[e].weight, b.because[e].weight);
    }
  }
  return std::move(*merged);
}

// ---- Small hand-made data --------------------------------------------------

dataset tiny_dataset() {
  dataset ds;
  const char* items[] = {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"};
  const std::vector<std::vector<std::string>> genres = {
      {"Action", "Comedy"}, {"Action"}, {"Drama"},   {"Drama", "Romance"},
      {"Comedy"},           {},         {"Romance"}, {"Action", "Drama"}};
  const char* titles[] = {"Star Wars", "Star Trek", "Casablanca",   "Titanic",
                          "Airplane",  "",          "Notting Hill", "Dark Knight"};
  for (int i = 0; i < 8; ++i) {
    auto idx = ds.items.intern(items[i]);
    ds.item_meta_at(idx).genres = genres[static_cast<std::size_t>(i)];
    ds.item_meta_at(idx).title = titles[i];
  }
  ds.items.intern("m9"); // catalogue item without events or content
  struct r {
    const char* u;
    const char* i;
    float v;
    event_type t;
  };
  const r evs[] = {
      {"alice", "m1", 5, event_type::rating}, {"alice", "m2", 4, event_type::rating},
      {"alice", "m3", 1, event_type::rating}, {"bob", "m3", 5, event_type::rating},
      {"bob", "m4", 4, event_type::rating},   {"bob", "m7", 2, event_type::rating},
      {"carol", "m1", 3, event_type::rating}, {"carol", "m5", 3, event_type::rating},
      {"dave", "m2", 2, event_type::view},    {"dave", "m8", 3, event_type::purchase},
      {"erin", "m6", 4, event_type::rating},  {"frank", "m4", 1, event_type::rating},
      {"frank", "m8", 5, event_type::rating}, {"frank", "m5", 2, event_type::rating},
      {"frank", "m1", 4, event_type::rating},
  };
  for (const auto& e : evs) {
    event ev;
    ev.user = ds.users.intern(e.u);
    ev.item = ds.items.intern(e.i);
    ev.value = e.v;
    ev.type = e.t;
    ds.events.push_back(ev);
  }
  return ds;
}

TEST(DistContent, TinyDataEqualsCoreContentAndPopularity) {
  auto ds = tiny_dataset();
  auto train = interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events,
                                         merge_policy::last);
  content_config cfg;
  auto index = std::make_shared<const content_index>(
      build_content_index(ds.item_meta, train.n_items(), cfg));
  auto core_model = make_content_model(index, train, cfg);
  auto core_pop = popularity_scores(train, popularity_config{});
  for (std::uint32_t P : {1u, 3u, 7u}) {
    SCOPED_TRACE("P = " + std::to_string(P));
    auto stores = make_stores(ds, P);
    auto cr = run_content_shuffled(stores, cfg);
    ASSERT_EQ(cr.voc.features.size(), index->n_features());
    ASSERT_EQ(cr.voc.n_documents, index->n_documents());
    for (std::size_t f = 0; f < cr.voc.features.size(); ++f) {
      EXPECT_EQ(cr.voc.features[f], index->feature_name(static_cast<std::uint32_t>(f)));
      EXPECT_EQ(cr.voc.df[f], index->document_frequency(static_cast<std::uint32_t>(f)));
      EXPECT_EQ(cr.voc.idf[f], index->idf(static_cast<std::uint32_t>(f)));
    }
    std::vector<partition_scorer> scorers;
    for (std::uint32_t p = 0; p < P; ++p) {
      const auto& s = stores[p];
      auto pop = partition_popularity(s);
      partition_item_models m;
      for (index_t r = 0; r < s.items().size(); ++r) {
        const auto& id = s.items().external(r);
        auto i = *ds.items.find(id);
        m.items.push_back(id);
        EXPECT_EQ(pop[r], core_pop[i]) << id;
        auto v = index->vector(i);
        const auto& d = cr.item_vectors[p][r];
        ASSERT_EQ(d.feature.size(), v.size) << id;
        for (std::size_t k = 0; k < v.size; ++k) {
          EXPECT_EQ(d.feature[k], v.data[k].feature);
          EXPECT_EQ(d.weight[k], v.data[k].weight);
        }
      }
      m.popularity = pop;
      m.content = cr.item_vectors[p];
      auto sc =
          partition_scorer::make(std::move(m), {{"content", blend_kind::content, 1.0f}});
      ASSERT_TRUE(sc.ok()) << sc.err().message;
      scorers.push_back(std::move(*sc));
    }
    // Content raw scores of every user (and a cold one) equal the core's.
    std::vector<std::string> users;
    for (index_t u = 0; u < ds.users.size(); ++u)
      users.push_back(ds.users.external(u));
    users.push_back("nobody");
    Eigen::VectorXf core(static_cast<Eigen::Index>(ds.items.size()));
    for (const auto& user : users) {
      auto owner = partition_of(user, P);
      partition_user_models um;
      um.content = cr.users[owner];
      auto prof = make_user_profile(stores[owner], um, user);
      ASSERT_TRUE(prof.ok()) << prof.err().message;
      auto uidx = ds.users.find(user);
      core_model->score_items(uidx ? *uidx : static_cast<index_t>(ds.users.size()), core);
      for (std::uint32_t p = 0; p < P; ++p) {
        auto s = scorers[p].score(*prof);
        ASSERT_TRUE(s.ok());
        for (std::size_t r = 0; r < s->n_items; ++r) {
          auto i = *ds.items.find(scorers[p].models().items[r]);
          EXPECT_NEAR(s->raw[r], core[i], 1e-5) << user << " " << ds.items.external(i);
        }
      }
    }
  }
  // Hand check: erin's only item m6 has no features, so her profile is empty
  // (popularity fallback); dave's implicit row is not centred.
  auto stores = make_stores(ds, 1);
  auto cr = run_content_shuffled(stores, cfg);
  EXPECT_TRUE(cr.users[0].profiles[*stores[0].users().find("erin")].empty());
  EXPECT_FALSE(cr.users[0].profiles[*stores[0].users().find("dave")].empty());
  const auto& vectors = cr.users[0].ref_vectors;
  ASSERT_EQ(vectors.size(), stores[0].item_refs().size());
  EXPECT_TRUE(vectors[*stores[0].item_refs().find("m6")].empty());
  EXPECT_FALSE(vectors[*stores[0].item_refs().find("m1")].empty());
}

TEST(DistContent, MergeNeedsEveryPartitionOnce) {
  content_config cfg;
  content_df_partial a, b;
  a.partition = 0;
  a.n_documents = 2;
  a.features = {"genre:x", "genre:y"};
  a.df = {2, 1};
  b.partition = 1;
  b.n_documents = 1;
  b.features = {"genre:x"};
  b.df = {1};
  auto voc = merge_content_df({b, a}, 2, cfg);
  ASSERT_TRUE(voc.ok());
  ASSERT_EQ(voc->features, (std::vector<std::string>{"genre:x", "genre:y"}));
  EXPECT_EQ(voc->df, (std::vector<std::uint32_t>{3, 1}));
  // smooth idf: ln((1 + 3) / (1 + df)) + 1
  EXPECT_FLOAT_EQ(voc->idf[0], 1.0f);
  EXPECT_FLOAT_EQ(voc->idf[1], static_cast<float>(std::log(2.0) + 1));
  EXPECT_FALSE(merge_content_df({a}, 2, cfg).ok());
  EXPECT_FALSE(merge_content_df({a, a, b}, 2, cfg).ok());
  b.partition = 5;
  EXPECT_FALSE(merge_content_df({a, b}, 2, cfg).ok());
}

// ---- Coordinator steps by hand ---------------------------------------------

TEST(DistQuery, CombineMomentsIsTheGlobalZScore) {
  // Component 0 over all items: {1, 2, 3, 6} -> mean 3, var (4+1+0+9)/4 = 3.5.
  // Component 1 constant 7 -> all z = 0.
  phase1_reply a{0, {{2, 3.0, 5.0}, {2, 14.0, 98.0}}};
  phase1_reply b{2, {{2, 9.0, 45.0}, {2, 14.0, 98.0}}};
  auto st = combine_moments({b, a}, 2, 3);
  ASSERT_TRUE(st.ok());
  EXPECT_FLOAT_EQ(st->mean[0], 3.0f);
  EXPECT_FLOAT_EQ(st->inv_std[0], static_cast<float>(1.0 / std::sqrt(3.5)));
  EXPECT_EQ(st->inv_std[1], 0.0f);
  EXPECT_EQ(st->missing, (std::vector<std::uint32_t>{1}));
  // Same as core standardise on the whole vector.
  Eigen::VectorXf v(4);
  v << 1, 2, 3, 6;
  standardise(v);
  EXPECT_NEAR((6.0f - st->mean[0]) * st->inv_std[0], v[3], 1e-6);
  EXPECT_FALSE(combine_moments({a, a}, 2, 3).ok());
  EXPECT_FALSE(combine_moments({a}, 3, 3).ok());
  EXPECT_FALSE(combine_moments({phase1_reply{3, a.moments}}, 2, 3).ok());
}

TEST(DistQuery, MergeRanksByScoreThenIdAndReportsMissing) {
  auto cand = [](const char* id, float s) {
    candidate c;
    c.item = id;
    c.score = s;
    return c;
  };
  phase2_reply r0{0, {cand("b", 2.0f), cand("z", 1.0f)}};
  phase2_reply r2{2, {cand("a", 2.0f), cand("c", 0.5f)}};
  phase2_reply r3{3, {cand("y", 3.0f)}};
  std::vector<phase2_reply> replies{r0, r2, r3};
  std::vector<std::string> first;
  for (int rep = 0; rep < 6; ++rep) {
    std::shuffle(replies.begin(), replies.end(), rng);
    auto m = merge_candidates(replies, 4, 4);
    ASSERT_TRUE(m.ok());
    std::vector<std::string> ids;
    for (const auto& c : m->items)
      ids.push_back(c.item);
    EXPECT_EQ(ids, (std::vector<std::string>{"y", "a", "b", "z"}));
    EXPECT_TRUE(m->partial());
    EXPECT_EQ(m->missing, (std::vector<std::uint32_t>{1}));
  }
  auto all = merge_candidates({r0}, 1, 10);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->partial());
  EXPECT_EQ(all->items.size(), 2u);
  EXPECT_FALSE(merge_candidates({r0, r0}, 4, 4).ok());
  EXPECT_FALSE(merge_candidates({r3}, 3, 4).ok());
}

TEST(DistQuery, ScorerRejectsMissingOrMisshapenData) {
  partition_item_models m;
  m.items = {"a", "b"};
  m.popularity = {1, 2};
  m.ials_factors = 2;
  m.ials_item = {1, 2, 3}; // needs 4
  EXPECT_FALSE(
      partition_scorer::make(m, {{"implicit-als", blend_kind::implicit_als, 1}}).ok());
  m.ials_item = {1, 2, 3, 4};
  EXPECT_FALSE(partition_scorer::make(m, {{"mf", blend_kind::mf, 1}}).ok());
  auto s = partition_scorer::make(m, {{"implicit-als", blend_kind::implicit_als, 1}});
  ASSERT_TRUE(s.ok());
  user_profile p;
  p.ials = {1, 2, 3};
  EXPECT_FALSE(s->score(p).ok());
  p.ials = {1, -1};
  auto sc = s->score(p);
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(sc->raw, (std::vector<float>{-1, -1}));
  p.ials = {0, 0}; // cold: popularity
  EXPECT_EQ(s->score(p)->raw, (std::vector<float>{1, 2}));
}

// ---- ML-100K: the whole hybrid ----------------------------------------------

class DistHybridMl100k : public ::testing::Test {
protected:
  // Without the data every test skips in SetUp and the suite builds nothing.
  static void SetUpTestSuite() {
    if (!test_data::missing({"ml-100k/u1.base", "ml-100k/u.item"}).empty())
      return;
    ds_ = new dataset;
    auto ev =
        load_events(test_data::path("ml-100k/u1.base"), data_format::movielens, *ds_);
    ASSERT_TRUE(ev.ok()) << ev.err().message;
    auto it = load_item_attributes(test_data::path("ml-100k/u.item"), *ds_);
    ASSERT_TRUE(it.ok()) << it.err().message;
    train_ = new interaction_matrix(interaction_matrix::build(
        ds_->users.size(), ds_->items.size(), ds_->events, merge_policy::last));
    algo_options opt;
    opt.algo = "hybrid";
    opt.threads = 2;
    // Explicit weights (not the defaults, which may change): every component
    // kind the distributed scorer supports except mf, which BlendWithMf adds.
    opt.weights = "implicit-als=0.7,itemknn=0.15,content=0.1,popular=0.05";
    opt.rating_weights = "mf=1";
    auto m = train_algorithm(opt, *ds_, *train_);
    ASSERT_TRUE(m.ok()) << m.err().message;
    hybrid_ = new std::shared_ptr<const hybrid_model>(
        std::dynamic_pointer_cast<const hybrid_model>(*m));
    ASSERT_TRUE(*hybrid_);
    knn_config kc;
    kc.similarity = similarity_kind::cosine;
    neighbors_ = new neighbor_lists(item_neighbors(train_->binarized(), kc));
  }
  void SetUp() override {
    SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u.item");
  }
  static void TearDownTestSuite() {
    delete ds_;
    delete train_;
    delete hybrid_;
    delete neighbors_;
  }

  static const core::model* part(const hybrid_model& h, const std::string& name) {
    for (const auto& p : h.parts())
      if (p.name == name)
        return p.model.get();
    return nullptr;
  }

  using cluster = dist::sliced_cluster;

  // Distributed content + popularity; iALS, MF and kNN sliced from the core.
  static cluster make_cluster(std::uint32_t P, const blend_spec& spec) {
    return dist::slice_hybrid(*ds_, **hybrid_, *neighbors_, P, spec, merge_policy::last,
                              &rng);
  }

  // Compares the distributed top n with hybrid_model::recommend for `user`
  // (index beyond the data = cold). Returns rank positions whose items differ
  // (allowed only between items with equal core scores).
  static int compare_user(const hybrid_model& h, const cluster& c,
                          const std::string& user, std::size_t n) {
    const auto P = static_cast<std::uint32_t>(c.stores.size());
    auto owner = partition_of(user, P);
    auto prof = make_user_profile(c.stores[owner], c.users[owner], user);
    EXPECT_TRUE(prof.ok());
    auto dist = run_query(c.scorers, *prof, n);
    auto found = ds_->users.find(user);
    const index_t u = found ? *found : static_cast<index_t>(ds_->users.size());
    const index_t* ex = nullptr;
    std::size_t n_ex = 0;
    if (found) {
      auto row = train_->user_row(u);
      ex = row.index;
      n_ex = row.size;
    }
    auto core = h.recommend(u, n, ex, n_ex, 3);
    Eigen::VectorXf total(static_cast<Eigen::Index>(ds_->items.size()));
    h.score_items(u, total);
    EXPECT_EQ(dist.items.size(), core.size()) << user;
    int differ = 0;
    for (std::size_t r = 0; r < std::min(core.size(), dist.items.size()); ++r) {
      const auto& d = dist.items[r];
      const auto& k = core[r];
      EXPECT_NEAR(d.score, k.score, 1e-4) << user << " rank " << r;
      auto di = *ds_->items.find(d.item);
      EXPECT_FALSE(found && train_->find(u, di)) << "seen item recommended";
      EXPECT_NEAR(d.score, total[di], 1e-4) << user << " " << d.item;
      if (ds_->items.external(k.item) != d.item) {
        ++differ;
        EXPECT_NEAR(total[di], total[k.item], 1e-5)
            << user << " rank " << r << ": " << d.item << " vs "
            << ds_->items.external(k.item) << " are not tied";
        continue;
      }
      EXPECT_EQ(d.components.size(), k.components.size());
      for (std::size_t ci = 0; ci < std::min(d.components.size(), k.components.size());
           ++ci) {
        const auto& a = d.components[ci];
        const auto& b = k.components[ci];
        EXPECT_EQ(a.name, b.name);
        EXPECT_NEAR(a.raw, b.raw, 1e-5 * std::max(1.0f, std::abs(b.raw))) << a.name;
        EXPECT_NEAR(a.normalised, b.normalised, 1e-4) << a.name;
        EXPECT_NEAR(a.contribution, b.contribution, 1e-4) << a.name;
      }
      EXPECT_EQ(d.because_from, k.because_from) << user << " " << d.item;
      ++because_from_[d.because_from];
      EXPECT_EQ(d.because.size(), k.because.size()) << user << " " << d.item;
      if (d.because_from != k.because_from)
        continue;
      const auto* pm = part(h, k.because_from);
      auto full = pm ? pm->explain(u, k.item, 100000) : std::vector<contribution>{};
      for (std::size_t e = 0; e < std::min(d.because.size(), k.because.size()); ++e) {
        EXPECT_NEAR(d.because[e].weight, k.because[e].weight, 1e-6);
        // Equal weights may list other items than the core (ties by id):
        // each must be real evidence with that weight.
        auto j = *ds_->items.find(d.because[e].item);
        auto it = std::find_if(full.begin(), full.end(),
                               [&](const contribution& x) { return x.item == j; });
        EXPECT_NE(it, full.end()) << d.because[e].item;
        if (it != full.end()) {
          EXPECT_NEAR(it->weight, d.because[e].weight, 1e-6);
        }
      }
    }
    return differ;
  }

  static dataset* ds_;
  static interaction_matrix* train_;
  static std::shared_ptr<const hybrid_model>* hybrid_;
  static neighbor_lists* neighbors_;
  // How often each component supplied the explanation of a compared item.
  static inline std::map<std::string, std::size_t> because_from_;
};

dataset* DistHybridMl100k::ds_ = nullptr;
interaction_matrix* DistHybridMl100k::train_ = nullptr;
std::shared_ptr<const hybrid_model>* DistHybridMl100k::hybrid_ = nullptr;
neighbor_lists* DistHybridMl100k::neighbors_ = nullptr;

TEST_F(DistHybridMl100k, ContentAndPopularityEqualTheCore) {
  const auto& h = **hybrid_;
  content_config cfg;
  auto index = build_content_index(ds_->item_meta, train_->n_items(), cfg);
  auto pop = popularity_scores(*train_, popularity_config{});
  const auto* content = part(h, "content");
  ASSERT_NE(content, nullptr);
  auto c = make_cluster(7, {{"content", blend_kind::content, 1.0f}});
  auto cr = run_content_shuffled(c.stores, cfg);
  ASSERT_EQ(cr.voc.features.size(), index.n_features());
  std::size_t checked = 0;
  for (std::uint32_t p = 0; p < 7; ++p) {
    const auto& s = c.stores[p];
    auto pp = partition_popularity(s);
    for (index_t r = 0; r < s.items().size(); ++r) {
      auto i = *ds_->items.find(s.items().external(r));
      EXPECT_EQ(pp[r], pop[i]);
      auto v = index.vector(i);
      const auto& d = cr.item_vectors[p][r];
      ASSERT_EQ(d.feature.size(), v.size);
      for (std::size_t k = 0; k < v.size; ++k) {
        ASSERT_EQ(d.feature[k], v.data[k].feature);
        ASSERT_EQ(d.weight[k], v.data[k].weight);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, ds_->items.size());
  // Content scores (via the profiles) of every user.
  Eigen::VectorXf core(static_cast<Eigen::Index>(ds_->items.size()));
  double worst = 0;
  for (index_t u = 0; u < ds_->users.size(); ++u) {
    const auto& user = ds_->users.external(u);
    auto owner = partition_of(user, 7);
    auto prof = make_user_profile(c.stores[owner], c.users[owner], user);
    ASSERT_TRUE(prof.ok());
    content->score_items(u, core);
    for (std::uint32_t p = 0; p < 7; ++p) {
      auto s = c.scorers[p].score(*prof);
      ASSERT_TRUE(s.ok());
      for (std::size_t r = 0; r < s->n_items; ++r) {
        auto i = *ds_->items.find(c.scorers[p].models().items[r]);
        worst = std::max(worst, static_cast<double>(std::abs(s->raw[r] - core[i])));
      }
    }
  }
  EXPECT_LE(worst, 1e-5);
  std::printf(
      "content profile scores, 943 users x 1682 items: max |dist - core| = %.3g\n",
      worst);
}

TEST_F(DistHybridMl100k, TopTenEqualsCoreHybridAtThreeAndSevenPartitions) {
  const auto& h = **hybrid_;
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  ASSERT_EQ(spec->size(), 4u); // content, implicit-als, itemknn, popular
  for (std::uint32_t P : {3u, 7u}) {
    SCOPED_TRACE("P = " + std::to_string(P));
    auto c = make_cluster(P, *spec);
    int differ = 0, users = 0;
    because_from_.clear();
    for (index_t u = P == 3 ? 0 : 1; u < ds_->users.size(); u += 2, ++users) {
      differ += compare_user(h, c, ds_->users.external(u), 10);
      if (::testing::Test::HasFailure())
        return;
    }
    const auto knn_expl = because_from_["itemknn"];
    EXPECT_GT(knn_expl, 0u);
    because_from_.clear();
    std::printf("P=%u: %d users, %d rank positions differ by tied items; "
                "explanations from itemknn: %zu\n",
                P, users, differ, knn_expl);
  }
}

TEST_F(DistHybridMl100k, BlendWithMfAndColdUsers) {
  // The same parts with MF in the ranking blend, and content weighing enough
  // to supply many explanations.
  const std::map<std::string, float> weights{{"content", 0.35f},
                                             {"implicit-als", 0.3f},
                                             {"itemknn", 0.1f},
                                             {"mf", 0.2f},
                                             {"popular", 0.05f}};
  auto parts = (*hybrid_)->parts();
  for (auto& p : parts)
    p.weight = weights.at(p.name);
  hybrid_model h(parts);
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok());
  ASSERT_EQ(spec->size(), 5u);
  auto c = make_cluster(7, *spec);
  int differ = 0;
  because_from_.clear();
  for (index_t u = 0; u < ds_->users.size(); u += 5) {
    differ += compare_user(h, c, ds_->users.external(u), 10);
    if (::testing::Test::HasFailure())
      return;
  }
  // Cold users: every component falls back to its prior (popularity, mu + b_i);
  // popularity ties are frequent, ranks may differ only between tied items.
  for (const char* cold : {"new-user-1", "new-user-2", "new-user-3"})
    differ += compare_user(h, c, cold, 20);
  EXPECT_GT(because_from_["content"], 0u);
  EXPECT_GT(because_from_["itemknn"], 0u);
  std::printf("mf blend + cold users: %d rank positions differ by tied items; "
              "explanations from content %zu, itemknn %zu\n",
              differ, because_from_["content"], because_from_["itemknn"]);
}

TEST_F(DistHybridMl100k, BlendWithEaseEqualsTheCore) {
  // EASE as a hybrid part: x_u B over the user's items, its weights sliced
  // by external id; explanations are the user's items with the largest
  // weights, as core ease_model::explain. Heavy enough to explain often.
  algo_options opt;
  opt.algo = "ease";
  auto ease = train_ranking_part(opt, *ds_, *train_);
  ASSERT_TRUE(ease.ok()) << ease.err().message;
  auto parts = (*hybrid_)->parts();
  const std::map<std::string, float> weights{{"content", 0.05f},
                                             {"implicit-als", 0.25f},
                                             {"itemknn", 0.1f},
                                             {"mf", 0.0f},
                                             {"popular", 0.0f}};
  for (auto& p : parts)
    p.weight = weights.at(p.name);
  parts.push_back({"ease", *ease, 0.6f, 0.0f});
  hybrid_model h(parts);
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  ASSERT_EQ(spec->size(), 4u);
  for (std::uint32_t P : {1u, 7u}) {
    auto c = dist::slice_hybrid(*ds_, h, *neighbors_, P, *spec, merge_policy::last, &rng);
    int differ = 0;
    because_from_.clear();
    for (index_t u = 0; u < ds_->users.size(); u += 9) {
      differ += compare_user(h, c, ds_->users.external(u), 10);
      if (::testing::Test::HasFailure())
        return;
    }
    differ += compare_user(h, c, "new-user-1", 10);
    EXPECT_GT(because_from_["ease"], 0u);
    std::printf("ease blend, P = %u: %d rank positions differ by tied items; "
                "explanations from ease %zu, itemknn %zu\n",
                P, differ, because_from_["ease"], because_from_["itemknn"]);
  }
}

// The node-level engine (node_query.hpp): P = 7 partitions spread round-robin
// over 3 nodes, every query batched per node. The moments of a local round
// give the statistics of the per-partition steps; a direct round under them
// gives the same items, scores and explanations as the per-partition steps
// (run_query), bit for bit.
TEST_F(DistHybridMl100k, NodeBatchesEqualThePerPartitionSteps) {
  const auto& h = **hybrid_;
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok());
  const std::uint32_t P = 7, nodes = 3;
  auto c = make_cluster(P, *spec);
  std::vector<node_query_engine> engines(nodes);
  std::vector<node_query_batch> proto(nodes);
  for (std::uint32_t p = 0; p < P; ++p) {
    engines[p % nodes].set_scorer(p,
                                  std::make_shared<const partition_scorer>(c.scorers[p]));
    proto[p % nodes].partitions.push_back(p);
  }
  // Batches of 16 users (plus a cold one): a local round for all, then a
  // direct round for all.
  std::vector<std::string> users;
  for (index_t u = 0; u < ds_->users.size(); u += 3)
    users.push_back(ds_->users.external(u));
  users.push_back("never-seen-user");
  std::size_t compared = 0;
  std::uint64_t next_id = 1;
  for (std::size_t b0 = 0; b0 < users.size(); b0 += 16) {
    const auto b1 = std::min(users.size(), b0 + 16);
    std::vector<user_profile> full, lean;
    std::vector<std::uint64_t> ids;
    auto batches = proto;
    for (auto i = b0; i < b1; ++i) {
      auto owner = partition_of(users[i], P);
      auto prof = make_user_profile(c.stores[owner], c.users[owner], users[i]);
      ASSERT_TRUE(prof.ok());
      full.push_back(*prof);
      prof->seen_content.clear();
      lean.push_back(*prof);
      ids.push_back(next_id++);
      for (auto& b : batches)
        b.queries.push_back(
            {ids.back(), node_query_kind::local, local_n(10), lean.back(), {}});
    }
    std::vector<std::vector<phase1_reply>> r1(ids.size());
    for (std::uint32_t k = 0; k < nodes; ++k) {
      auto rep = engines[k].answer(batches[k], 3);
      ASSERT_EQ(rep.answers.size(), ids.size());
      for (std::size_t q = 0; q < ids.size(); ++q) {
        const auto& a = rep.answers[q];
        ASSERT_EQ(a.id, ids[q]);
        ASSERT_TRUE(a.error.empty()) << a.error;
        EXPECT_EQ(a.partitions, batches[k].partitions);
        r1[q].insert(r1[q].end(), a.moments.begin(), a.moments.end());
      }
    }
    std::vector<blend_stats> stats;
    for (std::size_t q = 0; q < ids.size(); ++q) {
      auto st = combine_moments(r1[q], spec->size(), P);
      ASSERT_TRUE(st.ok());
      ASSERT_TRUE(st->missing.empty());
      stats.push_back(*st);
    }
    auto direct = proto;
    for (std::size_t q = 0; q < ids.size(); ++q)
      for (std::uint32_t k = 0; k < nodes; ++k)
        direct[k].queries.push_back(
            {ids[q] + 1000000, node_query_kind::direct, 10, lean[q], stats[q]});
    std::vector<std::vector<phase2_reply>> r2(ids.size());
    for (std::uint32_t k = 0; k < nodes; ++k) {
      auto rep = engines[k].answer(direct[k], 3);
      for (std::size_t q = 0; q < ids.size(); ++q) {
        ASSERT_TRUE(rep.answers[q].error.empty()) << rep.answers[q].error;
        append_phase2(rep.answers[q], r2[q]);
      }
    }
    for (std::size_t q = 0; q < ids.size(); ++q) {
      auto got = merge_candidates(r2[q], P, 10);
      ASSERT_TRUE(got.ok());
      EXPECT_TRUE(got->missing.empty());
      explain_candidates(got->items, full[q], 3);
      blend_stats want_stats;
      auto want = run_query(c.scorers, full[q], 10, &want_stats);
      EXPECT_EQ(stats[q].mean, want_stats.mean) << users[b0 + q];
      EXPECT_EQ(stats[q].inv_std, want_stats.inv_std) << users[b0 + q];
      ASSERT_EQ(got->items.size(), want.items.size()) << users[b0 + q];
      for (std::size_t r = 0; r < want.items.size(); ++r) {
        EXPECT_EQ(got->items[r].item, want.items[r].item) << users[b0 + q];
        EXPECT_EQ(got->items[r].score, want.items[r].score);
        EXPECT_EQ(got->items[r].because_from, want.items[r].because_from);
        ASSERT_EQ(got->items[r].because.size(), want.items[r].because.size());
        for (std::size_t e = 0; e < want.items[r].because.size(); ++e)
          EXPECT_EQ(got->items[r].because[e].item, want.items[r].because[e].item);
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, users.size());
}

// The one-round path for new users (kind local): each node selects under its
// own statistics; the coordinator rescores, certifies, and asks the nodes it
// cannot certify again with direct. Same items, scores and explanations as
// the per-partition steps, bit for bit, at several n and node counts; most
// answers are certified (else the round would not save anything). A bound
// made useless forces the fallback, which must give the same answers.
TEST_F(DistHybridMl100k, LocalRoundWithCertificationEqualsThePerPartitionSteps) {
  const auto& h = **hybrid_;
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok());
  const std::uint32_t P = 7;
  auto c = make_cluster(P, *spec);
  std::vector<std::string> users;
  for (index_t u = 0; u < ds_->users.size(); u += 5)
    users.push_back(ds_->users.external(u));
  users.push_back("never-seen-user");
  std::uint64_t next_id = 1;
  for (std::uint32_t nodes : {2u, 3u})
    for (std::uint32_t n : {1u, 10u, 50u})
      for (bool spoil : {false, true}) {
        std::vector<node_query_engine> engines(nodes);
        std::vector<node_query_batch> proto(nodes);
        for (std::uint32_t p = 0; p < P; ++p) {
          engines[p % nodes].set_scorer(
              p, std::make_shared<const partition_scorer>(c.scorers[p]));
          proto[p % nodes].partitions.push_back(p);
        }
        std::size_t answers = 0, certified = 0;
        for (const auto& user : users) {
          auto owner = partition_of(user, P);
          auto full = make_user_profile(c.stores[owner], c.users[owner], user);
          ASSERT_TRUE(full.ok());
          auto lean = *full;
          lean.seen_content.clear();
          const auto id = next_id++;
          std::vector<node_answer> local;
          std::vector<phase1_reply> moments;
          for (std::uint32_t k = 0; k < nodes; ++k) {
            auto b = proto[k];
            b.queries.push_back({id, node_query_kind::local, local_n(n), lean, {}});
            auto rep = engines[k].answer(b, 3);
            ASSERT_EQ(rep.answers.size(), 1u);
            auto& a = rep.answers[0];
            ASSERT_TRUE(a.error.empty()) << a.error;
            EXPECT_EQ(a.partitions, proto[k].partitions);
            EXPECT_LE(a.candidates.size(), local_n(n));
            moments.insert(moments.end(), a.moments.begin(), a.moments.end());
            if (spoil && !a.bound.complete)
              a.bound.threshold = 1e9f; // nothing can be certified
            local.push_back(std::move(a));
          }
          auto global = combine_moments(moments, spec->size(), P);
          ASSERT_TRUE(global.ok());
          ASSERT_TRUE(global->missing.empty());
          auto ok = certify_local_answers(local, *global, n);
          ASSERT_EQ(ok.size(), nodes);
          std::vector<phase2_reply> replies;
          for (std::uint32_t k = 0; k < nodes; ++k) {
            ++answers;
            if (ok[k]) {
              ++certified;
              append_phase2(local[k], replies);
              continue;
            }
            auto b = proto[k];
            b.queries.push_back({id, node_query_kind::direct, n, lean, *global});
            auto rep = engines[k].answer(b, 3);
            ASSERT_TRUE(rep.answers[0].error.empty());
            append_phase2(rep.answers[0], replies);
          }
          auto got = merge_candidates(replies, P, n);
          ASSERT_TRUE(got.ok());
          explain_candidates(got->items, *full, 3);
          auto want = run_query(c.scorers, *full, n);
          const std::string what =
              user + " n=" + std::to_string(n) + " nodes=" + std::to_string(nodes);
          ASSERT_EQ(got->items.size(), want.items.size()) << what;
          for (std::size_t r = 0; r < want.items.size(); ++r) {
            EXPECT_EQ(got->items[r].item, want.items[r].item) << what << " rank " << r;
            EXPECT_EQ(got->items[r].score, want.items[r].score) << what;
            for (std::size_t k = 0; k < want.items[r].components.size(); ++k)
              EXPECT_EQ(got->items[r].components[k].contribution,
                        want.items[r].components[k].contribution);
            EXPECT_EQ(got->items[r].because_from, want.items[r].because_from);
            ASSERT_EQ(got->items[r].because.size(), want.items[r].because.size());
          }
        }
        std::printf("[local round, %u nodes, n=%u%s] %zu of %zu node answers certified\n",
                    nodes, n, spoil ? ", spoiled bounds" : "", certified, answers);
        if (spoil)
          EXPECT_LT(certified, answers / 2);
        else
          EXPECT_GT(certified, answers * 3 / 4);
      }
}

TEST_F(DistHybridMl100k, NodeEngineReportsBadQueriesAndUnhostedPartitions) {
  const auto& h = **hybrid_;
  auto spec = blend_from_hybrid(h);
  ASSERT_TRUE(spec.ok());
  const std::uint32_t P = 3;
  auto c = make_cluster(P, *spec);
  node_query_engine e;
  e.set_scorer(0, std::make_shared<const partition_scorer>(c.scorers[0]));
  e.set_scorer(2, std::make_shared<const partition_scorer>(c.scorers[2]));
  const auto& user = ds_->users.external(5);
  auto owner = partition_of(user, P);
  auto prof = make_user_profile(c.stores[owner], c.users[owner], user, false);
  ASSERT_TRUE(prof.ok());
  node_query_batch b;
  b.partitions = {0, 1, 2}; // 1 is not hosted here
  for (std::uint64_t id = 1; id <= 3; ++id)
    b.queries.push_back({id, node_query_kind::local, 10, *prof, {}});
  auto r = e.answer(b, 3);
  ASSERT_EQ(r.answers.size(), 3u);
  EXPECT_EQ(r.answers[0].partitions, (std::vector<std::uint32_t>{0, 2}));
  ASSERT_EQ(r.answers[0].moments.size(), 2u);
  EXPECT_EQ(r.answers[0].moments[1].partition, 2u);
  EXPECT_EQ(r.answers[0].candidates.size(), 10u);
  auto st = combine_moments(r.answers[2].moments, spec->size(), P);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->missing, (std::vector<std::uint32_t>{1}));
  // Statistics of the wrong size fail that query only.
  node_query_batch direct;
  direct.partitions = b.partitions;
  direct.queries.push_back({4, node_query_kind::direct, 5, *prof, *st});
  blend_stats short_stats = *st;
  short_stats.mean.pop_back();
  direct.queries.push_back({5, node_query_kind::direct, 5, *prof, short_stats});
  auto r2 = e.answer(direct, 3);
  ASSERT_EQ(r2.answers.size(), 2u);
  EXPECT_TRUE(r2.answers[0].error.empty()) << r2.answers[0].error;
  EXPECT_EQ(r2.answers[0].partitions, (std::vector<std::uint32_t>{0, 2}));
  EXPECT_EQ(r2.answers[0].candidates.size(), 5u);
  EXPECT_TRUE(r2.answers[0].moments.empty());
  EXPECT_NE(r2.answers[1].error.find("components"), std::string::npos);
  EXPECT_TRUE(r2.answers[1].partitions.empty());
  // A profile with the wrong number of factors fails that query only.
  node_query_batch bad = b;
  bad.queries.resize(2);
  bad.queries[0].profile.ials.resize(3, 1.0f);
  auto r3 = e.answer(bad, 3);
  EXPECT_NE(r3.answers[0].error.find("factors"), std::string::npos);
  EXPECT_TRUE(r3.answers[1].error.empty());
  // n out of range: an error for that query (a frame cannot make the node
  // build candidates for every item).
  node_query_batch big = direct;
  big.queries.resize(1);
  big.queries[0].n = 4000000000u;
  auto r5 = e.answer(big, 3);
  EXPECT_NE(r5.answers[0].error.find("n must be"), std::string::npos);
  big.queries[0].n = 1000;
  EXPECT_TRUE(e.answer(big, 3).answers[0].error.empty());
  big.queries[0].kind = node_query_kind::local;
  big.queries[0].n = 0;
  EXPECT_NE(e.answer(big, 3).answers[0].error.find("n must be"), std::string::npos);
  // Removing a scorer: the next batch no longer covers its partition.
  e.set_scorer(2, nullptr);
  EXPECT_FALSE(e.has_scorer(2));
  auto r4 = e.answer(b, 3);
  EXPECT_EQ(r4.answers[0].partitions, (std::vector<std::uint32_t>{0}));
}

// Users who arrive after training are cold for the model parts that have no
// row for them; the users the models were trained on keep their profiles
// (the store's user indices never change, so the models cover a prefix).
TEST(DistProfile, UsersNewerThanTheModelsAreColdAndTheOthersUnchanged) {
  partition_store s(0, 1);
  auto add = [&](const std::string& u, const std::string& i) {
    raw_event e;
    e.user = u;
    e.item = i;
    e.value = 4.0f;
    ASSERT_TRUE(s.add(e).ok());
  };
  add("ann", "a");
  add("ann", "b");
  add("bob", "b");
  s.build(merge_policy::last);
  partition_user_models m; // trained on ann and bob
  m.ials_factors = 2;
  m.ials_user = {1, 2, 3, 4};
  m.mf_factors = 1;
  m.mf_user = {0.5f, 0.25f};
  m.mf_user_bias = {0.1f, 0.2f};
  m.content.profiles.resize(2);
  m.content.profiles[1].feature = {7};
  m.content.profiles[1].weight = {1.0f};
  auto before = make_user_profile(s, m, "bob");
  ASSERT_TRUE(before.ok()) << before.err().message;

  add("cat", "c"); // a new user and a new item, after training
  add("bob", "c");
  add("bob", "b"); // already in bob's row: not listed twice
  auto bob = make_user_profile(s, m, "bob");
  ASSERT_TRUE(bob.ok()) << bob.err().message;
  EXPECT_EQ(bob->ials, (std::vector<float>{3, 4}));
  EXPECT_EQ(bob->ials, before->ials);
  EXPECT_TRUE(bob->mf_known);
  EXPECT_EQ(bob->mf, (std::vector<float>{0.25f}));
  EXPECT_EQ(bob->mf_bias, 0.2f);
  EXPECT_EQ(bob->content.feature, (std::vector<std::uint32_t>{7}));
  // Seen: the row of the last build, then the items touched since.
  auto bob_seen = before->seen;
  bob_seen.push_back("c");
  EXPECT_EQ(bob->seen, bob_seen);
  EXPECT_EQ(bob->seen_value.size(), bob_seen.size());

  auto cat = make_user_profile(s, m, "cat");
  ASSERT_TRUE(cat.ok()) << cat.err().message;
  EXPECT_EQ(cat->seen, (std::vector<std::string>{"c"}));
  EXPECT_TRUE(cat->ials.empty());
  EXPECT_FALSE(cat->mf_known);
  EXPECT_TRUE(cat->content.feature.empty());

  // A model with more rows than the store has users is refused.
  partition_user_models too_big = m;
  too_big.ials_user.resize(2 * 4);
  EXPECT_EQ(make_user_profile(s, too_big, "bob").err().code, errc::invalid_argument);
  partition_user_models ragged = m;
  ragged.ials_user.push_back(5);
  EXPECT_EQ(make_user_profile(s, ragged, "bob").err().code, errc::invalid_argument);
}

} // namespace
} // namespace shardrec::dist
