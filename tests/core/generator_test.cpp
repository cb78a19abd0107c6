#include "core/generator.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "core/loaders.hpp"

namespace shardrec::core {
namespace {

bool same_event(const event& a, const event& b) {
  return a.user == b.user && a.item == b.item && a.value == b.value && a.type == b.type
         && a.device == b.device && a.location == b.location
         && a.timestamp == b.timestamp;
}

TEST(Generator, SameSeedGivesIdenticalData) {
  generator_config cfg;
  cfg.users = 300;
  cfg.items = 200;
  cfg.events = 20000;
  dataset a = generate(cfg), b = generate(cfg);
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t k = 0; k < a.events.size(); ++k)
    ASSERT_TRUE(same_event(a.events[k], b.events[k])) << "event " << k;
  ASSERT_EQ(a.item_meta.size(), b.item_meta.size());
  for (std::size_t i = 0; i < a.item_meta.size(); ++i) {
    EXPECT_EQ(a.item_meta[i].title, b.item_meta[i].title);
    EXPECT_EQ(a.item_meta[i].text, b.item_meta[i].text);
    EXPECT_EQ(a.item_meta[i].genres, b.item_meta[i].genres);
    EXPECT_EQ(a.item_meta[i].tags, b.item_meta[i].tags);
  }
  for (std::size_t u = 0; u < a.user_meta.size(); ++u)
    EXPECT_EQ(a.user_meta[u].attributes, b.user_meta[u].attributes);
}

TEST(Generator, DifferentSeedsDiffer) {
  generator_config cfg;
  cfg.users = 300;
  cfg.items = 200;
  cfg.events = 20000;
  dataset a = generate(cfg);
  cfg.seed = 43;
  dataset b = generate(cfg);
  std::size_t same = 0;
  for (std::size_t k = 0; k < a.events.size(); ++k)
    same += same_event(a.events[k], b.events[k]);
  EXPECT_LT(same, a.events.size() / 100);
  std::size_t same_titles = 0;
  for (std::size_t i = 0; i < a.item_meta.size(); ++i)
    same_titles += a.item_meta[i].title == b.item_meta[i].title;
  EXPECT_LT(same_titles, a.item_meta.size() / 2);
}

TEST(Generator, ShapeCountsIdsAndRanges) {
  struct shape {
    std::size_t users, items, events, factors;
  };
  for (auto s : {shape{1000, 500, 50000, 8}, shape{50, 3, 777, 1}, shape{1, 1, 10, 2},
                 shape{200, 100, 50, 4}, shape{10, 10, 0, 8}}) {
    SCOPED_TRACE(std::to_string(s.users) + "x" + std::to_string(s.items) + " "
                 + std::to_string(s.events));
    generator_config cfg;
    cfg.users = s.users;
    cfg.items = s.items;
    cfg.events = s.events;
    cfg.factors = s.factors;
    dataset ds = generate(cfg);
    ASSERT_EQ(ds.events.size(), s.events);
    ASSERT_EQ(ds.users.size(), s.users);
    ASSERT_EQ(ds.items.size(), s.items);
    ASSERT_EQ(ds.item_meta.size(), s.items);
    ASSERT_EQ(ds.user_meta.size(), s.users);
    EXPECT_EQ(ds.users.external(0), "u0");
    EXPECT_EQ(ds.users.external(static_cast<index_t>(s.users - 1)),
              "u" + std::to_string(s.users - 1));
    EXPECT_EQ(ds.items.external(static_cast<index_t>(s.items - 1)),
              "i" + std::to_string(s.items - 1));
    EXPECT_EQ(ds.devices.size(), 4u);   // unknown + mobile, desktop, tablet
    EXPECT_EQ(ds.locations.size(), 6u); // unknown + 5 regions
    const std::int64_t start = 1704067200, end = start + 90 * 86400;
    for (std::size_t k = 0; k < ds.events.size(); ++k) {
      const event& e = ds.events[k];
      ASSERT_LT(e.user, s.users);
      ASSERT_LT(e.item, s.items);
      ASSERT_GE(e.device, 1);
      ASSERT_LE(e.device, 3);
      ASSERT_GE(e.location, 1);
      ASSERT_LE(e.location, 5);
      ASSERT_GE(e.timestamp, start);
      ASSERT_LT(e.timestamp, end);
      ASSERT_LE(static_cast<int>(e.type), static_cast<int>(event_type::purchase));
      if (k > 0) {
        ASSERT_LE(ds.events[k - 1].timestamp, e.timestamp) << "not in time order";
      }
    }
  }
}

TEST(Generator, ExplicitRatingsAreIntegersOnTheScale) {
  generator_config cfg;
  cfg.explicit_ratings = true;
  generator_truth truth;
  dataset ds = generate(cfg, &truth);
  EXPECT_EQ(ds.scale.min, 1.0f);
  EXPECT_EQ(ds.scale.max, 5.0f);
  std::array<std::size_t, 6> hist{};
  double hi_sum = 0, lo_sum = 0;
  std::size_t hi_n = 0, lo_n = 0;
  for (const auto& e : ds.events) {
    ASSERT_EQ(e.type, event_type::rating);
    ASSERT_EQ(e.value, std::round(e.value));
    ASSERT_GE(e.value, 1.0f);
    ASSERT_LE(e.value, 5.0f);
    ++hist[static_cast<std::size_t>(e.value)];
    if (truth.affinity(e.user, e.item) > 0.6f) {
      hi_sum += e.value;
      ++hi_n;
    } else {
      lo_sum += e.value;
      ++lo_n;
    }
  }
  for (int r = 1; r <= 5; ++r)
    EXPECT_GT(hist[r], ds.events.size() / 50) << "rating " << r << " nearly absent";
  double mean = (hi_sum + lo_sum) / static_cast<double>(ds.events.size());
  EXPECT_GT(mean, 3.0);
  EXPECT_LT(mean, 4.2);
  ASSERT_GT(hi_n, 1000u);
  ASSERT_GT(lo_n, 1000u);
  // Ratings carry the hidden taste: liked items are rated clearly higher.
  EXPECT_GT(hi_sum / hi_n, lo_sum / lo_n + 0.5);
}

TEST(Generator, ChoicesFollowHiddenAffinityAndFunnel) {
  generator_config cfg;
  generator_truth truth;
  dataset ds = generate(cfg, &truth);
  ASSERT_EQ(truth.user_factors.size(), cfg.users * cfg.factors);
  ASSERT_EQ(truth.item_factors.size(), cfg.items * cfg.factors);
  double chosen = 0;
  std::array<double, 4> by_type{};
  std::array<std::size_t, 4> n_type{};
  for (const auto& e : ds.events) {
    double a = truth.affinity(e.user, e.item);
    chosen += a;
    by_type[static_cast<std::size_t>(e.type)] += a;
    ++n_type[static_cast<std::size_t>(e.type)];
  }
  chosen /= static_cast<double>(ds.events.size());
  double random = 0;
  for (index_t u = 0; u < cfg.users; ++u)
    for (index_t i = 0; i < cfg.items; ++i)
      random += truth.affinity(u, i);
  random /= static_cast<double>(cfg.users * cfg.items);
  std::printf("[ figures ] mean hidden affinity: chosen %.3f, all pairs %.3f\n", chosen,
              random);
  EXPECT_GT(chosen, random + 0.3);
  // Deeper funnel steps go to better-liked items.
  for (std::size_t t = 0; t < 4; ++t)
    ASSERT_GT(n_type[t], ds.events.size() / 50) << "type " << t << " nearly absent";
  EXPECT_GT(by_type[3] / n_type[3], by_type[0] / n_type[0] + 0.05);
  EXPECT_GT(n_type[0], n_type[1]);
  EXPECT_GT(n_type[1], n_type[3]);
}

// Held-out events are predictable from co-occurrence in the rest, clearly
// above popularity and far above chance: the structure is learnable without
// the hidden truth.
TEST(Generator, HeldOutItemsArePredictableByCoOccurrence) {
  generator_config cfg; // 1000 users x 500 items, 50,000 events
  dataset ds = generate(cfg);
  const std::size_t nu = cfg.users, ni = cfg.items;
  std::vector<std::uint8_t> train(nu * ni, 0), test(nu * ni, 0);
  for (std::size_t k = 0; k < ds.events.size(); ++k) {
    const auto& e = ds.events[k];
    (k % 5 == 0 ? test : train)[e.user * ni + e.item] = 1;
  }
  std::vector<double> pop(ni, 0);
  std::vector<std::vector<index_t>> rows(nu);
  for (std::size_t u = 0; u < nu; ++u)
    for (std::size_t i = 0; i < ni; ++i)
      if (train[u * ni + i]) {
        rows[u].push_back(static_cast<index_t>(i));
        pop[i] += 1;
      }
  std::vector<double> co(ni * ni, 0);
  for (const auto& r : rows)
    for (auto a : r)
      for (auto b : r)
        if (a != b)
          co[a * ni + b] += 1;
  auto hits_at_10 = [&](std::size_t u, const std::vector<double>& score) {
    std::vector<index_t> cand;
    for (std::size_t i = 0; i < ni; ++i)
      if (!train[u * ni + i])
        cand.push_back(static_cast<index_t>(i));
    std::partial_sort(cand.begin(), cand.begin() + 10, cand.end(),
                      [&](index_t a, index_t b) {
                        return score[a] != score[b] ? score[a] > score[b] : a < b;
                      });
    std::size_t h = 0;
    for (std::size_t k = 0; k < 10; ++k)
      h += test[u * ni + cand[k]];
    return h;
  };
  std::size_t hits_co = 0, hits_pop = 0, test_cells = 0, candidates = 0, users = 0;
  std::vector<double> score(ni);
  for (std::size_t u = 0; u < nu; ++u) {
    std::size_t t = 0;
    for (std::size_t i = 0; i < ni; ++i)
      t += test[u * ni + i] && !train[u * ni + i];
    if (t == 0 || rows[u].size() < 3)
      continue;
    ++users;
    test_cells += t;
    candidates += ni - rows[u].size();
    std::fill(score.begin(), score.end(), 0.0);
    for (auto j : rows[u])
      for (std::size_t i = 0; i < ni; ++i)
        score[i] += co[j * ni + i] / std::sqrt((pop[i] + 1) * (pop[j] + 1));
    hits_co += hits_at_10(u, score);
    hits_pop += hits_at_10(u, pop);
  }
  ASSERT_GT(users, 500u);
  const double p_co = static_cast<double>(hits_co) / (10.0 * users);
  const double p_pop = static_cast<double>(hits_pop) / (10.0 * users);
  // Chance: a random top-10 from the candidates.
  const double p_random =
      static_cast<double>(test_cells) / static_cast<double>(candidates);
  std::printf("[ figures ] P@10 on held-out events: co-occurrence %.3f, popularity %.3f, "
              "random %.3f\n",
              p_co, p_pop, p_random);
  EXPECT_GT(p_pop, 2.0 * p_random);
  EXPECT_GT(p_co, 1.3 * p_pop);
}

TEST(Generator, SideInformationCarriesTheCategories) {
  generator_config cfg;
  generator_truth truth;
  dataset ds = generate(cfg, &truth);
  ASSERT_EQ(truth.item_category.size(), cfg.items);
  std::map<std::string, std::string> brand_category;
  std::vector<std::set<std::string>> words(cfg.items);
  for (std::size_t i = 0; i < cfg.items; ++i) {
    const auto& info = ds.item_meta[i];
    ASSERT_EQ(info.genres.size(), 1u);
    EXPECT_EQ(info.genres[0], truth.category_names[truth.item_category[i]]);
    ASSERT_EQ(info.tags.size(), 1u);
    auto [it, fresh] = brand_category.emplace(info.tags[0], info.genres[0]);
    EXPECT_EQ(it->second, info.genres[0])
        << "brand " << info.tags[0] << " in two categories";
    (void)fresh;
    EXPECT_FALSE(info.title.empty());
    std::istringstream in(info.text);
    for (std::string w; in >> w;)
      words[i].insert(w);
    EXPECT_GE(words[i].size(), 2u);
  }
  // Text overlaps far more within a category than across categories.
  double same = 0, other = 0;
  std::size_t n_same = 0, n_other = 0;
  for (std::size_t a = 0; a < 200; ++a)
    for (std::size_t b = a + 1; b < 200; ++b) {
      std::size_t common = 0;
      for (const auto& w : words[a])
        common += words[b].count(w);
      double jac = static_cast<double>(common)
                   / static_cast<double>(words[a].size() + words[b].size() - common);
      if (truth.item_category[a] == truth.item_category[b]) {
        same += jac;
        ++n_same;
      } else {
        other += jac;
        ++n_other;
      }
    }
  ASSERT_GT(n_same, 100u);
  EXPECT_GT(same / n_same, 2.0 * other / n_other);
  // Users concentrate on few categories: the top category of an active user
  // holds far more than a uniform share of their events.
  std::vector<std::map<std::string, std::size_t>> per_user(cfg.users);
  std::vector<std::size_t> n_events(cfg.users, 0);
  for (const auto& e : ds.events) {
    ++per_user[e.user][ds.item_meta[e.item].genres[0]];
    ++n_events[e.user];
  }
  double top_share = 0;
  std::size_t active = 0;
  for (std::size_t u = 0; u < cfg.users; ++u) {
    if (n_events[u] < 20)
      continue;
    std::size_t top = 0;
    for (const auto& [name, n] : per_user[u])
      top = std::max(top, n);
    top_share += static_cast<double>(top) / static_cast<double>(n_events[u]);
    ++active;
  }
  ASSERT_GT(active, 300u);
  const double uniform = 1.0 / static_cast<double>(truth.category_names.size());
  std::printf("[ figures ] mean top-category share %.3f (uniform %.3f)\n",
              top_share / active, uniform);
  EXPECT_GT(top_share / active, 3.0 * uniform);
  // User attributes.
  for (const auto& info : ds.user_meta) {
    ASSERT_EQ(info.attributes.size(), 2u);
    EXPECT_EQ(info.attributes[0].first, "age");
    EXPECT_EQ(info.attributes[1].first, "region");
  }
}

TEST(Generator, ContextsAndTimeOfDay) {
  generator_config cfg;
  dataset ds = generate(cfg);
  std::array<std::size_t, 24> by_hour{};
  std::vector<std::array<std::size_t, 4>> device(cfg.users);
  std::vector<std::array<std::size_t, 6>> location(cfg.users);
  for (const auto& e : ds.events) {
    ++by_hour[static_cast<std::size_t>((e.timestamp % 86400) / 3600)];
    ++device[e.user][e.device];
    ++location[e.user][e.location];
  }
  EXPECT_GT(by_hour[20], 5 * by_hour[4]); // evening peak, quiet night
  std::size_t main_device = 0, main_location = 0, total = 0;
  for (std::size_t u = 0; u < cfg.users; ++u) {
    main_device += *std::max_element(device[u].begin(), device[u].end());
    main_location += *std::max_element(location[u].begin(), location[u].end());
    total += std::accumulate(device[u].begin(), device[u].end(), std::size_t{0});
  }
  EXPECT_GT(static_cast<double>(main_device) / total, 0.75);
  EXPECT_GT(static_cast<double>(main_location) / total, 0.9);
  std::array<std::size_t, 4> overall{};
  for (const auto& d : device)
    for (std::size_t k = 0; k < 4; ++k)
      overall[k] += d[k];
  EXPECT_GT(overall[1], overall[2]); // mobile > desktop > tablet
  EXPECT_GT(overall[2], overall[3]);
}

TEST(Generator, RoundTripsThroughTheCsvFormats) {
  generator_config cfg;
  cfg.users = 200;
  cfg.items = 150;
  cfg.events = 5000;
  for (bool explicit_ratings : {false, true}) {
    cfg.explicit_ratings = explicit_ratings;
    dataset ds = generate(cfg);
    const std::string dir = ::testing::TempDir();
    ASSERT_TRUE(write_events_csv(ds, dir + "generator_test_events.csv").ok());
    ASSERT_TRUE(write_items_csv(ds, dir + "generator_test_items.csv").ok());
    ASSERT_TRUE(write_users_csv(ds, dir + "generator_test_users.csv").ok());
    dataset back;
    auto ev = load_events(dir + "generator_test_events.csv", data_format::events, back);
    ASSERT_TRUE(ev.ok()) << ev.err().message;
    ASSERT_EQ(ev->accepted, cfg.events);
    auto it = load_item_attributes(dir + "generator_test_items.csv", back);
    ASSERT_TRUE(it.ok()) << it.err().message;
    auto us = load_user_attributes(dir + "generator_test_users.csv", back);
    ASSERT_TRUE(us.ok()) << us.err().message;
    ASSERT_EQ(back.events.size(), ds.events.size());
    for (std::size_t k = 0; k < ds.events.size(); ++k) {
      const event &a = ds.events[k], &b = back.events[k];
      ASSERT_EQ(ds.users.external(a.user), back.users.external(b.user));
      ASSERT_EQ(ds.items.external(a.item), back.items.external(b.item));
      ASSERT_EQ(a.type, b.type);
      ASSERT_EQ(a.value, b.value);
      ASSERT_EQ(a.timestamp, b.timestamp);
      ASSERT_EQ(ds.devices.external(a.device), back.devices.external(b.device));
      ASSERT_EQ(ds.locations.external(a.location), back.locations.external(b.location));
    }
    ASSERT_EQ(back.items.size(), ds.items.size());
    for (index_t i = 0; i < ds.items.size(); ++i) {
      auto j = back.items.find(ds.items.external(i));
      ASSERT_TRUE(j.has_value());
      EXPECT_EQ(back.item_meta[*j].title, ds.item_meta[i].title);
      EXPECT_EQ(back.item_meta[*j].genres, ds.item_meta[i].genres);
      EXPECT_EQ(back.item_meta[*j].tags, ds.item_meta[i].tags);
      EXPECT_EQ(back.item_meta[*j].text, ds.item_meta[i].text);
    }
    for (index_t u = 0; u < ds.users.size(); ++u) {
      auto v = back.users.find(ds.users.external(u));
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(back.user_meta[*v].attributes, ds.user_meta[u].attributes);
    }
  }
}

// The benchmark data set's shape (its speed is measured in bench/).
TEST(Generator, BenchmarkDataSetShape) {
  generator_config cfg;
  cfg.users = 6000;
  cfg.items = 4000;
  cfg.events = 1000000;
  auto w0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  dataset ds = generate(cfg);
  double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  std::printf(
      "[ figures ] generate 6000 x 4000, 1,000,000 events: %.3f s cpu, %.3f s wall\n",
      cpu, wall);
  ASSERT_EQ(ds.events.size(), cfg.events);
  std::vector<std::uint8_t> user_seen(cfg.users, 0), item_seen(cfg.items, 0);
  for (const auto& e : ds.events) {
    user_seen[e.user] = 1;
    item_seen[e.item] = 1;
  }
  // Everyone is active at this size; nearly every item is touched.
  EXPECT_EQ(std::count(user_seen.begin(), user_seen.end(), 1), 6000);
  EXPECT_GT(std::count(item_seen.begin(), item_seen.end(), 1), 3600);
}

} // namespace
} // namespace shardrec::core
