// Multi-process durability tests: nodes killed with SIGKILL and started
// again with their data folders. Every acknowledged event is accounted for,
// by count (status) and by content (the partitions' logs and snapshots read
// back from disk after the nodes are gone).
#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <caf/blocking_actor.hpp>
#include <gtest/gtest.h>

#include "actors/durable.hpp"
#include "tests/cluster/cluster_support.hpp"
#include "tests/cluster/local_cluster.hpp"

namespace shardrec::testing {
namespace {

namespace fs = std::filesystem;

// An event's identity: every test event has its own timestamp.
using event_key = std::tuple<std::string, std::string, std::int64_t>;

event_key key_of(const dist::raw_event& e) {
  return {e.user, e.item, e.timestamp};
}

// Batch b of the stream: 40 events of 300 users and 200 items, each with
// its own timestamp; ratings 1..5.
std::vector<dist::raw_event> batch_of(int b) {
  std::mt19937 rng(static_cast<unsigned>(b) + 17);
  std::vector<dist::raw_event> out(40);
  for (std::size_t k = 0; k < out.size(); ++k) {
    auto& e = out[k];
    e.user = "u" + std::to_string(rng() % 300);
    e.item = "i" + std::to_string(rng() % 200);
    e.value = static_cast<float>(1 + rng() % 5);
    e.type = core::event_type::rating;
    e.timestamp = 1'600'000'000 + b * 100 + static_cast<std::int64_t>(k);
  }
  return out;
}

// Waits until node k's status lists every partition.
void wait_complete(const local_cluster& c, int k) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::string out;
    if (c.cli("--cluster " + c.address(k) + " status --json", &out) == 0
        && nlohmann::json::parse(out)["missing_partitions"].empty())
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << "node " << k << " never saw every partition again\n" << c.logs();
}

// Every user-side event stored on disk, read back the way a restart does.
std::multiset<event_key> events_on_disk(const local_cluster& c, int nodes,
                                        std::uint32_t partitions) {
  std::multiset<event_key> out;
  for (std::uint32_t p = 0; p < partitions; ++p) {
    int found = 0;
    for (int k = 0; k < nodes; ++k) {
      actors::durability d;
      d.data_dir = c.node_dir(k);
      if (!fs::exists(actors::partition_dir(d, p)))
        continue;
      ++found;
      auto rec = actors::recover_partition(d, p, partitions);
      EXPECT_TRUE(rec.ok()) << rec.err().message;
      if (!rec)
        continue;
      const auto& s = *rec->data.store;
      for (const auto& e : s.user_side_events())
        out.insert(
            {s.users().external(e.user), s.item_refs().external(e.item), e.timestamp});
    }
    EXPECT_EQ(found, 1) << "partition " << p << " is on " << found << " nodes";
  }
  return out;
}

std::vector<actors::recommend_reply> recommend_all(peer& p, int users) {
  std::vector<actors::recommend_reply> out;
  for (int u = 0; u < users; ++u) {
    std::string err;
    // The top 40 of 202 items: the data is random, so whether a new item
    // (rated by 240 users) makes a top 10 is chance; in the top 40 it is
    // there for some of the 30 users whatever the streamed share was.
    auto r = p.recommend("u" + std::to_string(u), &err, 40);
    EXPECT_TRUE(r) << err;
    if (r) {
      EXPECT_FALSE(r->partial);
      out.push_back(std::move(*r));
    }
  }
  return out;
}

bool same_answers(const std::vector<actors::recommend_reply>& a,
                  const std::vector<actors::recommend_reply>& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t u = 0; u < a.size(); ++u) {
    if (a[u].items.size() != b[u].items.size())
      return false;
    for (std::size_t k = 0; k < a[u].items.size(); ++k)
      if (a[u].items[k].item != b[u].items[k].item
          || a[u].items[k].score != b[u].items[k].score)
        return false;
  }
  return true;
}

// recommend_all once the live item side has settled (an item newer than the
// model gets its factors moments after its events, when its users' rows
// arrive): the same answers twice in a row, further apart than a cached
// blend statistic lives (1 s).
std::vector<actors::recommend_reply> recommend_settled(peer& p, int users) {
  auto last = recommend_all(p, users);
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto now = recommend_all(p, users);
    if (same_answers(now, last))
      return now;
    last = std::move(now);
  }
  ADD_FAILURE() << "the answers did not settle";
  return last;
}

TEST(Durability, EveryAcknowledgedEventSurvivesKillNineOfANodeAndOfEveryNode) {
  constexpr std::uint32_t partitions = 8;
  local_cluster c(2, static_cast<int>(partitions));
  std::multiset<event_key> acked, unknown;
  std::size_t failed_batches = 0, after_restart = 0, failed_after_restart = 0;
  {
    // A client streams batches with 8 in flight and records every
    // acknowledgement while node 1 is killed and started again.
    peer p(c.port(0));
    std::atomic<int> done{0}; // batches answered (either way)
    std::atomic<bool> stop{false}, restarted{false};
    std::thread streamer([&] {
      caf::scoped_actor self{*p.sys};
      struct inflight {
        std::vector<dist::raw_event> events;
        bool after_restart;
        caf::response_handle<caf::blocking_actor, caf::message, true> handle;
      };
      std::deque<inflight> window;
      auto await_one = [&] {
        auto& f = window.front();
        bool ok = false;
        f.handle.receive(
            [&](const actors::frame& reply) {
              auto r = actors::decode_ingest_result(reply);
              ok = r && r->accepted == f.events.size();
            },
            [&](caf::error&) {});
        for (const auto& e : f.events)
          (ok ? acked : unknown).insert(key_of(e));
        failed_batches += !ok;
        after_restart += f.after_restart;
        failed_after_restart += f.after_restart && !ok;
        window.pop_front();
        ++done;
      };
      for (int b = 0; !stop || window.size() > 0; ++b) {
        if (!stop) {
          auto events = batch_of(b);
          auto frame = actors::encode(actors::event_batch{events, {1.0f, 5.0f}});
          const bool late = restarted;
          window.push_back({std::move(events), late,
                            self->request(p.coordinator, std::chrono::seconds(10),
                                          actors::ingest_atom::value, std::move(frame))});
        }
        if (window.size() >= 8 || stop)
          await_one();
      }
    });
    auto wait_done = [&](int n) {
      while (done < n)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    wait_done(100);
    c.kill_node(1); // mid-stream: node 0 keeps taking what it can
    wait_done(done + 50);
    c.restart_node(1);
    wait_complete(c, 0);
    restarted = true;
    wait_done(done + 150);
    stop = true;
    streamer.join();
  }
  EXPECT_GT(after_restart, 100u);
  EXPECT_EQ(failed_after_restart, 0u) << "batches refused once node 1 was back";
  EXPECT_GT(failed_batches, 0u) << "no batch met the dead node";
  auto stored = [&] { return status_of(c, 0)["events"].get<std::size_t>(); };
  const auto events = stored();
  std::printf("[kill -9 of node 1] %zu events acknowledged, %zu in %zu failed batches, "
              "%zu stored\n",
              acked.size(), unknown.size(), failed_batches, events);
  EXPECT_GE(events, acked.size());
  EXPECT_LE(events, acked.size() + unknown.size());

  // Train, then kill every node and start them again: the same events and
  // the same answers.
  // The default blend (implicit ALS with a little item-kNN): with tuning the
  // check below failed about one run in three (waiting longer did not help),
  // most likely a tuned blend without factors (EASE or item-kNN alone),
  // whose answers never hold an item newer than the model.
  ASSERT_EQ(c.cli("--cluster " + c.address(0) + " train --no-tune"), 0) << c.logs();
  std::vector<actors::recommend_reply> before;
  std::size_t events_after_training = 0;
  {
    // Events after the training: folded into their users' factors (and
    // into the snapshot's or the log's replay after the restart).
    peer p(c.port(1));
    // Far above any batch the streamer sent (a slow build streams longer):
    // every event of the test has its own timestamp.
    for (int b = 1'000'000; b < 1'000'010; ++b) {
      auto events = batch_of(b);
      ASSERT_EQ(p.ingest(actors::encode(actors::event_batch{events, {1.0f, 5.0f}})), "");
      for (const auto& e : events)
        acked.insert(key_of(e));
      events_after_training += events.size();
    }
    // And two items newer than the model, rated by 120 users each (not the
    // 30 whose answers are compared): they get factors by item fold-in
    // (rows asked of the users' partitions), again after the restart.
    std::vector<dist::raw_event> fresh;
    for (int u = 30; u < 270; ++u) {
      dist::raw_event e;
      e.user = "u" + std::to_string(u);
      e.item = "fresh-" + std::to_string(u % 2);
      e.value = 5.0f;
      e.timestamp = 1'700'000'000 + u;
      fresh.push_back(e);
      acked.insert(key_of(e));
    }
    ASSERT_EQ(p.ingest(actors::encode(actors::event_batch{fresh, {1.0f, 5.0f}})), "");
    events_after_training += fresh.size();
    before = recommend_settled(p, 30);
    std::size_t with_fresh = 0;
    for (const auto& r : before)
      for (const auto& rec : r.items)
        with_fresh += rec.item.rfind("fresh-", 0) == 0;
    EXPECT_GT(with_fresh, 0u) << "no new item among the answers compared";
  }
  c.kill_node(0);
  c.kill_node(1);
  c.restart_node(0);
  c.restart_node(1);
  ASSERT_NO_FATAL_FAILURE(wait_complete(c, 0));
  ASSERT_NO_FATAL_FAILURE(wait_complete(c, 1));
  EXPECT_EQ(stored(), events + events_after_training);
  auto s = status_of(c, 1);
  EXPECT_EQ(s["model_version"], 1);
  EXPECT_EQ(s["nodes"].size(), 2u);
  // Every partition has a snapshot (written after the training) and a log
  // that goes at least as far.
  auto parts = run_json(c, "--cluster " + c.address(0) + " partitions --json");
  ASSERT_EQ(parts["partition_status"].size(), partitions);
  for (const auto& p : parts["partition_status"]) {
    EXPECT_GT(p["snapshot_seq"].get<std::uint64_t>(), 0u) << p.dump();
    EXPECT_GE(p["log_seq"].get<std::uint64_t>(), p["snapshot_seq"].get<std::uint64_t>());
    EXPECT_GT(p["log_bytes"].get<std::uint64_t>(), 0u);
  }
  {
    peer p(c.port(1));
    auto after = recommend_settled(p, 30);
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t u = 0; u < after.size(); ++u) {
      ASSERT_EQ(after[u].items.size(), before[u].items.size()) << after[u].user;
      for (std::size_t k = 0; k < after[u].items.size(); ++k) {
        EXPECT_EQ(after[u].items[k].item, before[u].items[k].item) << after[u].user;
        EXPECT_EQ(after[u].items[k].score, before[u].items[k].score) << after[u].user;
      }
    }
  }

  // Content: every acknowledged event is on disk exactly once, and nothing
  // is there that was not sent.
  c.kill_node(0);
  c.kill_node(1);
  const auto disk = events_on_disk(c, 2, partitions);
  EXPECT_EQ(disk.size(), events + events_after_training);
  std::size_t missing = 0, foreign = 0;
  for (const auto& k : acked)
    missing += disk.count(k) != 1;
  for (const auto& k : disk)
    foreign += acked.count(k) == 0 && unknown.count(k) == 0;
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(foreign, 0u);
  std::printf("[on disk] %zu of %zu acknowledged events, %zu of the failed batches' "
              "events\n",
              acked.size() - missing, acked.size(), disk.size() - acked.size() + missing);
}

// A torn tail (the process died mid-write) and a flipped byte (a bad
// sector): the node starts, cuts each log at its last good record, says so
// with file and offset, and serves what is left.
TEST(Durability, ATornTailAndAFlippedByteAreCutAndReported) {
  local_cluster c(1, 4);
  {
    peer p(c.port(0));
    for (int b = 0; b < 50; ++b)
      ASSERT_EQ(p.ingest(actors::encode(actors::event_batch{batch_of(b), {1.0f, 5.0f}})),
                "");
  }
  const auto before = status_of(c, 0)["events"].get<std::size_t>();
  c.kill_node(0);
  actors::durability d;
  d.data_dir = c.node_dir(0);
  auto segment = [&](std::uint32_t p) {
    std::vector<fs::path> segs;
    for (const auto& e : fs::directory_iterator(actors::partition_dir(d, p) + "/log"))
      segs.push_back(e.path());
    std::sort(segs.begin(), segs.end());
    return segs.back().string();
  };
  const auto torn = segment(0), flipped = segment(1);
  fs::resize_file(torn, fs::file_size(torn) - 5);
  const auto flip_at = fs::file_size(flipped) / 2;
  {
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(flip_at));
    char ch = 0;
    f.read(&ch, 1);
    ch = static_cast<char>(ch ^ 0x01);
    f.seekp(static_cast<std::streamoff>(flip_at));
    f.write(&ch, 1);
  }
  c.restart_node(0);
  const auto log = c.logs();
  EXPECT_NE(log.find("partition 0: log segment '" + torn + "': torn record"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("partition 1: log segment '" + flipped + "': checksum mismatch"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("at offset "), std::string::npos);
  const auto after = status_of(c, 0)["events"].get<std::size_t>();
  EXPECT_LT(after, before);
  EXPECT_GT(after, 0u);
  std::printf("[cut logs] %zu events before, %zu after the two cuts\n", before, after);
  // It serves and takes new events.
  peer p(c.port(0));
  EXPECT_EQ(p.ingest(actors::encode(actors::event_batch{batch_of(99), {1.0f, 5.0f}})),
            "");
  EXPECT_EQ(status_of(c, 0)["events"].get<std::size_t>(), after + 40);
}

} // namespace
} // namespace shardrec::testing
