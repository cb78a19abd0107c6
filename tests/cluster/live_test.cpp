// Multi-process tests of a cluster that learns while it serves: training in
// the background while events stream in and queries go on.
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/blocking_actor.hpp>
#include <gtest/gtest.h>

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
          first_failure = r ? "partial or short answer" : err;
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

} // namespace
} // namespace shardrec::testing
