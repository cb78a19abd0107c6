// A shard's durable state: how a partition's events and item attributes
// reach its write-ahead log (storage/partition_log.hpp) before they are
// acknowledged, how its snapshots are made, and how a restarted node gets
// its partitions back (newest good snapshot, then the log after it).
//
// On disk, per partition: DATA_DIR/partitions/pNNNNN/log/ (segments) and
// DATA_DIR/partitions/pNNNNN/snapshots/ (snap-SEQ.snap). A log record's
// payload is the EventBatch or ItemBatch frame (schema/events.capnp) as the
// shard received it; a snapshot is a PartitionSnapshot (schema/snapshot.capnp):
// the store, its id maps and the model it serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/frame.hpp"
#include "actors/messages.hpp"
#include "core/error.hpp"
#include "dist/live_items.hpp"
#include "dist/partition_store.hpp"
#include "dist/training.hpp"
#include "storage/partition_log.hpp"

namespace shardrec::actors {

struct durability {
  std::string data_dir; // empty: nothing is written (in-process tests)
  storage::sync_mode sync = storage::sync_mode::always;
  // Events a partition takes between snapshots (0: only after training).
  std::uint64_t snapshot_every = 1'000'000;
  // --sync batch: the longest an acknowledged record waits for its sync.
  std::chrono::milliseconds batch_interval{10};
  std::uint64_t segment_bytes = 64ull << 20;
};

// DATA_DIR/partitions/pNNNNN; empty without a data folder.
std::string partition_dir(const durability& d, std::uint32_t partition);

// Log record kinds.
inline constexpr std::uint8_t record_events = 1; // EventBatch frame
inline constexpr std::uint8_t record_items = 2;  // ItemBatch frame
// A model version was published (8 bytes, little-endian); the snapshot
// that follows makes the model durable. Replayed, it means that snapshot
// was never written: recovery says so.
inline constexpr std::uint8_t record_publish = 3;

// What a partition holds apart from training sessions; the shard's state
// and recovery share these fields.
struct partition_data {
  std::unique_ptr<dist::partition_store> store;
  bool ratings_only = true; // every event so far is a rating
  core::rating_scale scale; // of the latest event batch: predictions are clamped to it
  std::uint64_t model_version = 0; // of the served model; 0: none
  dist::served_models model;       // null scorer: none yet
  // The item side's counters and new items between trainings, kept by
  // apply_events / apply_items and reset for each model (reset_live).
  dist::live_items live;
};

// Starts the live item side over for d.model over d.store (after a publish
// or a recovery).
inline void reset_live(partition_data& d) {
  d.live.reset(*d.store, d.model);
}

// Stores a batch's events (the same on arrival and on replay).
ingest_result apply_events(partition_data& d, const event_batch& b);
ingest_result apply_items(partition_data& d, item_batch b);

struct recovered_partition {
  partition_data data;
  std::unique_ptr<storage::partition_log> log; // null without a data folder
  std::uint64_t snapshot_seq = 0;              // of the snapshot loaded (0: none)
  std::uint64_t replayed = 0;                  // log records after it
  std::uint64_t replayed_events = 0;           // events and items in those records
  std::vector<std::string> notes; // cuts, skipped snapshots: for the node's log
};

// An empty partition without a data folder; else the newest good snapshot
// (a corrupt one is skipped with a note) and the log after it. Fails, naming
// the folder, when the log cannot be opened or records are missing.
core::result<recovered_partition>
recover_partition(const durability& d, std::uint32_t partition, std::uint32_t partitions);

// Writes a snapshot of `d` covering `log`'s records so far and trims the
// log to the oldest snapshot kept. Returns the snapshot's size in bytes.
core::result<std::uint64_t> write_partition_snapshot(const durability& dur,
                                                     const partition_data& d,
                                                     storage::partition_log& log);

} // namespace shardrec::actors
