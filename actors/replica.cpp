// A shard's acknowledgements and its replication (the shard's messages are
// listed in actors/shard.hpp; its state in actors/shard_state.hpp).
//
// Every stored batch is a log record with a sequence number. A batch is
// acknowledged once its record is as durable as --sync asks (synced_seq)
// and, on a primary with followers, once every follower of the partition's
// current epoch confirmed it (Kafka's in-sync replicas, with the set kept by
// the controller in the etcd map: a follower leaves it when its lease
// expires or its primary reports it behind). The primary keeps the records
// its followers have not confirmed (the tail, in memory) and sends each
// follower what it lacks, one request at a time, in order; a follower
// stores and applies them as a recovery replays its log, so its log has the
// same records under the same numbers. A replica of an older epoch is
// refused (fencing): a primary that lost its partition while it was frozen
// or cut off cannot have a write acknowledged after it comes back.
#include <algorithm>
#include <cstdio>

#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/shard_state.hpp"

namespace shardrec::actors::detail {

namespace {

// How long an acknowledgement waits for the followers before the sender is
// told to send again (the batch is stored once: its id), how long one
// replication request may take, how often a stuck one is tried again, the
// records in one request, and the tail a primary keeps for slow followers.
constexpr auto ack_wait = std::chrono::seconds(8);
constexpr auto replicate_timeout = std::chrono::seconds(2);
constexpr auto retry_pause = std::chrono::milliseconds(200);
constexpr std::size_t request_bytes = 8u << 20;
constexpr std::size_t max_tail_bytes = 256u << 20;
// A follower whose requests have failed this long (or whose node was not
// reachable), and how often a stuck follower is reported again until the
// map drops it.
constexpr auto unreachable_after = std::chrono::seconds(10);
constexpr auto report_every = std::chrono::seconds(5);

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

std::string name_of(const shard_state& st) {
  return "partition " + std::to_string(st.data.store->partition());
}

bool confirmed(const shard_state& st, std::uint64_t seq) {
  if (seq > st.synced_seq)
    return false;
  return std::all_of(
      st.followers.begin(), st.followers.end(),
      [&](const shard_state::follower& f) { return f.known && f.acked >= seq; });
}

// Ticks while anything waits: expired acknowledgements, stuck followers.
void arm_tick(shard_pointer self) {
  auto& st = self->state;
  if (st.tick_scheduled || (st.waiting.empty() && st.followers.empty()))
    return;
  st.tick_scheduled = true;
  self->delayed_send(self, retry_pause, replicate_atom::value);
}

// A reply `value` that waits until record seq is confirmed (or fails).
template <class... Ts>
caf::typed_response_promise<Ts...> wait_for(shard_pointer self, std::uint64_t seq,
                                            Ts... values) {
  auto rp = self->make_response_promise<Ts...>();
  self->state.waiting.push_back({seq, std::chrono::steady_clock::now() + ack_wait,
                                 [rp, values...](const caf::error& err) mutable {
                                   if (err)
                                     rp.deliver(err);
                                   else
                                     rp.deliver(std::move(values)...);
                                 }});
  arm_tick(self);
  return rp;
}

// Sends the acknowledgements whose records are confirmed; those that waited
// too long get errc::moved (the sender sends again; the batch id keeps it
// from being stored twice).
void release(shard_pointer self) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  bool delivered = false;
  std::vector<shard_state::waiting_ack> keep;
  for (auto& w : st.waiting) {
    if (confirmed(st, w.seq)) {
      w.done(caf::error{});
      delivered = true;
    } else if (now >= w.deadline) {
      w.done(fail(core::errc::moved, name_of(st) + ": record " + std::to_string(w.seq)
                                         + " was not confirmed by its followers in time; "
                                           "send it again"));
    } else {
      keep.push_back(std::move(w));
    }
  }
  st.waiting = std::move(keep);
  if (delivered)
    maybe_snapshot(self);
}

// Every waiting acknowledgement fails (this shard is no longer the primary).
void fail_waiting(shard_pointer self, const std::string& why) {
  auto& st = self->state;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& w : waiting)
    w.done(fail(core::errc::moved, name_of(st) + ": " + why + "; send it again"));
}

// The records a primary keeps: those some follower still needs, at most
// max_tail_bytes (a follower behind that catches up from a copy).
void trim_tail(shard_state& st) {
  std::uint64_t needed = st.last_seq() + 1;
  for (const auto& f : st.followers)
    needed = std::min(needed, f.known ? f.acked + 1 : std::uint64_t{0});
  while (!st.tail.empty()
         && (st.tail.front().seq < needed || st.tail_bytes > max_tail_bytes)) {
    st.tail_bytes -= st.tail.front().payload.bytes.size();
    st.tail.pop_front();
  }
}

void replicate(shard_pointer self);

// How long follower f's requests have failed (or its node was unreachable),
// counting from now if they had not.
std::chrono::steady_clock::duration
failing_for(shard_state::follower& f, std::chrono::steady_clock::time_point now) {
  if (f.failing_since == std::chrono::steady_clock::time_point{})
    f.failing_since = now;
  return now - f.failing_since;
}

// A follower the primary cannot bring up to date (it lags beyond the tail,
// holds records the primary does not, or does not answer): it confirms
// nothing from now on, and the membership tells the controller, which takes
// it out of the partition's followers (and copies the partition anew);
// writes wait until then. Reported again every report_every while the map
// still lists it (a report can be lost with its node's etcd session).
void report_lagging(shard_pointer self, shard_state::follower& f,
                    const std::string& why) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  if (f.stuck && now - f.reported_at < report_every)
    return;
  if (!f.stuck)
    std::fprintf(stderr, "shardrec-node: %s: follower on node %u %s (epoch %llu)\n",
                 name_of(st).c_str(), f.node, why.c_str(),
                 static_cast<unsigned long long>(st.epoch));
  f.stuck = true;
  f.known = false;
  f.reported_at = now;
  if (st.reporter)
    self->send(st.reporter, lagging_atom::value, st.data.store->partition(), f.node,
               st.epoch);
}

void send_to(shard_pointer self, std::size_t k) {
  auto& st = self->state;
  auto& f = st.followers[k];
  const auto last = st.last_seq();
  const auto now = std::chrono::steady_clock::now();
  if (f.stuck)
    return report_lagging(self, f, "");
  if (!f.shard) {
    if (failing_for(f, now) >= unreachable_after)
      report_lagging(self, f, "is not reachable");
    return;
  }
  if (f.inflight || (f.known && f.acked >= last) || now < f.retry_at)
    return;
  // Unknown: an empty request at the next record asks how far it is.
  const std::uint64_t first = f.known ? f.acked + 1 : last + 1;
  std::vector<std::uint32_t> kinds;
  std::vector<frame> records;
  if (f.known) {
    if (st.tail.empty() || st.tail.front().seq > first)
      return report_lagging(self, f, "is behind the records its primary keeps");
    std::size_t bytes = 0;
    for (const auto& r : st.tail) {
      if (r.seq < first)
        continue;
      if (!records.empty() && bytes + r.payload.bytes.size() > request_bytes)
        break;
      kinds.push_back(r.kind);
      records.push_back(r.payload);
      bytes += r.payload.bytes.size();
    }
  }
  f.inflight = true;
  const auto shard = f.shard;
  const auto epoch = st.epoch;
  const auto prev_epoch = st.data.epochs.at(first - 1);
  auto find = [self, shard, epoch]() -> shard_state::follower* {
    auto& st = self->state;
    if (st.epoch != epoch || !st.primary)
      return nullptr;
    for (auto& x : st.followers)
      if (x.shard == shard)
        return &x;
    return nullptr;
  };
  self->request(shard, replicate_timeout, replicate_atom::value, epoch, first, prev_epoch,
                kinds, records)
      .then(
          [self, find](std::uint64_t their_last, std::uint64_t their_epoch) {
            auto* f = find();
            if (f == nullptr || f->stuck)
              return;
            auto& st = self->state;
            f->inflight = false;
            f->failing_since = {};
            // Its log matches this one through their_last only if that
            // record is of the same epoch here (epoch_history).
            if (their_last > st.last_seq())
              return report_lagging(self, *f, "holds records its primary does not");
            if (st.data.epochs.at(their_last) != their_epoch)
              return report_lagging(
                  self, *f,
                  "holds record " + std::to_string(their_last) + " of epoch "
                      + std::to_string(their_epoch) + ", which its primary has of epoch "
                      + std::to_string(st.data.epochs.at(their_last)) + " (diverged)");
            f->known = true;
            f->acked = their_last;
            trim_tail(self->state);
            release(self);
            replicate(self);
          },
          [self, find](caf::error& err) {
            auto* f = find();
            if (f == nullptr)
              return;
            f->inflight = false;
            const auto now = std::chrono::steady_clock::now();
            f->retry_at = now + retry_pause;
            const auto failing = failing_for(*f, now);
            if (is_fenced(err)) {
              // A newer epoch: this shard lost the partition (the new map
              // reaches it soon). Nothing more is acknowledged here.
              auto& st = self->state;
              std::fprintf(stderr, "shardrec-node: %s: %s; not the primary any more\n",
                           name_of(st).c_str(), self->system().render(err).c_str());
              st.primary = false;
              fail_waiting(self, "this node is no longer its primary");
              return;
            }
            if (failing >= unreachable_after)
              report_lagging(
                  self, *f,
                  "has not taken records for "
                      + std::to_string(
                          std::chrono::duration_cast<std::chrono::seconds>(failing)
                              .count())
                      + " s (" + self->system().render(err) + ")");
            arm_tick(self);
          });
}

void replicate(shard_pointer self) {
  auto& st = self->state;
  if (!st.primary)
    return;
  for (std::size_t k = 0; k < st.followers.size(); ++k)
    send_to(self, k);
  arm_tick(self);
}

void adopt_model(shard_pointer self) {
  auto& st = self->state;
  if (!st.model_at || st.last_seq() < st.model_at->seq)
    return;
  auto pending = std::move(*st.model_at);
  st.model_at.reset();
  if (st.last_seq() != pending.seq) {
    std::fprintf(stderr,
                 "shardrec-node: %s: the model from its primary is of record %llu, "
                 "the log is at %llu: not taken (the next training sends another)\n",
                 name_of(st).c_str(), static_cast<unsigned long long>(pending.seq),
                 static_cast<unsigned long long>(st.last_seq()));
    return;
  }
  partition_data d;
  std::uint64_t seq = 0;
  const auto p = st.data.store->partition();
  auto loaded = load_snapshot_bytes(pending.snapshot, "the model from its primary", p,
                                    st.data.store->partitions(), d, seq);
  if (!loaded) {
    std::fprintf(stderr, "shardrec-node: %s: %s\n", name_of(st).c_str(),
                 loaded.err().message.c_str());
    return;
  }
  d.batches = std::move(st.data.batches);
  d.epochs = std::move(st.data.epochs); // the same through seq: its own log's
  st.data = std::move(d);
  reset_live(st.data);
  st.stats_cache.clear();
  st.pending_stats.clear();
  send_live(self);
  snapshot_now(self); // a restart serves it too
}

} // namespace

void maybe_snapshot(shard_pointer self) {
  auto& st = self->state;
  if (!st.log || st.log->failed())
    return;
  const bool due = st.snapshot_retry
                       ? std::chrono::steady_clock::now() >= *st.snapshot_retry
                       : st.dur.snapshot_every > 0
                             && st.events_since_snapshot >= st.dur.snapshot_every;
  if (due)
    snapshot_now(self);
}

core::result<std::uint64_t> append_record(shard_pointer self, std::uint8_t kind,
                                          const frame& f) {
  auto& st = self->state;
  std::uint64_t seq = 0;
  if (st.log) {
    auto appended = st.log->append(
        kind,
        std::string_view(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size()));
    if (!appended)
      return appended.err();
    seq = *appended;
  } else {
    seq = ++st.memory_seq;
  }
  // --sync always: durable after the next sync, which every batch already
  // in the mailbox shares (the sync message queues behind them: group
  // commit); batch: now, with a sync at most batch_interval later; none:
  // now.
  if (!st.log || st.dur.sync != storage::sync_mode::always)
    st.synced_seq = seq;
  if (st.log && st.dur.sync != storage::sync_mode::none && !st.sync_scheduled) {
    st.sync_scheduled = true;
    if (st.dur.sync == storage::sync_mode::batch)
      self->delayed_send(self, st.dur.batch_interval, sync_atom::value);
    else
      self->send(self, sync_atom::value);
  }
  if (!st.followers.empty()) {
    st.tail.push_back({seq, kind, f});
    st.tail_bytes += f.bytes.size();
    replicate(self);
  }
  return seq;
}

caf::result<frame> acknowledge(shard_pointer self, frame reply, std::uint64_t seq) {
  auto& st = self->state;
  if (confirmed(st, seq)) {
    maybe_snapshot(self);
    return reply;
  }
  return wait_for(self, seq, std::move(reply));
}

void sync_log(shard_pointer self) {
  auto& st = self->state;
  st.sync_scheduled = false;
  if (!st.log)
    return;
  const auto upto = st.log->last_seq();
  auto synced = st.log->sync();
  if (synced) {
    st.synced_seq = std::max(st.synced_seq, upto);
  } else {
    // The records after synced_seq may be lost: their batches fail.
    std::vector<shard_state::waiting_ack> keep;
    for (auto& w : st.waiting) {
      if (w.seq > st.synced_seq)
        w.done(fail(synced.err().code,
                    name_of(st) + " could not sync its log: " + synced.err().message));
      else
        keep.push_back(std::move(w));
    }
    st.waiting = std::move(keep);
  }
  release(self);
  maybe_snapshot(self);
}

void send_model(shard_pointer self) {
  auto& st = self->state;
  if (!st.primary || st.followers.empty())
    return;
  const auto seq = st.last_seq();
  const auto bytes = snapshot_bytes(st.data, seq);
  frame f;
  f.bytes.assign(bytes.begin(), bytes.end());
  for (const auto& x : st.followers)
    self->send(x.shard, model_atom::value, st.epoch, seq, f);
}

caf::message_handler shard_replication(shard_pointer self) {
  return {
      [=](replicate_atom) {
        // The tick: expired acknowledgements, followers to try again.
        self->state.tick_scheduled = false;
        release(self);
        replicate(self);
        arm_tick(self);
      },
      [=](role_atom, std::uint64_t epoch, bool primary,
          const std::vector<caf::actor>& followers,
          const std::vector<std::uint32_t>& nodes) {
        // From this node's membership, after every map it installs.
        auto& st = self->state;
        if (epoch < st.epoch)
          return;
        if (st.primary && !primary)
          fail_waiting(self, "this node is now a follower of it");
        st.reporter = caf::actor_cast<caf::actor>(self->current_sender());
        // Restarted within its lease and still named primary of an epoch
        // its log held at start: no writes (it acts as a follower with no
        // primary) until the controller gives the partition a new epoch.
        const bool stale = primary && epoch <= st.stale_epoch;
        if (stale) {
          const auto now = std::chrono::steady_clock::now();
          if (now - st.stale_reported >= report_every && st.reporter) {
            st.stale_reported = now;
            std::fprintf(
                stderr,
                "shardrec-node: %s: restarted as the primary of epoch %llu, which "
                "its log holds already: asking for a new epoch\n",
                name_of(st).c_str(), static_cast<unsigned long long>(epoch));
            self->send(st.reporter, lagging_atom::value, st.data.store->partition(),
                       st.node_id, epoch);
          }
          primary = false;
        }
        st.epoch = epoch;
        st.primary = primary;
        // Every follower the map lists, a null handle too (its node was not
        // reachable): it confirms nothing until it answers, so nothing is
        // acknowledged that a listed follower may lack.
        std::vector<shard_state::follower> next;
        for (std::size_t k = 0; k < nodes.size(); ++k) {
          const caf::actor shard = k < followers.size() ? followers[k] : caf::actor{};
          auto old = std::find_if(
              st.followers.begin(), st.followers.end(),
              [&](const shard_state::follower& f) { return f.node == nodes[k]; });
          if (old != st.followers.end() && old->shard == shard) {
            next.push_back(*old);
          } else {
            shard_state::follower f;
            f.shard = shard;
            f.node = nodes[k];
            next.push_back(f);
          }
        }
        st.followers = primary ? std::move(next) : std::vector<shard_state::follower>{};
        if (st.followers.empty()) {
          st.tail.clear();
          st.tail_bytes = 0;
        }
        // The primary of a new epoch marks where its records start.
        if (primary && epoch > st.data.epochs.last() && !st.frozen) {
          auto seq = append_record(self, record_epoch, u64_record(epoch));
          if (seq)
            st.data.epochs.add(epoch, *seq);
          else
            std::fprintf(stderr, "shardrec-node: %s: cannot mark epoch %llu: %s\n",
                         name_of(st).c_str(), static_cast<unsigned long long>(epoch),
                         seq.err().message.c_str());
        }
        release(self);
        replicate(self);
      },
      [=](replicate_atom, std::uint64_t epoch, std::uint64_t first,
          std::uint64_t prev_epoch, const std::vector<std::uint32_t>& kinds,
          const std::vector<frame>& records)
          -> caf::result<std::uint64_t, std::uint64_t> {
        // A follower: records first.. from the primary of `epoch`, whose
        // record first - 1 is of prev_epoch. Nothing changes here before the
        // request is known to be good.
        auto& st = self->state;
        if (epoch < st.epoch)
          return fail(core::errc::fenced, name_of(st) + ": fenced: the sender's epoch "
                                              + std::to_string(epoch) + " is older than "
                                              + std::to_string(st.epoch));
        if (epoch == st.epoch && st.primary)
          return fail(core::errc::fenced, name_of(st)
                                              + ": this shard is the primary of epoch "
                                              + std::to_string(epoch));
        if (epoch > st.epoch || st.primary)
          // Its membership has not installed that map yet (or this shard
          // was never given a role): the primary tries again shortly.
          return fail(core::errc::moved, name_of(st) + ": no role of epoch "
                                             + std::to_string(epoch)
                                             + " here yet (this shard knows epoch "
                                             + std::to_string(st.epoch) + ")");
        if (kinds.size() != records.size())
          return fail(core::errc::bad_message,
                      name_of(st) + ": a replica with " + std::to_string(kinds.size())
                          + " kinds for " + std::to_string(records.size()) + " records");
        if (first == 0)
          return fail(core::errc::bad_message, name_of(st) + ": a replica from record 0");
        const auto last = st.last_seq();
        auto reply = [&]() -> caf::result<std::uint64_t, std::uint64_t> {
          const auto now_last = st.last_seq();
          const auto now_epoch = st.data.epochs.at(now_last);
          if (confirmed(st, now_last))
            return {now_last, now_epoch};
          return wait_for(self, now_last, now_last, now_epoch);
        };
        // A gap, or a log that does not match the primary's at first - 1:
        // nothing is stored; the primary learns how far this log goes (and
        // whether it diverged) from the reply.
        if (first > last + 1 || st.data.epochs.at(first - 1) != prev_epoch)
          return reply();
        std::vector<decoded_record> decoded;
        for (std::size_t k = 0; k < records.size(); ++k) {
          const auto seq = first + k;
          if (seq <= last)
            continue; // has it already (a request sent again)
          const auto& r = records[k];
          if (kinds[k] > 255)
            return fail(core::errc::bad_message, name_of(st) + ": record "
                                                     + std::to_string(seq) + " of kind "
                                                     + std::to_string(kinds[k]));
          auto d = decode_record(static_cast<std::uint8_t>(kinds[k]), r);
          if (!d)
            return fail(core::errc::bad_message,
                        name_of(st) + ": record " + std::to_string(seq)
                            + " from its primary: " + d.err().message
                            + " (nothing of this request stored)");
          decoded.push_back(std::move(*d));
        }
        const std::size_t skip = records.size() - decoded.size();
        for (std::size_t k = 0; k < decoded.size(); ++k) {
          const auto& r = records[skip + k];
          auto appended = append_record(self, decoded[k].kind, r);
          if (!appended)
            return fail(appended.err().code, name_of(st) + " did not store record "
                                                 + std::to_string(first + skip + k) + ": "
                                                 + appended.err().message);
          std::uint64_t count = 0;
          apply_decoded(st.data, *appended, std::move(decoded[k]), &count, nullptr);
          st.events_since_snapshot += count;
          // The model of this record (sent after a training) replaces the
          // state here before the next record applies.
          if (st.model_at && st.model_at->seq == *appended)
            adopt_model(self);
        }
        if (!decoded.empty())
          live_changed(self);
        adopt_model(self);
        return reply();
      },
      [=](model_atom, std::uint64_t epoch, std::uint64_t seq, const frame& f) {
        // A follower: its primary's model after a training, taken once its
        // log has the record the model's snapshot covers.
        auto& st = self->state;
        if (epoch < st.epoch || st.primary)
          return;
        st.model_at =
            shard_state::pending_model{seq, std::string(f.bytes.begin(), f.bytes.end())};
        adopt_model(self);
      },
  };
}

} // namespace shardrec::actors::detail
