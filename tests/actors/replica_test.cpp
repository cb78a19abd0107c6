// A partition's primary and followers in one process (actors/replica.cpp):
// a batch is acknowledged once every follower has it; a batch sent again
// (same id) is stored once; a follower refuses client writes; after a
// failover (a follower promoted with a newer epoch) the old primary cannot
// have a write acknowledged (fencing); a follower the primary cannot bring
// up to date (behind the tail, diverged in a failover, unreachable) is
// reported and writes wait until the map drops it; a record that does not
// decode is refused before it is stored; the epoch history survives a
// snapshot.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/durable.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/shard.hpp"

namespace shardrec::actors {
namespace {

using namespace std::chrono_literals;

// Three events of users u<id>a..c (batch id `id`).
frame restart_batch(std::uint64_t id) {
  event_batch b;
  b.id = id;
  for (const char* suffix : {"a", "b", "c"}) {
    dist::raw_event e;
    e.user = "u" + std::to_string(id) + suffix;
    e.item = "i1";
    b.events.push_back(e);
  }
  return encode(b);
}

class Replicas : public ::testing::Test {
protected:
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::vector<caf::actor> shards;

  void SetUp() override {
    cfg.set("logger.verbosity", caf::atom("quiet"));
    add_message_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    durability dur;
    dur.await_role = true; // as with --etcd: no writes before a role
    for (std::uint32_t node = 0; node < 4; ++node)
      shards.push_back(spawn_shard(*sys, 0, 1, node, caf::actor{}, dur));
  }
  void TearDown() override {
    for (auto& s : shards)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  }

  static frame batch(std::uint64_t id, int first_user, int users) {
    event_batch b;
    b.id = id;
    for (int u = first_user; u < first_user + users; ++u) {
      dist::raw_event e;
      e.user = "u" + std::to_string(u);
      e.item = "i" + std::to_string(u % 7);
      b.events.push_back(e);
    }
    return encode(b);
  }

  // Sends a batch to shard k: its accepted count, or -1 and the error.
  long ingest(caf::scoped_actor& self, std::size_t k, const frame& f,
              std::string* error = nullptr, caf::duration timeout = caf::duration{5s}) {
    long out = -1;
    self->request(shards[k], timeout, ingest_atom::value, f)
        .receive(
            [&](const frame& r) {
              if (auto d = decode_ingest_result(r))
                out = static_cast<long>(d->accepted);
            },
            [&](caf::error& e) {
              if (error != nullptr)
                *error = sys->render(e)
                         + (is_fenced(e)  ? " [fenced]"
                            : is_moved(e) ? " [moved]"
                                          : "");
            });
    return out;
  }

  std::uint64_t events(caf::scoped_actor& self, std::size_t k) {
    std::uint64_t out = 0;
    self->request(shards[k], 5s, stats_atom::value)
        .receive(
            [&](const frame& f) {
              if (auto s = decode_partition_status(f))
                out = s->user_events;
            },
            [&](caf::error& e) { ADD_FAILURE() << sys->render(e); });
    return out;
  }

  void role(caf::scoped_actor& self, std::size_t k, std::uint64_t epoch, bool primary,
            std::vector<std::size_t> followers = {}) {
    std::vector<caf::actor> handles;
    std::vector<std::uint32_t> nodes;
    for (auto f : followers) {
      handles.push_back(shards[f]);
      nodes.push_back(static_cast<std::uint32_t>(f));
    }
    self->send(shards[k], role_atom::value, epoch, primary, handles, nodes);
  }
};

TEST_F(Replicas, AcknowledgedOnceEveryFollowerHasItStoredOnceFencedAfterFailover) {
  caf::scoped_actor self{*sys};
  std::string err;
  // Before any role no shard takes a write.
  EXPECT_EQ(ingest(self, 0, batch(1, 0, 10), &err), -1);
  EXPECT_NE(err.find("not its primary"), std::string::npos) << err;

  role(self, 0, 1, true, {1, 2});
  role(self, 1, 1, false);
  role(self, 2, 1, false);
  const auto first = batch(11, 0, 10);
  ASSERT_EQ(ingest(self, 0, first, &err), 10) << err;
  // Acknowledged: both followers have it.
  EXPECT_EQ(events(self, 0), 10u);
  EXPECT_EQ(events(self, 1), 10u);
  EXPECT_EQ(events(self, 2), 10u);
  // Sent again (a lost acknowledgement): answered as before, stored once.
  EXPECT_EQ(ingest(self, 0, first, &err), 10) << err;
  EXPECT_EQ(events(self, 0), 10u);
  EXPECT_EQ(events(self, 1), 10u);
  // A follower refuses client writes.
  EXPECT_EQ(ingest(self, 1, batch(12, 100, 5), &err), -1);
  EXPECT_NE(err.find("[moved]"), std::string::npos) << err;

  // Failover: shard 1 is the primary of epoch 2 with follower 2; shard 0
  // was not told (frozen, cut off) and still takes a write as epoch 1.
  role(self, 1, 2, true, {2});
  role(self, 2, 2, false);
  EXPECT_EQ(ingest(self, 0, batch(13, 200, 5), &err), -1);
  EXPECT_NE(err.find("no longer its primary"), std::string::npos) << err;
  EXPECT_EQ(events(self, 1), 10u);
  EXPECT_EQ(events(self, 2), 10u);
  // And it takes none after that.
  EXPECT_EQ(ingest(self, 0, batch(14, 300, 5), &err), -1);
  EXPECT_NE(err.find("not its primary"), std::string::npos) << err;

  // The new primary takes writes; the first batch sent to it again (the
  // client's retry after the failover) is stored once.
  ASSERT_EQ(ingest(self, 1, batch(15, 400, 7), &err), 7) << err;
  EXPECT_EQ(ingest(self, 1, first, &err), 10) << err;
  EXPECT_EQ(events(self, 1), 17u);
  EXPECT_EQ(events(self, 2), 17u);
}

TEST_F(Replicas, AFollowerBeyondTheTailIsReportedAndWritesWaitUntilTheMapDropsIt) {
  caf::scoped_actor self{*sys};
  std::string err;
  role(self, 0, 1, true, {1});
  role(self, 1, 1, false);
  ASSERT_EQ(ingest(self, 0, batch(21, 0, 4), &err), 4) << err;
  // Shard 3 joins as a follower with nothing: the primary's tail no longer
  // has the first record (every follower confirmed it).
  role(self, 3, 1, false);
  role(self, 0, 1, true, {1, 3});
  // This write waits for shard 3, which cannot catch up: the primary
  // reports it to the role's sender (here: the test, as the membership).
  std::uint32_t reported = 99;
  auto pending = self->request(shards[0], 20s, ingest_atom::value, batch(22, 10, 3));
  self->receive(
      [&](lagging_atom, std::uint32_t p, std::uint32_t node, std::uint64_t e) {
        EXPECT_EQ(p, 0u);
        EXPECT_EQ(e, 1u);
        reported = node;
      },
      caf::after(std::chrono::seconds(5)) >> [] {});
  EXPECT_EQ(reported, 3u);
  // The map drops it: the write is acknowledged.
  role(self, 0, 1, true, {1});
  long accepted = -1;
  pending.receive(
      [&](const frame& r) {
        if (auto d = decode_ingest_result(r))
          accepted = static_cast<long>(d->accepted);
      },
      [&](caf::error& e) { ADD_FAILURE() << sys->render(e); });
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(events(self, 1), 7u);
  EXPECT_EQ(events(self, 3), 0u);
}

// R = 3 after a failover: the new primary (shard 2) lacked a record that
// follower 1 has from the old primary, and wrote on. Follower 1's log is
// diverged: it is reported, confirms nothing, stores none of the new
// primary's records (they would sit after a record the primary does not
// have), and a write waits until the map drops it.
TEST_F(Replicas, AFollowerThatDivergedInAFailoverIsReportedAndTakesNoRecords) {
  caf::scoped_actor self{*sys};
  std::string err;
  role(self, 0, 1, true, {1});
  role(self, 1, 1, false);
  role(self, 2, 1, false);
  ASSERT_EQ(ingest(self, 0, batch(31, 0, 4), &err), 4) << err; // 0 and 1 only
  // Shard 2 is made the primary of epoch 2 (alone) and takes three batches.
  role(self, 2, 2, true);
  for (std::uint64_t b = 0; b < 3; ++b)
    ASSERT_EQ(ingest(self, 2, batch(32 + b, 100 + 10 * static_cast<int>(b), 2), &err), 2)
        << err;
  EXPECT_EQ(events(self, 2), 6u);
  // Shard 1 follows it in epoch 2: its record 2 is of epoch 1, the
  // primary's record 2 of epoch 2.
  role(self, 1, 2, false);
  std::uint32_t reported = 99;
  auto pending = self->request(shards[2], 20s, ingest_atom::value, batch(35, 200, 3));
  role(self, 2, 2, true, {1});
  self->receive(
      [&](lagging_atom, std::uint32_t p, std::uint32_t node, std::uint64_t e) {
        EXPECT_EQ(p, 0u);
        EXPECT_EQ(e, 2u);
        reported = node;
      },
      caf::after(std::chrono::seconds(5)) >> [] {});
  EXPECT_EQ(reported, 1u);
  EXPECT_EQ(events(self, 1), 4u); // none of the new primary's records
  role(self, 2, 2, true);         // the map drops it
  long accepted = -1;
  pending.receive(
      [&](const frame& r) {
        if (auto d = decode_ingest_result(r))
          accepted = static_cast<long>(d->accepted);
      },
      [&](caf::error& e) { ADD_FAILURE() << sys->render(e); });
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(events(self, 2), 9u);
  EXPECT_EQ(events(self, 1), 4u);

  // A request from a primary of an epoch this follower has no role of yet
  // is refused; a record that does not decode is refused whole, and the
  // follower's log is unchanged.
  role(self, 3, 2, false);
  auto ask = [&](std::uint64_t epoch, std::uint64_t first, std::uint64_t prev,
                 std::vector<std::uint32_t> kinds, std::vector<frame> records,
                 std::uint64_t* last, std::uint64_t* last_epoch) {
    std::string out;
    self->request(shards[3], 5s, replicate_atom::value, epoch, first, prev, kinds,
                  records)
        .receive(
            [&](std::uint64_t l, std::uint64_t e) {
              *last = l;
              *last_epoch = e;
            },
            [&](caf::error& e) { out = sys->render(e); });
    return out;
  };
  std::uint64_t last = 99, last_epoch = 99;
  EXPECT_NE(ask(3, 1, 0, {}, {}, &last, &last_epoch).find("no role of epoch 3"),
            std::string::npos);
  EXPECT_EQ(ask(2, 1, 0, {}, {}, &last, &last_epoch), "");
  EXPECT_EQ(last, 0u);
  frame garbage;
  garbage.bytes = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_NE(ask(2, 1, 0, {record_events, record_events}, {batch(36, 300, 2), garbage},
                &last, &last_epoch)
                .find("record 2 from its primary"),
            std::string::npos);
  EXPECT_EQ(events(self, 3), 0u);
  EXPECT_EQ(ask(2, 1, 0, {record_events}, {batch(36, 300, 2)}, &last, &last_epoch), "");
  EXPECT_EQ(last, 1u);
  EXPECT_EQ(events(self, 3), 2u);
}

// A follower the map lists whose node was not reachable (a null handle)
// confirms nothing: a write waits; the follower is reported and the write
// is acknowledged once the map drops it.
TEST_F(Replicas, AListedFollowerThatCannotBeReachedHoldsWritesUntilTheMapDropsIt) {
  caf::scoped_actor self{*sys};
  std::string err;
  self->send(shards[0], role_atom::value, std::uint64_t{1}, true,
             std::vector<caf::actor>{caf::actor{}}, std::vector<std::uint32_t>{7});
  auto pending = self->request(shards[0], 30s, ingest_atom::value, batch(41, 0, 5));
  std::uint32_t reported = 99;
  self->receive([&](lagging_atom, std::uint32_t, std::uint32_t node,
                    std::uint64_t) { reported = node; },
                caf::after(std::chrono::seconds(20)) >> [] {});
  EXPECT_EQ(reported, 7u);
  role(self, 0, 1, true); // dropped
  long accepted = -1;
  pending.receive(
      [&](const frame& r) {
        if (auto d = decode_ingest_result(r))
          accepted = static_cast<long>(d->accepted);
      },
      [&](caf::error& e) { err = sys->render(e); });
  // Acknowledged once dropped, or told to send it again (ack_wait passed
  // while it waited): never acknowledged while the follower was listed.
  if (accepted == -1) {
    EXPECT_NE(err.find("send it again"), std::string::npos) << err;
    EXPECT_EQ(ingest(self, 0, batch(41, 0, 5), &err), 5) << err;
  }
  EXPECT_EQ(events(self, 0), 5u);
}

// A node restarted within its lease is still named primary of the epoch its
// log holds: its shard takes no write in that epoch (a follower may hold
// records its log lost) and asks for a new one; with the new epoch it takes
// writes again and keeps what it had.
TEST(Restart, APrimaryBackWithinItsLeaseAsksForANewEpochBeforeItTakesWrites) {
  caf::actor_system_config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  const auto dir = std::filesystem::temp_directory_path()
                   / ("shardrec-restart-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  durability dur;
  dur.data_dir = dir.string();
  dur.await_role = true;
  caf::scoped_actor self{sys};
  auto write = [&](caf::actor& shard, std::uint64_t id, std::string* err) {
    long out = -1;
    self->request(shard, 5s, ingest_atom::value, restart_batch(id))
        .receive(
            [&](const frame& r) {
              if (auto d = decode_ingest_result(r))
                out = static_cast<long>(d->accepted);
            },
            [&](caf::error& e) { *err = sys.render(e); });
    return out;
  };
  auto role = [&](caf::actor& shard, std::uint64_t epoch) {
    self->send(shard, role_atom::value, epoch, true, std::vector<caf::actor>{},
               std::vector<std::uint32_t>{});
  };
  auto recover = [&] {
    auto rec = recover_partition(dur, 0, 1);
    EXPECT_TRUE(rec.ok()) << rec.err().message;
    return std::make_shared<recovered_partition>(std::move(*rec));
  };
  std::string err;
  {
    auto shard = caf::actor_cast<caf::actor>(
        spawn_shard(sys, 0, 1, 4, caf::actor{}, dur, recover()));
    role(shard, 1);
    ASSERT_EQ(write(shard, 51, &err), 3) << err;
    self->send_exit(shard, caf::exit_reason::user_shutdown);
    self->wait_for(shard);
  }
  auto shard = caf::actor_cast<caf::actor>(
      spawn_shard(sys, 0, 1, 4, caf::actor{}, dur, recover()));
  role(shard, 1);
  std::uint32_t reported = 99;
  std::uint64_t reported_epoch = 0;
  self->receive(
      [&](lagging_atom, std::uint32_t, std::uint32_t node, std::uint64_t e) {
        reported = node;
        reported_epoch = e;
      },
      caf::after(std::chrono::seconds(5)) >> [] {});
  EXPECT_EQ(reported, 4u); // its own node
  EXPECT_EQ(reported_epoch, 1u);
  EXPECT_EQ(write(shard, 52, &err), -1);
  EXPECT_NE(err.find("not its primary"), std::string::npos) << err;
  role(shard, 1); // the same map installed again: still no writes
  err.clear();
  EXPECT_EQ(write(shard, 53, &err), -1) << err;
  role(shard, 2); // the controller's new epoch
  err.clear();
  EXPECT_EQ(write(shard, 54, &err), 3) << err;
  std::uint64_t events = 0;
  self->request(shard, 5s, stats_atom::value)
      .receive(
          [&](const frame& f) {
            if (auto s = decode_partition_status(f))
              events = s->user_events;
          },
          [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(events, 6u);
  self->send_exit(shard, caf::exit_reason::user_shutdown);
  self->wait_for(shard);
  std::filesystem::remove_all(dir);
}

// The epoch history (which epoch's primary wrote each record) survives a
// snapshot and the log replay after it.
TEST(EpochHistory, SurvivesASnapshotAndTheLogAfterIt) {
  const auto dir = std::filesystem::temp_directory_path()
                   / ("shardrec-epochs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  durability dur;
  dur.data_dir = dir.string();
  auto mark = [](std::uint64_t epoch) {
    std::string out;
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>((epoch >> (8 * i)) & 0xff));
    return out;
  };
  {
    auto rec = recover_partition(dur, 0, 1);
    ASSERT_TRUE(rec.ok()) << rec.err().message;
    std::uint64_t count = 0;
    for (std::uint64_t epoch : {3u, 5u}) {
      if (epoch == 5) {
        ASSERT_TRUE(write_partition_snapshot(dur, rec->data, *rec->log).ok());
      }
      const auto payload = mark(epoch);
      auto seq = rec->log->append(record_epoch, payload);
      ASSERT_TRUE(seq.ok());
      ASSERT_TRUE(
          apply_record(rec->data, *seq, record_epoch, payload, &count, nullptr).ok());
      auto more = rec->log->append(record_epoch, mark(1)); // older: not a new epoch
      ASSERT_TRUE(more.ok());
    }
    ASSERT_TRUE(rec->log->sync().ok());
  }
  auto again = recover_partition(dur, 0, 1);
  ASSERT_TRUE(again.ok()) << again.err().message;
  EXPECT_EQ(again->replayed, 2u); // epoch 5's marker and the one after it
  const auto& h = again->data.epochs;
  EXPECT_EQ(h.at(0), 0u);
  EXPECT_EQ(h.at(1), 3u);
  EXPECT_EQ(h.at(2), 3u);
  EXPECT_EQ(h.at(3), 5u);
  EXPECT_EQ(h.at(100), 5u);
  EXPECT_EQ(h.last(), 5u);
  std::filesystem::remove_all(dir);
}

// The batch ids a partition stored survive a snapshot that covers their
// log records (a move copies such a folder; a restart loads it): a batch
// sent again afterwards is still known.
TEST(BatchWindow, SurvivesASnapshotThatCoversItsRecords) {
  const auto dir = std::filesystem::temp_directory_path()
                   / ("shardrec-batches-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  durability dur;
  dur.data_dir = dir.string();
  {
    auto rec = recover_partition(dur, 0, 1);
    ASSERT_TRUE(rec.ok()) << rec.err().message;
    event_batch b;
    b.id = 77;
    for (const char* u : {"u1", "u2", "u3"}) {
      dist::raw_event e;
      e.user = u;
      e.item = "i";
      b.events.push_back(e);
    }
    const auto f = encode(b);
    const std::string_view payload(reinterpret_cast<const char*>(f.bytes.data()),
                                   f.bytes.size());
    auto seq = rec->log->append(record_events, payload);
    ASSERT_TRUE(seq.ok());
    std::uint64_t count = 0;
    ASSERT_TRUE(
        apply_record(rec->data, *seq, record_events, payload, &count, nullptr).ok());
    ASSERT_TRUE(rec->log->sync().ok());
    ASSERT_TRUE(write_partition_snapshot(dur, rec->data, *rec->log).ok());
  }
  auto again = recover_partition(dur, 0, 1);
  ASSERT_TRUE(again.ok()) << again.err().message;
  EXPECT_EQ(again->replayed, 0u); // the snapshot covers the record
  const auto* seen = again->data.batches.find(77);
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen->accepted, 3u);
  EXPECT_EQ(seen->seq, 1u);
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace shardrec::actors
