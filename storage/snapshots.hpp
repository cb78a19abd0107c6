// A partition's snapshots: checksummed blob files (storage/files.hpp) named
// by the last log record they cover, "snap-<20 digits>.snap", written
// atomically. The newest `keep` stay; a restart reads the newest good one
// and falls back to the one before when it is corrupt, so the log is
// trimmed only up to the oldest kept snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace shardrec::storage {

struct snapshot_file {
  std::uint64_t seq = 0; // last log record it covers
  std::string path;
};

// Snapshots in `dir`, newest first (a missing folder: none).
std::vector<snapshot_file> list_snapshots(const std::string& dir);

// Writes the snapshot covering records up to `seq`, then removes all but the
// newest `keep` (>= 1). Returns the oldest kept snapshot's seq: log records
// up to it may go.
core::result<std::uint64_t> write_snapshot(const std::string& dir, std::uint64_t seq,
                                           std::string_view payload,
                                           std::size_t keep = 2);

} // namespace shardrec::storage
