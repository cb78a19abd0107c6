// The shard actor's state, shared by its source files: shard.cpp
// (ingest, status and the query-time handlers) and shard_train.cpp (the
// training steps and the blocks shards exchange) and replica.cpp
// (acknowledgements, replication to followers). Private to those files.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/message_handler.hpp>
#include <caf/stateful_actor.hpp>

#include <caf/typed_response_promise.hpp>

#include "actors/durable.hpp"
#include "actors/frame.hpp"
#include "dist/partition_store.hpp"
#include "dist/training.hpp"

namespace shardrec::actors::detail {

struct shard_state {
  // The store (set at spawn, never null after), the served model (replaced
  // by the publish step; a null scorer: none yet) and what else a snapshot
  // holds.
  partition_data data;
  // A training run's copy of the store, frozen and built at its build step
  // (the sessions below refer to it; events go on into data.store), its
  // binarized copy, the live store's change count when copied and the
  // merge policy. Dropped at publish or abort.
  std::unique_ptr<dist::partition_store> train;
  std::unique_ptr<dist::partition_store> bin;
  std::uint64_t train_changes = 0;
  std::size_t train_user_events = 0; // the live store's user-side events then
  dist::merge_policy train_policy = dist::merge_policy::sum;
  std::uint32_t node_id = 0;

  // Durability (actors/durable.hpp): the log (null without a data folder),
  // the acknowledgements waiting for the next sync (group commit) and the
  // events taken since the last snapshot.
  durability dur;
  std::unique_ptr<storage::partition_log> log;
  // Acknowledgements that wait until their record (seq) is as durable as
  // --sync asks (synced_seq) and, on a primary, every follower confirmed
  // it; `done` sends the reply (or the error).
  struct waiting_ack {
    std::uint64_t seq = 0;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(const caf::error&)> done;
  };
  std::vector<waiting_ack> waiting;
  std::uint64_t synced_seq = 0; // every record through it is as durable as asked
  std::uint64_t memory_seq = 0; // record numbers without a log (no data folder)
  bool sync_scheduled = false;
  std::uint64_t last_seq() const { return log ? log->last_seq() : memory_seq; }

  // Replication (actors/replica.cpp). The partition's epoch as this shard
  // knows it, whether it is the primary (a shard without a role from an
  // etcd map is a primary with no followers), a primary's followers (how far
  // each confirmed), the log records they may still need, and a follower's
  // model from its primary waiting for the log to reach its record.
  bool primary = true;
  std::uint64_t epoch = 0;
  struct follower {
    caf::actor shard; // null: its node was not reachable (it never confirms)
    std::uint32_t node = 0;
    std::uint64_t acked = 0; // its last record, once known and checked
    bool known = false;
    bool inflight = false;
    // It cannot be brought up to date from here (behind the tail, diverged,
    // unreachable): it never confirms, and the membership is told (again
    // every few seconds) until the map drops it.
    bool stuck = false;
    std::chrono::steady_clock::time_point reported_at{};
    std::chrono::steady_clock::time_point retry_at{};
    // Its first failed request since the last reply (default: none).
    std::chrono::steady_clock::time_point failing_since{};
  };
  std::vector<follower> followers;
  // The newest epoch its log held when this shard started. A map that
  // still names it primary of that epoch (the node came back within its
  // lease) gets no write from it: its followers may hold records this log
  // lost, and a record it wrote now could take the same number and epoch
  // as one of theirs. It asks for a new epoch (lagging_atom with its own
  // node) instead.
  std::uint64_t stale_epoch = 0;
  std::chrono::steady_clock::time_point stale_reported{};
  struct tail_record {
    std::uint64_t seq = 0;
    std::uint8_t kind = 0;
    frame payload;
  };
  std::deque<tail_record> tail;
  std::size_t tail_bytes = 0;
  bool tick_scheduled = false;
  caf::actor reporter; // the membership that sent the role
  struct pending_model {
    std::uint64_t seq = 0;
    std::string snapshot;
  };
  std::optional<pending_model> model_at;
  // Exported for a move (export_atom): it takes no more writes (errc::moved)
  // and serves queries until its node stops it.
  bool frozen = false;
  std::uint64_t events_since_snapshot = 0; // events and items since the last snapshot
  std::uint64_t snapshot_seq = 0;          // last log record the newest snapshot covers
  std::optional<std::chrono::steady_clock::time_point> snapshot_retry; // after a failure

  // Training: every shard by partition, and leader_of[p], the first partition
  // on p's node. Blocks travel once per node, to its leader, which hands them
  // to the node's other shards.
  std::vector<caf::actor> peers;
  std::vector<std::uint32_t> leader_of;
  std::uint64_t bytes_sent = 0; // payload bytes of blocks sent this training run

  // One session per algorithm, reset by the build step.
  dist::train_settings settings;
  std::vector<float> popularity;
  std::unique_ptr<dist::content_session> content;
  std::unique_ptr<dist::knn_session> knn;
  std::unique_ptr<dist::ials_partition> ials;
  std::unique_ptr<dist::mf_partition> mf;
  std::unique_ptr<dist::ease_session> ease;
  // The run's fold-in data (its als_keep step), served from publish on.
  std::shared_ptr<const dist::ials_fold_in_data> ials_fold;
  std::shared_ptr<const dist::mf_fold_in_data> mf_fold;

  // The training run this partition takes part in (0: none), and when its
  // last step came: a run silent for train_timeout no longer blocks others.
  std::uint64_t run = 0;
  std::chrono::steady_clock::time_point run_seen;
  caf::actor_addr run_owner; // the run's trainer, monitored: its death ends the run
  // Per owned user, the blend statistics of a served model and profile:
  // a repeat query skips a round. They are a function of the model, the
  // user's events (seen items, their values, the folded-in factors) and the
  // live item side of every partition (popularity, items newer than the
  // model: dist/live_items.hpp). Events are only ever added, so (model
  // version, the user's event count) identifies the first two exactly; the
  // third changes with any event anywhere, which no partition sees, so an
  // entry serves for stats_ttl only: a repeat query within it may standardise
  // with statistics that miss the latest events of other users (a shift of
  // the components' means and spreads by about one event in the catalogue's
  // counts). A coordinator's statistics are kept only for the key of the
  // profile it was given (pending_stats), so an event of the user or a
  // publish in between makes them stale on arrival, never cached.
  static constexpr std::chrono::seconds stats_ttl{1};
  struct stats_key {
    std::uint64_t model_version = 0;
    std::uint32_t events = 0;
    bool operator==(const stats_key& o) const {
      return model_version == o.model_version && events == o.events;
    }
  };
  struct cached_stats {
    frame stats;
    stats_key key;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<std::string, cached_stats> stats_cache;
  std::unordered_map<std::string, stats_key> pending_stats;
  // The key of `user`'s profile now.
  stats_key key_of(const std::string& user) const {
    stats_key k{data.model_version, 0};
    if (auto u = data.store->users().find(user))
      k.events = data.store->events_of_user(*u);
    return k;
  }

  // The live item side (data.live): when the scorer with it last went to
  // the host, whether a send is scheduled (at most one per live_interval),
  // and every partition's shard (the membership's view, via the host), whom
  // the new items' fold-in asks for user rows.
  std::chrono::steady_clock::time_point live_sent;
  bool live_scheduled = false;
  bool fold_scheduled = false; // a send that folds every waiting new item
  // `popular` before the first model: the counters of the store as it was
  // at store->changes() == counted_changes (counted again only when it
  // changed).
  std::optional<dist::live_items> counted;
  std::uint64_t counted_changes = 0;
  std::vector<caf::actor> directory;

  // The node host: spawned this shard, monitors it, and passes its scorer
  // on to the node's scorer actor after every publish.
  caf::actor host;

  bool is_leader() const {
    const auto me = data.store->partition();
    return me < leader_of.size() && leader_of[me] == me;
  }

  static inline const char* name = "shard";
};

using shard_pointer = caf::stateful_actor<shard_state>*;

// Writes a snapshot of the partition now (after a publish; every
// dur.snapshot_every events); a failure is reported on stderr and the log
// keeps everything.
void snapshot_now(shard_pointer self);

// The live item side changed: sends the scorer with it to the host now, or
// within live_interval of the last send (one send per interval under a
// stream of events), and asks other partitions for the user rows the new
// items' fold-in lacks.
void live_changed(shard_pointer self);
// The same, now (after a publish or a recovery).
void send_live(shard_pointer self, bool fold_all = false);

// Replication and acknowledgements (actors/replica.cpp).
// Appends a record to the log (a number without one), queues it for the
// followers; its sequence number.
core::result<std::uint64_t> append_record(shard_pointer self, std::uint8_t kind,
                                          const frame& f);
// The reply to record seq's batch once it is durable and confirmed.
caf::result<frame> acknowledge(shard_pointer self, frame reply, std::uint64_t seq);
// Syncs the log and sends the replies that waited for it.
void sync_log(shard_pointer self);
// A snapshot when --snapshot-every events came since the last.
void maybe_snapshot(shard_pointer self);
// After a publish: the model goes to the followers.
void send_model(shard_pointer self);
caf::message_handler shard_replication(shard_pointer self);

// Leaves the training run: drops its copy of the store and its sessions.
void leave_run(shard_state& st);

// The training handlers (shard_train.cpp), added to the shard's behaviour.
caf::message_handler shard_training(shard_pointer self);

} // namespace shardrec::actors::detail
