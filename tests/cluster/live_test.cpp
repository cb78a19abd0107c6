// Multi-process tests of a cluster that learns while it serves: training in
// the background while events stream in and queries go on.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/blocking_actor.hpp>
#include <gtest/gtest.h>

#include "core/fold_in.hpp"
#include "core/ials.hpp"
#include "core/loaders.hpp"
#include "core/partition.hpp"
#include "core/popularity.hpp"
#include "dist/training.hpp"
#include "tests/cluster/cluster_support.hpp"
#include "tests/cluster/local_cluster.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::testing {
namespace {

// `train` while one client streams events and another asks for
// recommendations: the run succeeds, no query fails or comes back partial,
// every acknowledged event is stored, and the events that arrived during
// the run are the users' items in the new model (never recommended to them).
TEST(Live, TrainingRunsWhileEventsStreamAndQueriesGoOn) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, "--algo all"));
  ASSERT_EQ(status_of(c, 0)["model_version"], 1);

  std::atomic<bool> stop{false}, training{false};
  std::atomic<int> during{0};
  std::size_t acked = 0, failed_batches = 0;
  std::map<std::string, std::set<std::string>> touched; // user -> items, acked
  std::thread streamer([&] {
    peer p(c.port(1));
    caf::scoped_actor self{*p.sys};
    std::mt19937 rng(5);
    for (int b = 0; !stop; ++b) {
      std::vector<dist::raw_event> events(20);
      for (std::size_t k = 0; k < events.size(); ++k) {
        auto& e = events[k];
        e.user = std::to_string(1 + rng() % 50);
        e.item = std::to_string(1 + rng() % 1682);
        e.value = 4.0f;
        e.timestamp = 900'000'000 + b * 100 + static_cast<std::int64_t>(k);
      }
      bool ok = false;
      self->request(p.coordinator, std::chrono::seconds(30), actors::ingest_atom::value,
                    actors::encode(actors::event_batch{events, {1.0f, 5.0f}}))
          .receive(
              [&](const actors::frame& f) {
                auto r = actors::decode_ingest_result(f);
                ok = r && r->accepted == events.size();
              },
              [&](caf::error&) {});
      if (!ok) {
        ++failed_batches;
        continue;
      }
      acked += events.size();
      if (training)
        during += static_cast<int>(events.size());
      for (const auto& e : events)
        touched[e.user].insert(e.item);
    }
  });
  std::atomic<int> queries{0}, failed_queries{0};
  std::string first_failure;
  std::thread querier([&] {
    peer p(c.port(0));
    for (int k = 0; !stop; ++k) {
      std::string err;
      auto r = p.recommend(std::to_string(1 + k % 60), &err);
      ++queries;
      if (!r || r->partial || r->items.size() != 10) {
        if (failed_queries++ == 0)
          first_failure =
              r ? "user " + std::to_string(1 + k % 60) + ": "
                      + (r->partial ? "partial, " + std::to_string(r->missing.size())
                                          + " partitions missing, "
                                    : std::string())
                      + std::to_string(r->items.size()) + " items"
                : err;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  training = true;
  std::string out;
  const int rc = c.cli(where + "train --algo all --json", &out);
  training = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  streamer.join();
  querier.join();
  ASSERT_EQ(rc, 0) << out << c.logs();
  std::printf("[live] %zu events acknowledged (%d during the run), %d queries, %d "
              "failed, %zu failed batches\n",
              acked, during.load(), queries.load(), failed_queries.load(),
              failed_batches);
  EXPECT_GT(during, 0) << "no event arrived during the run";
  EXPECT_EQ(failed_batches, 0u);
  EXPECT_EQ(failed_queries, 0) << first_failure;
  auto s = status_of(c, 0);
  EXPECT_EQ(s["model_version"], 2);
  EXPECT_EQ(s["events"].get<std::size_t>(), 80000 + acked);
  // The streamed items are the users' own now: never recommended to them.
  peer p(c.port(0));
  for (const auto& [user, items] : touched) {
    std::string err;
    auto r = p.recommend(user, &err);
    ASSERT_TRUE(r) << err;
    for (const auto& rec : r->items)
      EXPECT_EQ(items.count(rec.item), 0u) << "user " << user << " got " << rec.item;
  }
}

// ML-100K u1.base as the core trains on it for the cluster's models: the
// matrix (repeats: the last rating) and the stable-hash keys of the ids.
struct core_u1 {
  core::dataset ds;
  core::interaction_matrix train;
  std::vector<std::uint64_t> user_keys, item_keys;
  void load() {
    ASSERT_TRUE(
        core::load_events(data + "/ml-100k/u1.base", core::data_format::movielens, ds)
            .ok());
    for (std::size_t u = 0; u < ds.users.size(); ++u)
      user_keys.push_back(
          core::stable_hash(ds.users.external(static_cast<core::index_t>(u))));
    for (std::size_t i = 0; i < ds.items.size(); ++i)
      item_keys.push_back(
          core::stable_hash(ds.items.external(static_cast<core::index_t>(i))));
    train = core::interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events,
                                            core::merge_policy::last);
  }
};

// An event moves the user's implicit-ALS factors at once by fold-in: the
// user half-step's row solve against the final item factors. The cluster's
// scores after one event equal those of the core's model with
// core::ials_fold_in_user applied to the same row (the cluster's model is
// the core's keyed trainer's, so before the event they agree too).
TEST(Live, AnEventFoldsIntoTheUsersFactorsAsTheCoreHalfStepDoes) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, "--algo implicit-als"));

  // The core's model, trained as the cluster trains (keys = stable hashes).
  core_u1 u1;
  ASSERT_NO_FATAL_FAILURE(u1.load());
  const auto& ds = u1.ds;
  const auto& train = u1.train;
  auto cfg = dist::make_train_settings(0, 0, 42, 2).ials;
  cfg.user_keys = &u1.user_keys;
  cfg.item_keys = &u1.item_keys;
  auto model = core::train_ials_model(train, cfg);
  const auto& items = model->item_factors();
  const auto u = *ds.users.find("1");
  auto score = [&](const std::vector<float>& x, const std::string& item) {
    auto i = ds.items.find(item);
    EXPECT_TRUE(i) << item;
    double s = 0;
    for (std::size_t k = 0; k < x.size(); ++k)
      s += static_cast<double>(x[k])
           * items(static_cast<Eigen::Index>(*i), static_cast<Eigen::Index>(k));
    return s;
  };
  auto ials_raw = [](const nlohmann::json& rec) {
    return rec["components"]["implicit-als"]["raw"].get<double>();
  };
  std::vector<float> x0(model->user_factors().row(u).data(),
                        model->user_factors().row(u).data() + cfg.factors);

  auto before = run_json(c, where + "recommend 1 -n 20 --json");
  ASSERT_EQ(before["items"].size(), 20u) << before.dump();
  double worst_before = 0;
  for (const auto& rec : before["items"])
    worst_before =
        std::max(worst_before, std::abs(ials_raw(rec) - score(x0, rec["item"])));
  EXPECT_LT(worst_before, 1e-6);

  // User 1 buys the top item: it leaves the list and every other score moves
  // as the core's fold-in of the new row says.
  const std::string top = before["items"][0]["item"];
  ASSERT_EQ(c.cli(where + "event 1 " + top + " --type rating --value 5"), 0) << c.logs();
  core::fold_in_cells row;
  auto r = train.user_row(u);
  for (std::size_t k = 0; k < r.size; ++k)
    row.emplace_back(r.index[k], r.value[k]);
  row.emplace_back(*ds.items.find(top), 5.0f);
  const auto gram = core::ials_trainer_gram(items, &u1.item_keys);
  const auto x1 = core::ials_fold_in_user(*model, gram, row, cfg, x0.data());

  auto after = run_json(c, where + "recommend 1 -n 20 --json");
  ASSERT_EQ(after["items"].size(), 20u);
  double worst = 0, moved = 0;
  for (const auto& rec : after["items"]) {
    EXPECT_NE(rec["item"], top);
    worst = std::max(worst, std::abs(ials_raw(rec) - score(x1, rec["item"])));
    moved = std::max(moved, std::abs(score(x1, rec["item"]) - score(x0, rec["item"])));
  }
  std::printf("[fold-in] largest |cluster - core| score: %.2g before the event, %.2g "
              "after; largest move of a score by the event: %.3f\n",
              worst_before, worst, moved);
  EXPECT_LT(worst, 1e-6);
  EXPECT_GT(moved, 1e-3) << "the event did not move the scores";
}

// The same for the rating model (MF by ALS): a rating moves the user's
// factors and bias at once, as the core's ALS half-step for that row does.
// The cluster solves against its trainer's double rows, the core's model
// keeps floats: they agree to float rounding.
TEST(Live, ARatingFoldsIntoTheUsersMfRowAsTheCoreHalfStepDoes) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, "--algo mf"));
  core_u1 u1;
  ASSERT_NO_FATAL_FAILURE(u1.load());
  const auto& ds = u1.ds;
  const auto& train = u1.train;
  auto cfg = dist::make_train_settings(0, 0, 42, 2).mf;
  cfg.user_keys = &u1.user_keys;
  cfg.item_keys = &u1.item_keys;
  const auto f = core::train_mf_factors(train, cfg);
  auto predict = [&](const core::mf_fold_in_result& x, const std::string& item) {
    auto i = static_cast<Eigen::Index>(*ds.items.find(item));
    double p = static_cast<double>(f.mu) + x.bias + f.item_bias(i);
    for (std::size_t k = 0; k < x.factors.size(); ++k)
      p += static_cast<double>(x.factors[k]) * f.item(i, static_cast<Eigen::Index>(k));
    return p;
  };
  const auto u = *ds.users.find("1");
  // User 1 rates item 50 (seen, rated 5 in u1.base) 1 now, and a new item.
  core::fold_in_cells row;
  auto r = train.user_row(u);
  for (std::size_t k = 0; k < r.size; ++k)
    row.emplace_back(r.index[k], r.index[k] == *ds.items.find("50") ? 1.0f : r.value[k]);
  const auto x1 = core::mf_fold_in_user(f, row, cfg);
  ASSERT_EQ(c.cli(where + "event 1 50 --type rating --value 1"), 0) << c.logs();
  auto after = run_json(c, where + "recommend 1 -n 20 --json");
  ASSERT_EQ(after["items"].size(), 20u) << after.dump();
  double worst = 0;
  for (const auto& rec : after["items"]) {
    const double cluster = rec["components"]["mf"]["raw"].get<double>();
    worst = std::max(worst, std::abs(cluster - predict(x1, rec["item"])));
  }
  std::printf("[mf fold-in] largest |cluster - core| prediction after the event: %.2g\n",
              worst);
  EXPECT_LT(worst, 1e-5);
}

// An item the model has never seen, rated by 40 users of the model and one
// newer than it: as soon as the ratings are in, the item has factors from
// them, equal to the core's item half-step for that column against the
// model's user factors (core::ials_fold_in_item / mf_fold_in_item; the user
// the model does not know does not enter), so other users get it scored;
// and every new (user, item) pair counts in the item's popularity at once.
// REQUIRES: ml-100k/u1.base (the tests below skip without it)
void new_item_folds_in(const std::string& algo) {
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, "--algo " + algo));
  core_u1 u1;
  ASSERT_NO_FATAL_FAILURE(u1.load());
  const auto& ds = u1.ds;
  const auto& train = u1.train;
  const bool implicit = algo == "implicit-als";
  const std::string component = implicit ? "implicit-als" : "mf";

  // The raters: the first 40 users who rated item 50, with their rating of
  // it; the user asked afterwards rated 50 too but not the new item.
  const auto i50 = *ds.items.find("50");
  std::vector<std::pair<core::index_t, float>> raters;
  core::index_t asked = 0;
  for (std::size_t u = 0; u < train.n_users(); ++u)
    if (const float* v = train.find(static_cast<core::index_t>(u), i50)) {
      if (raters.size() < 40)
        raters.emplace_back(static_cast<core::index_t>(u), *v);
      else {
        asked = static_cast<core::index_t>(u);
        break;
      }
    }
  ASSERT_EQ(raters.size(), 40u);
  const std::string item = "brand-new-item";
  const std::string user = ds.users.external(asked);

  // A user with no events is scored by popularity: item 50's before.
  auto popularity_of = [&](const nlohmann::json& rec) {
    return rec["components"][component]["raw"].get<double>();
  };
  double pop50 = -1;
  if (implicit) {
    auto cold = run_json(c, where + "recommend nobody-yet -n 5 --json");
    for (const auto& rec : cold["items"])
      if (rec["item"] == "50")
        pop50 = popularity_of(rec);
    ASSERT_GT(pop50, 0) << cold.dump();
  }

  core::fold_in_cells col;
  for (const auto& [u, v] : raters) {
    col.emplace_back(u, v);
    ASSERT_EQ(c.cli(where + "event " + std::string(ds.users.external(u)) + " " + item
                    + " --type rating --value " + std::to_string(v)),
              0)
        << c.logs();
  }
  ASSERT_EQ(c.cli(where + "event newcomer " + item + " --type rating --value 5"), 0);
  ASSERT_EQ(c.cli(where + "event newcomer 50 --type rating --value 5"), 0);

  // The core: the item's column solved against the model's user factors.
  std::function<double()> expected;
  std::unique_ptr<core::ials_model> ials;
  core::mf_factors mf;
  auto cfg_ials = dist::make_train_settings(0, 0, 42, 2).ials;
  auto cfg_mf = dist::make_train_settings(0, 0, 42, 2).mf;
  if (implicit) {
    cfg_ials.user_keys = &u1.user_keys;
    cfg_ials.item_keys = &u1.item_keys;
    auto m = core::train_ials_model(train, cfg_ials);
    const auto gram = core::ials_trainer_gram(m->user_factors(), &u1.user_keys);
    const auto y = core::ials_fold_in_item(*m, gram, col, cfg_ials);
    expected = [m = std::shared_ptr<core::ials_model>(std::move(m)), y, asked] {
      double s = 0;
      for (std::size_t k = 0; k < y.size(); ++k)
        s += static_cast<double>(y[k])
             * m->user_factors()(static_cast<Eigen::Index>(asked),
                                 static_cast<Eigen::Index>(k));
      return s;
    };
  } else {
    cfg_mf.user_keys = &u1.user_keys;
    cfg_mf.item_keys = &u1.item_keys;
    mf = core::train_mf_factors(train, cfg_mf);
    const auto q = core::mf_fold_in_item(mf, col, cfg_mf);
    expected = [&mf, q, asked] {
      const auto u = static_cast<Eigen::Index>(asked);
      double p = static_cast<double>(mf.mu) + q.bias + mf.user_bias(u);
      for (std::size_t k = 0; k < q.factors.size(); ++k)
        p += static_cast<double>(q.factors[k]) * mf.user(u, static_cast<Eigen::Index>(k));
      return p;
    };
  }

  // The rows of the raters come from their partitions: within moments.
  double got = 0, want = expected();
  bool found = false;
  const auto t0 = std::chrono::steady_clock::now();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto rec = run_json(c, where + "recommend " + user + " -n 1000 --json");
    for (const auto& r : rec["items"])
      if (r["item"] == item) {
        found = true;
        got = r["components"][component]["raw"].get<double>();
      }
    if (found && std::abs(got - want) < 1e-5)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("[item fold-in %s] user %s, new item: cluster %.9f, core %.9f (|diff| "
              "%.2g), in %.0f ms after the last event\n",
              algo.c_str(), user.c_str(), got, want, std::abs(got - want), ms);
  ASSERT_TRUE(found) << "the new item is not among user " << user << "'s 1000 items";
  EXPECT_LT(std::abs(got - want), implicit ? 1e-6 : 1e-5);
  EXPECT_GT(std::abs(want), 1e-3) << "the fold-in gave the item nothing to score by";
  // Its raters have seen it: never recommended to them, however its
  // partition's live side changed since.
  for (std::size_t r = 0; r < 5; ++r) {
    auto rec =
        run_json(c, where + "recommend " + std::string(ds.users.external(raters[r].first))
                        + " -n 1000 --json");
    for (const auto& x : rec["items"])
      EXPECT_NE(x["item"], item) << "recommended to its rater " << rec["user"];
  }

  if (implicit) {
    // Popularity counts every new pair at once: 41 users for the new item,
    // one more for item 50.
    auto cold = run_json(c, where + "recommend nobody-yet -n 1000 --json");
    double pop_new = -1, pop50_now = -1;
    for (const auto& rec : cold["items"]) {
      if (rec["item"] == item)
        pop_new = popularity_of(rec);
      if (rec["item"] == "50")
        pop50_now = popularity_of(rec);
    }
    EXPECT_EQ(pop_new, 41.0) << cold.dump();
    EXPECT_EQ(pop50_now, pop50 + 1.0);
  }
}

TEST(Live, ANewItemGetsIalsFactorsFromItsFirstEventsAsTheCoreItemHalfStepDoes) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  new_item_folds_in("implicit-als");
}

TEST(Live, ANewItemGetsMfFactorsFromItsFirstRatingsAsTheCoreItemHalfStepDoes) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  new_item_folds_in("mf");
}

// `popular` and `popular --trending` over the cluster equal the core's
// popularity_scores on the same events (ML-100K u1.base has one event per
// (user, item) pair, so counting events and counting cells agree), before
// any training (counted on request) and after it (kept per event), and a
// new (user, item) pair counts at once.
TEST(Live, PopularAndTrendingEqualTheCoreAndCountEachNewPairAtOnce) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0) << c.logs();
  core_u1 u1;
  ASSERT_NO_FATAL_FAILURE(u1.load());
  using ranked = std::vector<std::pair<std::string, double>>;
  auto core_top = [&](bool trending, std::size_t n) {
    core::popularity_config cfg;
    cfg.trending = trending;
    const auto s = core::popularity_scores(u1.train, cfg);
    ranked all;
    for (std::size_t i = 0; i < s.size(); ++i)
      all.emplace_back(u1.ds.items.external(static_cast<core::index_t>(i)), s[i]);
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    all.resize(n);
    return all;
  };
  auto cluster_top = [&](bool trending, std::size_t n) {
    auto j = run_json(c, where + "popular -n " + std::to_string(n)
                             + (trending ? " --trending" : "") + " --json");
    EXPECT_EQ(j["partial"], false) << j.dump();
    ranked out;
    for (const auto& x : j["items"])
      out.emplace_back(x["item"].get<std::string>(), x["score"].get<double>());
    return out;
  };
  auto expect_same = [&](const ranked& got, const ranked& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].first, want[k].first) << what << " rank " << k;
      EXPECT_NEAR(got[k].second, want[k].second, 1e-5 * want[k].second)
          << what << " rank " << k;
    }
  };
  expect_same(cluster_top(false, 20), core_top(false, 20), "popular, no model");
  expect_same(cluster_top(true, 20), core_top(true, 20), "trending, no model");
  ASSERT_EQ(c.cli(where + "train --algo popular"), 0) << c.logs();
  expect_same(cluster_top(false, 20), core_top(false, 20), "popular, trained");
  expect_same(cluster_top(true, 20), core_top(true, 20), "trending, trained");

  // A new user's event on the 3rd most popular item: one more user at once;
  // the same user again: no more.
  const auto before = cluster_top(false, 3);
  const auto& third = before[2];
  for (int k = 0; k < 2; ++k)
    ASSERT_EQ(c.cli(where + "event someone-new " + third.first + " --type view"), 0);
  double now = -1;
  for (const auto& [id, score] : cluster_top(false, 10))
    if (id == third.first)
      now = score;
  std::printf("[popular] item %s: %.0f users before, %.0f after two events of a new "
              "user\n",
              third.first.c_str(), third.second, now);
  EXPECT_EQ(now, third.second + 1);
}

// Users and items the model has not seen yet: a new user gets the popular
// items, flagged and explained as such; the user's first events give the
// user iALS factors and a content profile at once (fold-in), so only what the
// model cannot know stays cold; a new item says why it has no similar items.
TEST(Live, NewUsersAndItemsGetColdStartAnswersThatSaySo) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u.item");
  local_cluster c(2, 7);
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --items " + data
                  + "/ml-100k/u.item --quiet"),
            0)
      << c.logs();
  ASSERT_EQ(c.cli(where + "train"), 0) << c.logs();

  auto fresh = run_json(c, where + "recommend brand-new --json");
  ASSERT_EQ(fresh["items"].size(), 10u) << fresh.dump();
  EXPECT_NE(fresh["note"].get<std::string>().find("new user"), std::string::npos);
  EXPECT_EQ(fresh["cold_start"],
            nlohmann::json::parse(R"(["content","implicit-als","itemknn"])"));
  for (const auto& rec : fresh["items"])
    EXPECT_EQ(rec["because_from"], "popularity");
  auto known = run_json(c, where + "recommend 1 --json");
  EXPECT_TRUE(known["cold_start"].empty()) << known.dump();
  EXPECT_FALSE(known.contains("note"));

  ASSERT_EQ(c.cli(where + "event newcomer 50 --type purchase"), 0) << c.logs();
  ASSERT_EQ(c.cli(where + "event newcomer 181 --type purchase"), 0) << c.logs();
  auto first = run_json(c, where + "recommend newcomer --json");
  ASSERT_EQ(first["items"].size(), 10u);
  EXPECT_TRUE(first["cold_start"].empty()) << first.dump();
  for (const auto& rec : first["items"]) {
    EXPECT_NE(rec["item"], "50");
    EXPECT_NE(rec["item"], "181");
  }
  // Its answers are its own now, not the popular list.
  std::set<std::string> popular, own;
  for (const auto& rec : fresh["items"])
    popular.insert(rec["item"].get<std::string>());
  for (const auto& rec : first["items"])
    own.insert(rec["item"].get<std::string>());
  EXPECT_NE(popular, own);

  ASSERT_EQ(c.cli(where + "event 1 brand-new-item --type view"), 0) << c.logs();
  auto similar = run_json(c, where + "similar brand-new-item --json");
  EXPECT_TRUE(similar["neighbors"].empty());
  EXPECT_NE(similar["note"].get<std::string>().find("new item"), std::string::npos)
      << similar.dump();
}

// --retrain-every: the first node trains in the background when the data
// changed since its last run, and not when nothing did.
TEST(Live, RetrainEveryTrainsWhenTheDataChangedAndOnlyThen) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster_options opt;
  opt.node_args = {"--retrain-every", "1s"};
  local_cluster c(2, 4, opt);
  const auto where = "--cluster " + c.address(0) + " ";
  auto version = [&] { return status_of(c, 1)["model_version"].get<int>(); };
  auto wait_for_version = [&](int v) {
    for (int k = 0; k < 300 && version() < v; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return version();
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(version(), 0) << "trained an empty cluster";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0) << c.logs();
  ASSERT_GE(wait_for_version(1), 1) << c.logs();
  // A tick during the load may have trained on part of it; the next one
  // trains on all of it. From then on nothing changes: the version settles
  // (unchanged for 10 ticks, so a slow build's running training ends too)
  // and stays.
  int settled = version();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  for (auto still = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - still < std::chrono::seconds(10);) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the version never settled";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (int v = version(); v != settled) {
      settled = v;
      still = std::chrono::steady_clock::now();
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(version(), settled) << "retrained without a change";
  ASSERT_EQ(c.cli(where + "event 1 1000 --type rating --value 4"), 0) << c.logs();
  EXPECT_EQ(wait_for_version(settled + 1), settled + 1) << c.logs();
}

} // namespace
} // namespace shardrec::testing
