// One partition's write-ahead log: what a shard appends before it
// acknowledges an event batch or item batch, and replays after a restart.
//
// On disk: a folder of segment files named by the sequence number of their
// first record (20 digits, ".log"). A record is a 24-byte header followed by
// its payload:
//   u32 payload length | u32 CRC-32 of bytes 8..23 and the payload |
//   u64 sequence number | u8 kind | 7 zero bytes
// (little-endian). Sequence numbers are partition-local, start at 1 and grow
// by one per record with no gap, across segments; replicas and partition
// moves will ship the log by them. The payload is the record's Cap'n Proto
// frame as the shard received it (kind says which: actors/ decides; storage/
// only keeps bytes).
//
// open() reads every segment in order and stops at the first record that is
// incomplete (a torn write: the process died mid-append) or fails its
// checksum, length, padding or sequence check: it cuts the segment there
// (ftruncate + fsync), removes any later segment, and reports each cut with
// file and offset. Everything before the cut is replayed.
//
// Durability is the caller's choice: append() leaves the record in the
// operating system's cache (a crash of the process loses nothing, a crash
// of the machine may); sync() makes every appended record durable
// (fdatasync, plus the folder after a new segment). A shard appends a whole
// mailbox of batches, then syncs once (group commit).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace shardrec::storage {

using core::result;
using core::status;

// When an acknowledged record is on disk:
//   always  acknowledged after fdatasync (group commit: batches that arrive
//           together share one sync). The default.
//   batch   acknowledged after write(2); synced at most `interval` later:
//           survives a crash of the process, may lose that interval on a
//           crash of the machine.
//   none    acknowledged after write(2); never synced by us (the operating
//           system writes it back when it likes).
enum class sync_mode { always, batch, none };
result<sync_mode> parse_sync_mode(std::string_view s);
const char* to_string(sync_mode m);

struct log_options {
  std::uint64_t segment_bytes = 64ull << 20; // a new segment once one is this big
};

class partition_log {
public:
  struct recovery {
    std::uint64_t replayed = 0;     // records passed to replay (seq > after)
    std::uint64_t last_seq = 0;     // of the last good record (or `after`)
    std::vector<std::string> notes; // one line per cut: file, offset, reason
  };
  // fn(seq, kind, payload) for each good record with seq > after, in order;
  // an error from fn stops open() with that error.
  using replay_fn = std::function<status(std::uint64_t seq, std::uint8_t kind,
                                         std::string_view payload)>;

  // Opens the log in `dir` (created if missing), cuts a bad tail, replays.
  // `after`: the last record a snapshot already covers (0: none). Fails if
  // records after `after` are missing (the log starts later), naming both.
  static result<partition_log> open(const std::string& dir, std::uint64_t after,
                                    const replay_fn& fn, recovery* out,
                                    log_options opt = {});

  partition_log(partition_log&& o) noexcept;
  partition_log& operator=(partition_log&& o) noexcept;
  partition_log(const partition_log&) = delete;
  partition_log& operator=(const partition_log&) = delete;
  ~partition_log();

  // Appends one record (in the OS cache on return); returns its sequence
  // number. On a failed write the segment is cut back: nothing half-written
  // stays.
  result<std::uint64_t> append(std::uint8_t kind, std::string_view payload);
  // Makes every appended record durable.
  status sync();
  bool dirty() const { return dirty_; }
  // After a failed sync (or a write that could not be undone) the log takes
  // no more records and sync() fails: the node must restart and recover.
  bool failed() const { return !failed_.empty(); }
  std::uint64_t last_seq() const { return last_seq_; }
  // Removes the segments whose every record has a sequence number <= seq
  // (a snapshot covers them); never the segment being written.
  status remove_through(std::uint64_t seq);
  // Bytes of every segment on disk.
  std::uint64_t disk_bytes() const;
  const std::string& dir() const { return dir_; }

  static constexpr std::size_t header_bytes = 24;
  static constexpr std::uint32_t max_payload = 1u << 30;

private:
  partition_log() = default;
  status start_segment();
  void close_fd();

  std::string dir_;
  log_options opt_;
  int fd_ = -1;
  std::string active_; // path of the segment being written
  std::uint64_t active_bytes_ = 0;
  std::vector<std::uint64_t> firsts_; // first seq of every segment, ascending
  std::uint64_t last_seq_ = 0;
  bool dirty_ = false;
  bool dir_dirty_ = false;
  std::string failed_; // why the log stopped; empty: fine
};

} // namespace shardrec::storage
