#include "core/content.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "tests/data_dir.hpp"

namespace shardrec::core {
namespace {

item_info info(std::vector<std::string> genres, std::vector<std::string> tags,
               std::string title, std::string text = {}) {
  item_info x;
  x.genres = std::move(genres);
  x.tags = std::move(tags);
  x.title = std::move(title);
  x.text = std::move(text);
  return x;
}

event rating(index_t u, index_t i, float v) {
  event e;
  e.user = u;
  e.item = i;
  e.value = v;
  e.type = event_type::rating;
  return e;
}

std::vector<float> scores_of(const model& m, index_t user) {
  Eigen::VectorXf out(static_cast<Eigen::Index>(m.n_items()));
  m.score_items(user, out);
  return {out.data(), out.data() + out.size()};
}

TEST(Tokenize, LowerCaseWordsWithoutStopWordsDigitsOrPunctuation) {
  EXPECT_EQ(tokenize_words("Toy Story (1995)"),
            (std::vector<std::string>{"toy", "story"}));
  EXPECT_EQ(tokenize_words("Don't stop-the 2 LANTERNS!a b"),
            (std::vector<std::string>{"dont", "stop", "lanterns"}));
  EXPECT_EQ(tokenize_words("Usual Suspects, The"),
            (std::vector<std::string>{"usual", "suspects"}));
  EXPECT_TRUE(tokenize_words("  1234 ... of the a  ").empty());
}

// Three items with features plus one without:
//   0: genre comedy, tag funny, title "Lantern"
//   1: genres comedy + drama (drama twice: counts once)
//   2: genre drama, text "lantern, Lantern night"
//   3: nothing
// N = 3; df: comedy 2, drama 2, funny 1, lantern 2, night 1.
std::vector<item_info> tiny_items() {
  return {info({"Comedy"}, {"funny "}, "Lantern"),
          info({"comedy", "Drama", "drama"}, {}, ""),
          info({"Drama"}, {}, "", "lantern, Lantern night"), info({}, {}, "")};
}

TEST(ContentIndex, HandComputedTfIdfAndCosine) {
  content_config cfg;
  cfg.smooth_idf = false;
  auto idx = build_content_index(tiny_items(), 4, cfg);
  ASSERT_EQ(idx.n_items(), 4u);
  EXPECT_EQ(idx.n_documents(), 3u);
  ASSERT_EQ(idx.n_features(), 5u);
  const char* names[] = {"genre:comedy", "genre:drama", "tag:funny", "word:lantern",
                         "word:night"};
  for (content_index::feature_t f = 0; f < 5; ++f) {
    EXPECT_EQ(idx.feature_name(f), names[f]);
    EXPECT_EQ(idx.find_feature(names[f]), f);
  }
  EXPECT_FALSE(idx.find_feature("word:the").has_value());
  EXPECT_EQ(idx.document_frequency(1), 2u);
  EXPECT_EQ(idx.document_frequency(4), 1u);

  const double a = std::log(3.0 / 2.0), b = std::log(3.0); // idf for df 2 and 1
  EXPECT_NEAR(idx.idf(0), a, 1e-6);
  EXPECT_NEAR(idx.idf(2), b, 1e-6);
  // item 0 = (a, 0, b, a, 0) / sqrt(2a^2 + b^2) -> weights 0.3272, 0.8865, 0.3272
  const double n0 = std::sqrt(2 * a * a + b * b);
  EXPECT_NEAR(idx.weight(0, 0), a / n0, 1e-6);
  EXPECT_NEAR(idx.weight(0, 2), b / n0, 1e-6);
  EXPECT_NEAR(idx.weight(0, 3), 0.3272, 1e-4);
  EXPECT_NEAR(idx.weight(0, 2), 0.8865, 1e-4);
  EXPECT_EQ(idx.weight(0, 1), 0.0f);
  // item 1 = (a, a) / (sqrt 2 a)
  EXPECT_NEAR(idx.weight(1, 0), 1 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(idx.weight(1, 1), 1 / std::sqrt(2.0), 1e-6);
  // item 2 = (0, a, 0, 2a, b) / sqrt(5a^2 + b^2): lantern counted twice
  const double n2 = std::sqrt(5 * a * a + b * b);
  EXPECT_NEAR(idx.weight(2, 3), 2 * a / n2, 1e-6);
  EXPECT_NEAR(idx.weight(2, 4), b / n2, 1e-6);
  EXPECT_EQ(idx.vector(3).size, 0u);

  // Vectors are unit length and sorted by feature.
  for (index_t i = 0; i < 3; ++i) {
    double s = 0;
    content_index::feature_t prev = 0;
    bool first = true;
    for (const auto& e : idx.vector(i)) {
      EXPECT_TRUE(first || e.feature > prev);
      prev = e.feature;
      first = false;
      s += double{e.weight} * e.weight;
    }
    EXPECT_NEAR(s, 1.0, 1e-6);
  }

  const double c01 = a * a / (n0 * std::sqrt(2.0) * a); // 0.2313
  const double c02 = a * 2 * a / (n0 * n2);             // via lantern
  const double c12 = a * a / (std::sqrt(2.0) * a * n2); // via drama
  EXPECT_NEAR(idx.similarity(0, 1), c01, 1e-6);
  EXPECT_NEAR(idx.similarity(0, 1), 0.2313, 1e-4);
  EXPECT_NEAR(idx.similarity(1, 0), c01, 1e-6);
  EXPECT_NEAR(idx.similarity(0, 2), c02, 1e-6);
  EXPECT_NEAR(idx.similarity(1, 2), c12, 1e-6);
  EXPECT_NEAR(idx.similarity(2, 2), 1.0, 1e-6);
  EXPECT_EQ(idx.similarity(0, 3), 0.0f);
  EXPECT_EQ(idx.similarity(0, 99), 0.0f);

  // Similar items: by cosine, without the item itself or zero-similarity items.
  auto sim = similar_items(idx, 0, 10);
  ASSERT_EQ(sim.size(), 2u);
  const index_t best = c02 > c01 ? 2 : 1;
  EXPECT_EQ(sim[0].first, best);
  EXPECT_NEAR(sim[0].second, std::max(c01, c02), 1e-6);
  EXPECT_EQ(similar_items(idx, 0, 1).size(), 1u);
  EXPECT_TRUE(similar_items(idx, 3, 5).empty());
}

TEST(ContentIndex, SmoothedIdfAndFilters) {
  auto items = tiny_items();
  content_config cfg; // smooth_idf = true
  auto idx = build_content_index(items, 4, cfg);
  EXPECT_NEAR(idx.idf(0), std::log(4.0 / 3.0) + 1, 1e-6);
  EXPECT_NEAR(idx.idf(2), std::log(4.0 / 2.0) + 1, 1e-6);

  cfg.min_df = 2; // drops funny and night
  idx = build_content_index(items, 4, cfg);
  EXPECT_EQ(idx.n_features(), 3u);
  EXPECT_FALSE(idx.find_feature("tag:funny"));

  cfg.min_df = 1;
  cfg.max_df = 0.5f; // keeps only features in at most 1.5 of 3 items
  idx = build_content_index(items, 4, cfg);
  ASSERT_EQ(idx.n_features(), 2u);
  EXPECT_EQ(idx.feature_name(0), "tag:funny");
  EXPECT_EQ(idx.vector(1).size, 0u); // item 1 has only common features left

  cfg.max_df = 1;
  cfg.title_weight = 0; // titles are not tokenised: item 0 loses "lantern"
  idx = build_content_index(items, 4, cfg);
  EXPECT_EQ(idx.document_frequency(*idx.find_feature("word:lantern")), 1u);
  EXPECT_EQ(idx.weight(0, *idx.find_feature("word:lantern")), 0.0f);

  // Fewer infos than items, and more infos than items.
  idx = build_content_index(items, 2, content_config{});
  EXPECT_EQ(idx.n_items(), 2u);
  EXPECT_EQ(idx.n_documents(), 2u);
  idx = build_content_index(items, 6, content_config{});
  EXPECT_EQ(idx.vector(5).size, 0u);
}

TEST(ContentConfig, ValidateNamesTheField) {
  content_config cfg;
  EXPECT_TRUE(validate(cfg).ok());
  cfg.tag_weight = -1;
  auto st = validate(cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
  EXPECT_NE(st.err().message.find("tag_weight"), std::string::npos);
  cfg = {};
  cfg.max_df = 0;
  EXPECT_NE(validate(cfg).err().message.find("max_df"), std::string::npos);
  cfg = {};
  cfg.min_df = -1;
  EXPECT_FALSE(validate(cfg).ok());
}

// Two themes: space (0, 1, 4) and romance (2, 3, 5); item 6 has no content.
std::vector<item_info> themed_items() {
  return {info({"Sci-Fi"}, {}, "Space Robots"),
          info({"Sci-Fi"}, {}, "Space War"),
          info({"Romance"}, {}, "Paris Romance"),
          info({"Romance"}, {}, "Wedding Romance"),
          info({"Sci-Fi", "War"}, {}, "Robots War"),
          info({"Romance", "Drama"}, {}, "Paris"),
          info({}, {}, "")};
}

TEST(ContentModel, ProfileRanksExpectedItemFirst) {
  dataset ds;
  ds.item_meta = themed_items();
  // User 0 loves item 0 and hates item 2; user 1 only hates item 3; user 2 rated
  // everything the same (centring falls back to raw values); user 3 has nothing.
  std::vector<event> evs = {rating(0, 0, 5), rating(0, 2, 1), rating(1, 3, 1),
                            rating(1, 1, 3), rating(1, 5, 5), rating(2, 3, 4)};
  auto train = interaction_matrix::build(4, 7, evs, merge_policy::last);
  auto m = train_content(train, ds, content_config{});
  EXPECT_EQ(m->name(), "content");
  ASSERT_EQ(m->n_items(), 7u);

  auto s = scores_of(*m, 0);
  // Unseen items 1, 3, 4, 5, 6: a space item first, romance items negative,
  // the item without content at exactly 0.
  std::vector<index_t> unseen = {1, 3, 4, 5, 6};
  auto best = *std::max_element(unseen.begin(), unseen.end(),
                                [&](index_t x, index_t y) { return s[x] < s[y]; });
  EXPECT_TRUE(best == 1 || best == 4);
  EXPECT_GT(s[1], 0.0f);
  EXPECT_GT(s[4], 0.0f);
  EXPECT_LT(s[3], 0.0f);
  EXPECT_LT(s[5], 0.0f);
  EXPECT_EQ(s[6], 0.0f);
  // Score = cosine with the profile (v0 - v2) / |v0 - v2| (weights +2, -2).
  auto idx = build_content_index(ds.item_meta, 7, content_config{});
  const double c = idx.similarity(0, 2);
  const double expect4 =
      (idx.similarity(0, 4) - idx.similarity(2, 4)) / std::sqrt(2 - 2 * c);
  EXPECT_NEAR(s[4], expect4, 1e-5);

  // Without centring the disliked item pulls the profile towards romance.
  content_config raw;
  raw.centre_ratings = false;
  auto m_raw = train_content(train, ds, raw);
  EXPECT_GT(scores_of(*m_raw, 0)[3], 0.0f);

  // User 2 rated one item 4: centring would zero the profile, raw is used.
  auto s2 = scores_of(*m, 2);
  EXPECT_NEAR(s2[3], 1.0f, 1e-5);
  EXPECT_GT(s2[2], s2[0]);

  // Cold users (no rows, or beyond the matrix) get item popularity.
  auto cold = scores_of(*m, 3);
  EXPECT_EQ(cold, (std::vector<float>{1, 1, 1, 2, 0, 1, 0}));
  EXPECT_EQ(scores_of(*m, 100), cold);

  // explain: user 0's items most similar to item 4 (space): item 0 only,
  // since item 2 shares nothing with it.
  auto why = m->explain(0, 4, 5);
  ASSERT_EQ(why.size(), 1u);
  EXPECT_EQ(why[0].item, 0u);
  EXPECT_NEAR(why[0].weight, idx.similarity(0, 4), 1e-6);
  // User 1's items for item 2 (romance): 3 and 5 ranked by cosine, not 1.
  why = m->explain(1, 2, 5);
  ASSERT_EQ(why.size(), 2u);
  EXPECT_GE(why[0].weight, why[1].weight);
  EXPECT_EQ(m->explain(1, 2, 1).size(), 1u);
  EXPECT_TRUE(m->explain(3, 2, 5).empty());
  EXPECT_TRUE(m->explain(0, 6, 5).empty());
}

TEST(ContentModel, ImplicitValuesAreNotCentred) {
  dataset ds;
  ds.item_meta = themed_items();
  event e;
  e.user = 0;
  e.item = 2;
  e.value = 1;
  e.type = event_type::purchase;
  auto train = interaction_matrix::build(1, 7, {e}, merge_policy::sum);
  auto s = scores_of(*train_content(train, ds, content_config{}), 0);
  EXPECT_NEAR(s[2], 1.0f, 1e-5);
  EXPECT_GT(s[3], 0.0f);
  EXPECT_GT(s[5], 0.0f);
  EXPECT_EQ(s[0], 0.0f);
}

// MovieLens 100K movies: u.item fields are '|' separated: id, title, dates,
// URL, then 19 genre flags in u.genre order.
std::vector<item_info> load_ml100k_items(bool with_titles) {
  const std::string dir = test_data::path("ml-100k/");
  std::ifstream gin(dir + "u.genre");
  EXPECT_TRUE(gin.good()) << "missing data set: " << dir << "u.genre";
  std::vector<std::string> genre_names;
  for (std::string line; std::getline(gin, line);)
    if (auto bar = line.find('|'); bar != std::string::npos)
      genre_names.push_back(line.substr(0, bar));
  EXPECT_EQ(genre_names.size(), 19u);
  std::ifstream in(dir + "u.item");
  EXPECT_TRUE(in.good()) << "missing data set: " << dir << "u.item";
  std::vector<item_info> items;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, '|');)
      f.push_back(x);
    EXPECT_EQ(f.size(), 24u) << line;
    if (f.size() != 24)
      continue;
    item_info x;
    if (with_titles)
      x.title = f[1];
    for (std::size_t g = 0; g < 19; ++g)
      if (f[5 + g] == "1")
        x.genres.push_back(genre_names[g]);
    items.push_back(std::move(x));
  }
  return items;
}

std::set<std::string> genres_of(const item_info& x) {
  return {x.genres.begin(), x.genres.end()};
}

TEST(ContentMovieLens, SimilarToToyStoryShareItsGenres) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u.genre", "ml-100k/u.item");
  auto items = load_ml100k_items(false);
  ASSERT_EQ(items.size(), 1682u);
  auto idx = build_content_index(items, items.size(), content_config{});
  EXPECT_EQ(idx.n_features(), 19u);
  const auto toy = genres_of(items[0]); // Animation, Children's, Comedy
  ASSERT_EQ(toy, (std::set<std::string>{"Animation", "Children's", "Comedy"}));
  auto sim = similar_items(idx, 0, 10);
  ASSERT_EQ(sim.size(), 10u);
  // Movie 422, Aladdin and the King of Thieves, has exactly the same genres.
  EXPECT_EQ(sim[0].first, 421u);
  EXPECT_NEAR(sim[0].second, 1.0f, 1e-5);
  for (const auto& [j, s] : sim) {
    auto g = genres_of(items[j]);
    std::size_t shared = 0;
    for (const auto& x : g)
      shared += toy.count(x);
    EXPECT_GE(shared, 2u) << "item " << j << " cos " << s;
    EXPECT_LE(s, sim[0].second);
  }
}

TEST(ContentMovieLens, TitlesAndThreadsAndRanking) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u.genre", "ml-100k/u.item", "ml-100k/u1.base",
                             "ml-100k/u1.test");
  auto items = load_ml100k_items(true);
  ASSERT_EQ(items.size(), 1682u);
  content_config cfg;
  auto idx1 = build_content_index(items, items.size(), cfg);
  cfg.threads = 2;
  auto idx2 = build_content_index(items, items.size(), cfg);
  ASSERT_EQ(idx1.n_features(), idx2.n_features());
  for (index_t i = 0; i < items.size(); ++i) {
    auto a = idx1.vector(i), b = idx2.vector(i);
    ASSERT_EQ(a.size, b.size);
    for (std::size_t k = 0; k < a.size; ++k) {
      ASSERT_EQ(a.data[k].feature, b.data[k].feature);
      ASSERT_EQ(a.data[k].weight, b.data[k].weight);
    }
  }
  EXPECT_TRUE(idx1.find_feature("word:story").has_value());
  EXPECT_FALSE(idx1.find_feature("word:the").has_value());
  EXPECT_FALSE(idx1.find_feature("word:1995").has_value());
  std::printf("ml-100k genres+titles: %zu features, %.1f KiB\n", idx1.n_features(),
              static_cast<double>(idx1.memory_bytes()) / 1024.0);

  // u1.base -> u1.test: the content model must beat random ranking clearly.
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "missing data set: " << path;
    std::vector<event> evs;
    long u, i, r, t;
    while (in >> u >> i >> r >> t)
      evs.push_back(rating(static_cast<index_t>(u - 1), static_cast<index_t>(i - 1),
                           static_cast<float>(r)));
    return evs;
  };
  auto train_ev = read(test_data::path("ml-100k/u1.base"));
  auto test_ev = read(test_data::path("ml-100k/u1.test"));
  ASSERT_EQ(train_ev.size(), 80000u);
  auto train = interaction_matrix::build(943, 1682, train_ev, merge_policy::last);
  auto test = interaction_matrix::build(943, 1682, test_ev, merge_policy::last);
  dataset ds;
  ds.item_meta = items;
  auto t0 = std::chrono::steady_clock::now();
  auto m = train_content(train, ds, content_config{});
  auto t1 = std::chrono::steady_clock::now();
  double hits = 0, random_hits = 0;
  std::size_t users = 0;
  Eigen::VectorXf s(1682);
  for (index_t u = 0; u < 943; ++u) {
    auto tr = test.user_row(u);
    if (tr.size == 0)
      continue;
    ++users;
    m->score_items(u, s);
    auto row = train.user_row(u);
    for (std::size_t k = 0; k < row.size; ++k)
      s[row.index[k]] = -std::numeric_limits<float>::infinity();
    std::vector<index_t> order(1682);
    for (index_t i = 0; i < 1682; ++i)
      order[i] = i;
    std::partial_sort(
        order.begin(), order.begin() + 10, order.end(),
        [&](index_t a, index_t b) { return s[a] != s[b] ? s[a] > s[b] : a < b; });
    for (int k = 0; k < 10; ++k)
      hits += test.find(u, order[static_cast<std::size_t>(k)]) ? 1 : 0;
    random_hits +=
        10.0 * static_cast<double>(tr.size) / static_cast<double>(1682 - row.size);
  }
  auto t2 = std::chrono::steady_clock::now();
  const double p10 = hits / (10.0 * static_cast<double>(users));
  const double p10_random = random_hits / (10.0 * static_cast<double>(users));
  std::printf("ml-100k u1 content: P@10 %.4f (random %.4f), train %.3f s, score all "
              "users %.3f s\n",
              p10, p10_random, std::chrono::duration<double>(t1 - t0).count(),
              std::chrono::duration<double>(t2 - t1).count());
  EXPECT_GT(p10, 2 * p10_random);
}

} // namespace
} // namespace shardrec::core
