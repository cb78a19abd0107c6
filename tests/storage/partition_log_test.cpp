#include "storage/partition_log.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/files.hpp"
#include "storage/snapshots.hpp"

namespace {

namespace fs = std::filesystem;
using namespace shardrec::storage;

struct record {
  std::uint64_t seq;
  std::uint8_t kind;
  std::string payload;
};

class LogTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shardrec-log-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { fs::remove_all(dir); }

  // Opens the log, collecting what it replays.
  partition_log open(std::vector<record>& got, partition_log::recovery* rec = nullptr,
                     std::uint64_t after = 0, log_options opt = {}) {
    auto log = partition_log::open(
        dir, after,
        [&](std::uint64_t seq, std::uint8_t kind, std::string_view p) {
          got.push_back({seq, kind, std::string(p)});
          return shardrec::core::status{};
        },
        rec, opt);
    if (!log)
      throw std::runtime_error(log.err().message);
    return std::move(*log);
  }

  static std::string payload(int i) {
    return "record " + std::to_string(i)
           + std::string(static_cast<std::size_t>(i % 7), 'x');
  }

  // A fresh log holding records 1..n (payload(i), kind 1), synced.
  void write_records(int n, log_options opt = {}) {
    std::vector<record> none;
    auto log = open(none, nullptr, 0, opt);
    for (int i = 1; i <= n; ++i)
      ASSERT_TRUE(log.append(1, payload(i)).ok());
    ASSERT_TRUE(log.sync().ok());
  }

  std::vector<std::string> segments() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".log")
        out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir;
};

TEST_F(LogTest, ReplaysEveryAppendedRecordInOrderAfterReopen) {
  {
    std::vector<record> none;
    auto log = open(none);
    EXPECT_TRUE(none.empty());
    for (int i = 1; i <= 100; ++i) {
      auto seq = log.append(static_cast<std::uint8_t>(i % 3), payload(i));
      ASSERT_TRUE(seq.ok());
      EXPECT_EQ(*seq, static_cast<std::uint64_t>(i));
    }
    ASSERT_TRUE(log.sync().ok());
  }
  std::vector<record> got;
  partition_log::recovery rec;
  auto log = open(got, &rec);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 1; i <= 100; ++i) {
    EXPECT_EQ(got[i - 1].seq, static_cast<std::uint64_t>(i));
    EXPECT_EQ(got[i - 1].kind, i % 3);
    EXPECT_EQ(got[i - 1].payload, payload(i));
  }
  EXPECT_TRUE(rec.notes.empty());
  EXPECT_EQ(rec.last_seq, 100u);
  // Appends continue the sequence.
  EXPECT_EQ(*log.append(1, "next"), 101u);
}

TEST_F(LogTest, ReplaysOnlyRecordsAfterTheSnapshot) {
  write_records(10);
  std::vector<record> got;
  open(got, nullptr, 7);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.front().seq, 8u);
}

TEST_F(LogTest, ATornTailIsCutAtTheLastGoodRecordAndReported) {
  std::uint64_t good_size = 0;
  {
    std::vector<record> none;
    auto log = open(none);
    for (int i = 1; i <= 20; ++i)
      ASSERT_TRUE(log.append(1, payload(i)).ok());
    good_size = fs::file_size(segments().front());
    ASSERT_TRUE(log.append(1, payload(21)).ok());
  }
  // The process died in the middle of writing record 21.
  const auto seg = segments().front();
  fs::resize_file(seg, good_size + partition_log::header_bytes + 3);
  std::vector<record> got;
  partition_log::recovery rec;
  auto log = open(got, &rec);
  EXPECT_EQ(got.size(), 20u);
  ASSERT_EQ(rec.notes.size(), 1u);
  EXPECT_NE(rec.notes[0].find(seg), std::string::npos) << rec.notes[0];
  EXPECT_NE(rec.notes[0].find("torn record"), std::string::npos) << rec.notes[0];
  EXPECT_NE(rec.notes[0].find("offset " + std::to_string(good_size)), std::string::npos)
      << rec.notes[0];
  EXPECT_EQ(fs::file_size(seg), good_size);
  // The next record takes the cut one's number, and a reopen is clean.
  EXPECT_EQ(*log.append(1, "after the cut"), 21u);
  ASSERT_TRUE(log.sync().ok());
  std::vector<record> again;
  partition_log::recovery rec2;
  open(again, &rec2);
  EXPECT_EQ(again.size(), 21u);
  EXPECT_EQ(again.back().payload, "after the cut");
  EXPECT_TRUE(rec2.notes.empty());
}

TEST_F(LogTest, AFlippedByteCutsAtThatRecordAndReportsIt) {
  std::uint64_t offset_of_11 = 0;
  {
    std::vector<record> none;
    auto log = open(none);
    for (int i = 1; i <= 20; ++i) {
      if (i == 11)
        offset_of_11 = fs::file_size(segments().front());
      ASSERT_TRUE(log.append(1, payload(i)).ok());
    }
  }
  const auto seg = segments().front();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset_of_11 + partition_log::header_bytes + 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(static_cast<std::streamoff>(offset_of_11 + partition_log::header_bytes + 2));
    f.write(&c, 1);
  }
  std::vector<record> got;
  partition_log::recovery rec;
  open(got, &rec);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.back().payload, payload(10));
  ASSERT_EQ(rec.notes.size(), 1u);
  EXPECT_NE(rec.notes[0].find("checksum mismatch"), std::string::npos) << rec.notes[0];
  EXPECT_NE(rec.notes[0].find("offset " + std::to_string(offset_of_11)),
            std::string::npos)
      << rec.notes[0];
}

TEST_F(LogTest, SegmentsRollAndSnapshotsLetOldOnesGo) {
  log_options opt;
  opt.segment_bytes = 200;
  write_records(50, opt);
  const auto before = segments().size();
  EXPECT_GT(before, 5u);
  {
    std::vector<record> all;
    auto log = open(all, nullptr, 0, opt);
    ASSERT_TRUE(log.remove_through(30).ok());
    EXPECT_LT(segments().size(), before);
    // The first segment left holds record 31.
    EXPECT_LE(std::stoull(fs::path(segments().front()).stem().string()), 31u);
  }
  std::vector<record> got;
  partition_log::recovery rec;
  open(got, &rec, 30, opt);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got.front().seq, 31u);
  EXPECT_TRUE(rec.notes.empty());
  // Without the snapshot, the records before 31 are missing: an error, not a
  // silent partial replay.
  auto bad = partition_log::open(
      dir, 0,
      [](std::uint64_t, std::uint8_t, std::string_view) {
        return shardrec::core::status{};
      },
      nullptr, opt);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("are missing"), std::string::npos)
      << bad.err().message;
}

TEST_F(LogTest, ALostSegmentInTheMiddleCutsTheLogThereAndLaterRecordsSurvive) {
  log_options opt;
  opt.segment_bytes = 200;
  write_records(50, opt);
  auto segs = segments();
  ASSERT_GT(segs.size(), 3u);
  fs::remove(segs[1]);
  std::vector<record> got;
  partition_log::recovery rec;
  std::uint64_t last = 0;
  {
    auto log = open(got, &rec, 0, opt);
    EXPECT_FALSE(rec.notes.empty());
    ASSERT_FALSE(got.empty());
    EXPECT_LT(got.size(), 50u);
    for (std::size_t k = 0; k < got.size(); ++k)
      EXPECT_EQ(got[k].seq, k + 1);
    // Records written after the cut are acknowledged ones: a reopen keeps
    // them (the segment the cut emptied is gone, not reused under a name
    // that no longer matches).
    auto a = log.append(1, "after");
    auto b = log.append(1, "the cut");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(log.sync().ok());
    last = *b;
  }
  std::vector<record> again;
  partition_log::recovery rec2;
  open(again, &rec2, 0, opt);
  EXPECT_TRUE(rec2.notes.empty()) << rec2.notes.front();
  ASSERT_EQ(again.size(), got.size() + 2);
  EXPECT_EQ(again.back().seq, last);
  EXPECT_EQ(again.back().payload, "the cut");
}

TEST_F(LogTest, AnEmptyLogAfterASnapshotThatIsGoneIsMissingRecordsNotAFreshLog) {
  // The snapshot at 100 trimmed the log and left an empty segment 101;
  // recovery falls back to a snapshot at 50: records 51..100 are missing.
  { std::ofstream(dir + "/00000000000000000101.log"); }
  auto log = partition_log::open(
      dir, 50,
      [](std::uint64_t, std::uint8_t, std::string_view) {
        return shardrec::core::status{};
      },
      nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.err().message.find("51..100 are missing"), std::string::npos)
      << log.err().message;
}

TEST_F(LogTest, FileNamesThatAreNotOursAreSkipped) {
  write_records(3);
  { std::ofstream(dir + "/99999999999999999999.log") << "junk"; }
  { std::ofstream(dir + "/snap-99999999999999999999.snap") << "junk"; }
  std::vector<record> got;
  open(got);
  EXPECT_EQ(got.size(), 3u);
  EXPECT_TRUE(list_snapshots(dir).empty());
}

TEST_F(LogTest, SnapshotsKeepTheNewestTwoAndDetectCorruption) {
  for (std::uint64_t seq : {10, 20, 30}) {
    auto oldest = write_snapshot(dir, seq, "state at " + std::to_string(seq));
    ASSERT_TRUE(oldest.ok());
    EXPECT_EQ(*oldest, seq == 10 ? 10u : seq - 10);
  }
  auto snaps = list_snapshots(dir);
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0].seq, 30u);
  EXPECT_EQ(snaps[1].seq, 20u);
  auto good = read_blob(snaps[0].path);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "state at 30");
  {
    std::fstream f(snaps[0].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(18);
    f.write("Z", 1);
  }
  auto bad = read_blob(snaps[0].path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find(snaps[0].path), std::string::npos);
  EXPECT_NE(bad.err().message.find("checksum"), std::string::npos);
  fs::resize_file(snaps[1].path, 10);
  EXPECT_FALSE(read_blob(snaps[1].path).ok());
}

TEST_F(LogTest, ADataFolderTakesOneProcess) {
  auto first = dir_lock::acquire(dir);
  ASSERT_TRUE(first.ok());
  auto second = dir_lock::acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.err().message.find("in use"), std::string::npos);
}

TEST(SyncMode, ParsesTheThreeModesAndNamesABadOne) {
  EXPECT_EQ(*parse_sync_mode("always"), sync_mode::always);
  EXPECT_EQ(*parse_sync_mode("batch"), sync_mode::batch);
  EXPECT_EQ(*parse_sync_mode("none"), sync_mode::none);
  auto bad = parse_sync_mode("sometimes");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("sometimes"), std::string::npos);
}

} // namespace
