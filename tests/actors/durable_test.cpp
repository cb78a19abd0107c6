// Recovery of one partition from its data folder (actors/durable.hpp), in
// one process: the log alone, a snapshot and the log after it, a corrupt
// newest snapshot (moved aside, the one before used), and a publish whose
// snapshot was never written (said so).
#include "actors/durable.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/codec.hpp"
#include "storage/snapshots.hpp"

namespace shardrec::actors {
namespace {

namespace fs = std::filesystem;

class Durable : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shardrec-durable-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dur.data_dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dur.data_dir); }

  static event_batch batch(int b) {
    event_batch out;
    for (int k = 0; k < 5; ++k) {
      dist::raw_event e;
      e.user = "u" + std::to_string((b * 5 + k) % 7);
      e.item = "i" + std::to_string((b * 3 + k) % 11);
      e.value = static_cast<float>(1 + k);
      e.timestamp = 1000 * b + k;
      out.events.push_back(e);
    }
    return out;
  }

  // Stores batches [from, to) as a shard does: log, then apply.
  void ingest(recovered_partition& r, int from, int to) {
    for (int b = from; b < to; ++b) {
      const auto f = encode(batch(b));
      ASSERT_TRUE(
          r.log
              ->append(record_events,
                       std::string_view(reinterpret_cast<const char*>(f.bytes.data()),
                                        f.bytes.size()))
              .ok());
      apply_events(r.data, batch(b));
    }
    ASSERT_TRUE(r.log->sync().ok());
  }

  recovered_partition recover() {
    auto r = recover_partition(dur, 0, 1);
    EXPECT_TRUE(r.ok()) << r.err().message;
    return std::move(*r);
  }

  static std::vector<std::int64_t> timestamps(const recovered_partition& r) {
    std::vector<std::int64_t> out;
    for (const auto& e : r.data.store->user_side_events())
      out.push_back(e.timestamp);
    return out;
  }

  durability dur;
};

TEST_F(Durable, TheLogAloneGivesBackEveryEvent) {
  {
    auto r = recover();
    ingest(r, 0, 20);
  }
  auto r = recover();
  EXPECT_EQ(r.data.store->user_events(), 100u);
  EXPECT_EQ(r.snapshot_seq, 0u);
  EXPECT_EQ(r.replayed, 20u);
  EXPECT_EQ(r.replayed_events, 100u);
}

TEST_F(Durable, ASnapshotAndTheLogAfterItGiveTheSameStore) {
  std::vector<std::int64_t> want;
  {
    auto r = recover();
    ingest(r, 0, 10);
    r.data.store->build(core::merge_policy::sum);
    ASSERT_TRUE(write_partition_snapshot(dur, r.data, *r.log).ok());
    ingest(r, 10, 15);
    want = timestamps(r);
  }
  auto r = recover();
  EXPECT_EQ(r.snapshot_seq, 10u);
  EXPECT_EQ(r.replayed, 5u);
  EXPECT_EQ(timestamps(r), want);
  EXPECT_FALSE(
      r.data.store->built_with(core::merge_policy::sum)); // events since the build
  EXPECT_TRUE(r.notes.empty());
}

TEST_F(Durable, ACorruptNewestSnapshotIsMovedAsideAndTheOneBeforeUsed) {
  std::vector<std::int64_t> want;
  {
    auto r = recover();
    ingest(r, 0, 5);
    ASSERT_TRUE(write_partition_snapshot(dur, r.data, *r.log).ok());
    ingest(r, 5, 10);
    ASSERT_TRUE(write_partition_snapshot(dur, r.data, *r.log).ok());
    ingest(r, 10, 12);
    want = timestamps(r);
  }
  const auto snaps = storage::list_snapshots(partition_dir(dur, 0) + "/snapshots");
  ASSERT_EQ(snaps.size(), 2u);
  {
    std::fstream f(snaps[0].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.write("garbage!", 8);
  }
  auto r = recover();
  EXPECT_EQ(r.snapshot_seq, 5u);
  EXPECT_EQ(timestamps(r), want);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("snapshot skipped"), std::string::npos) << r.notes[0];
  EXPECT_TRUE(fs::exists(snaps[0].path + ".corrupt"));
  EXPECT_EQ(storage::list_snapshots(partition_dir(dur, 0) + "/snapshots").size(), 1u);
}

TEST_F(Durable, APublishWhoseSnapshotWasNeverWrittenIsSaid) {
  {
    auto r = recover();
    ingest(r, 0, 3);
    const std::string v("\x07\0\0\0\0\0\0\0", 8); // version 7
    ASSERT_TRUE(r.log->append(record_publish, v).ok());
    ASSERT_TRUE(r.log->sync().ok());
  }
  auto r = recover();
  EXPECT_EQ(r.data.store->user_events(), 15u);
  EXPECT_EQ(r.data.model_version, 0u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("model version 7 was published but its snapshot was never "
                            "written: serving no model"),
            std::string::npos)
      << r.notes[0];
}

TEST_F(Durable, ALoneEventKeepsThePartitionsRatingScale) {
  auto r = recover();
  auto b = batch(0);
  b.scale = {0.5f, 10.0f};
  apply_events(r.data, b);
  auto lone = batch(1);
  lone.has_scale = false;
  apply_events(r.data, lone);
  EXPECT_EQ(r.data.scale.min, 0.5f);
  EXPECT_EQ(r.data.scale.max, 10.0f);
}

} // namespace
} // namespace shardrec::actors
