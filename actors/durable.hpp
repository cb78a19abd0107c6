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
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  // With --etcd: a shard takes writes only once its node's membership gave
  // it a role (primary) in the current map, never on what a restart found.
  bool await_role = false;
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
// A primary of a new epoch starts here (8 bytes, little-endian: the epoch).
// The first record a shard writes once the map makes it a partition's
// primary; its followers store it as any record, so every copy of a log
// knows which epoch's primary wrote each record (epoch_history).
inline constexpr std::uint8_t record_epoch = 4;

// Which epoch's primary wrote each log record: epoch E's records start at
// its record_epoch marker and run to the next one (Kafka's leader epochs).
// Two copies of a log that hold the same record number from the same epoch
// hold the same records up to it, since a follower appends a record only
// after its last one matched its primary's (actors/replica.cpp); a follower
// that holds a record of an epoch its primary does not is diverged and is
// copied anew. A log of a release without markers is all epoch 0.
struct epoch_history {
  struct start {
    std::uint64_t epoch = 0, seq = 0; // epoch `epoch` from record `seq` on
  };
  std::vector<start> starts; // increasing in both
  // The epoch of record seq (0 before the first marker).
  std::uint64_t at(std::uint64_t seq) const {
    std::uint64_t e = 0;
    for (const auto& s : starts) {
      if (s.seq > seq)
        break;
      e = s.epoch;
    }
    return e;
  }
  std::uint64_t last() const { return starts.empty() ? 0 : starts.back().epoch; }
  void add(std::uint64_t epoch, std::uint64_t seq) {
    if (epoch > last() && (starts.empty() || seq > starts.back().seq))
      starts.push_back({epoch, seq});
  }
};

// The batches a partition stored lately, by their senders' batch ids
// (event_batch::id): a batch sent again because its acknowledgement was
// lost (a timeout, a failover) is stored once. The newest `capacity` ids;
// rebuilt from the log on recovery (not from snapshots: a batch sent again
// across a restart and a snapshot is stored twice).
struct batch_window {
  struct entry {
    std::uint64_t seq = 0; // its log record
    std::uint64_t accepted = 0, rejected = 0;
  };
  static constexpr std::size_t capacity = 1u << 16;
  const entry* find(std::uint64_t id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &it->second;
  }
  void add(std::uint64_t id, entry e) {
    if (id == 0 || !by_id.emplace(id, e).second)
      return;
    order.push_back(id);
    if (order.size() > capacity) {
      by_id.erase(order.front());
      order.pop_front();
    }
  }
  std::unordered_map<std::uint64_t, entry> by_id;
  std::deque<std::uint64_t> order;
};

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
  batch_window batches;
  epoch_history epochs; // in every snapshot, then from the log's markers
};

// Starts the live item side over for d.model over d.store (after a publish
// or a recovery).
inline void reset_live(partition_data& d) {
  d.live.reset(*d.store, d.model);
}

// Stores a batch's events (the same on arrival and on replay).
ingest_result apply_events(partition_data& d, const event_batch& b);
ingest_result apply_items(partition_data& d, item_batch b);

// A snapshot of `d` that covers log records through `seq` (the bytes of a
// snapshot file's payload), and its reading into `d` (`path`: what an error
// names); `seq` gets the record it covers.
std::string snapshot_bytes(const partition_data& d, std::uint64_t seq);
core::status load_snapshot_bytes(std::string_view bytes, const std::string& path,
                                 std::uint32_t partition, std::uint32_t partitions,
                                 partition_data& d, std::uint64_t& seq);

// A log record decoded (decode_record): a follower decodes what its primary
// sends before it stores it, so a record that does not decode never reaches
// its log.
struct decoded_record {
  std::uint8_t kind = 0;
  event_batch events;      // record_events
  item_batch items;        // record_items
  std::uint64_t value = 0; // record_publish: the version; record_epoch: the epoch
};
core::result<decoded_record> decode_record(std::uint8_t kind, const frame& payload);

// The payload of record_publish and record_epoch: v, 8 bytes little-endian.
frame u64_record(std::uint64_t v);

// Applies log record `seq` (kind record_*, payload its frame) as a replay
// does: on recovery and on a follower that receives it from its primary.
// Adds its events or items to *count; notes (may be null) gets what a reader
// of the node's log should know.
core::status apply_record(partition_data& d, std::uint64_t seq, std::uint8_t kind,
                          std::string_view payload, std::uint64_t* count,
                          std::vector<std::string>* notes);
// The same for a record already decoded.
void apply_decoded(partition_data& d, std::uint64_t seq, decoded_record r,
                   std::uint64_t* count, std::vector<std::string>* notes);

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
