// The shard actor (actors/shard.hpp): ingest, status and the query-time
// handlers. The training handlers are in actors/shard_train.cpp.
#include "actors/shard.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/local_messages.hpp"
#include "actors/shard_state.hpp"
#include "core/partition.hpp"

namespace shardrec::actors {

namespace {

using detail::shard_pointer;

constexpr std::size_t max_cached_stats = 1 << 20;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

// Stores a received batch: refused while the partition moves or on a shard
// that is not its primary; a batch stored before (its id: the sender sends
// again after a lost acknowledgement) is answered as it was, once its record
// is confirmed. Else appended to the log (errors: nothing stored), applied,
// and answered once durable and confirmed by the followers.
template <class Batch, class Apply>
caf::result<frame> store_batch(shard_pointer self, std::uint8_t kind, const frame& f,
                               Batch batch, Apply apply) {
  auto& st = self->state;
  const auto p = std::to_string(st.data.store->partition());
  if (st.frozen)
    return fail(core::errc::moved,
                "partition " + p + " is moving to another node; send it again");
  if (!st.primary)
    return fail(core::errc::moved, "partition " + p
                                       + ": this node is not its primary (epoch "
                                       + std::to_string(st.epoch) + "); send it again");
  if (const auto* seen = st.data.batches.find(batch.id))
    return detail::acknowledge(
        self, encode(ingest_result{seen->accepted, seen->rejected, {}}), seen->seq);
  auto seq = detail::append_record(self, kind, f);
  if (!seq)
    return fail(seq.err().code,
                "partition " + p + " did not store the batch: " + seq.err().message);
  const auto id = batch.id;
  auto r = apply(std::move(batch));
  st.data.batches.add(id, {*seq, r.accepted, r.rejected});
  detail::live_changed(self);
  return detail::acknowledge(self, encode(r), *seq);
}

caf::message_handler shard_queries(shard_pointer self) {
  return {
      [=](ingest_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_event_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        return store_batch(self, record_events, f, std::move(*batch),
                           [self](event_batch b) {
                             self->state.events_since_snapshot += b.events.size();
                             return apply_events(self->state.data, b);
                           });
      },
      [=](sync_atom) { detail::sync_log(self); },
      [=](export_atom, bool) {
        // The move was called off (from the node host).
        self->state.frozen = false;
      },
      [=](export_atom) -> caf::result<std::uint64_t> {
        // A move: no more writes; every acknowledged record synced; a
        // snapshot of everything, so that its folder is all the new owner
        // needs. Returns the last log record.
        auto& st = self->state;
        const auto p = std::to_string(st.data.store->partition());
        if (!st.log || st.log->failed())
          return fail(core::errc::invalid_argument,
                      "partition " + p + " has no working log: it cannot move");
        st.frozen = true;
        detail::sync_log(self);
        detail::snapshot_now(self);
        if (st.snapshot_retry) {
          st.frozen = false;
          return fail(core::errc::io_error,
                      "partition " + p + ": the snapshot for its move failed");
        }
        return st.log->last_seq();
      },
      [=](profile_atom, const std::vector<std::string>& users)
          -> caf::result<std::vector<frame>, std::vector<std::string>> {
        // Per user two frames (the profile, with the seen items' content
        // vectors for the coordinator's explanations; the cached blend
        // statistics or empty) and an error text (empty: fine).
        auto& st = self->state;
        if (!st.data.model.scorer)
          return fail(core::errc::invalid_argument,
                      "no trained model: run `shardrec train`");
        std::vector<frame> frames;
        std::vector<std::string> errors;
        frames.reserve(2 * users.size());
        for (const auto& user : users) {
          auto p = dist::make_user_profile(*st.data.store, st.data.model.users, user);
          if (!p) {
            frames.insert(frames.end(), 2, frame{});
            errors.push_back(p.err().message);
            continue;
          }
          const auto key = st.key_of(user);
          auto cached = st.stats_cache.find(user);
          frames.push_back(encode(*p));
          if (cached != st.stats_cache.end() && cached->second.key == key
              && std::chrono::steady_clock::now() - cached->second.at < st.stats_ttl) {
            frames.push_back(cached->second.stats);
          } else {
            frames.emplace_back();
            if (st.pending_stats.size() >= max_cached_stats)
              st.pending_stats.clear(); // queries that never reported back
            st.pending_stats[user] = key;
          }
          errors.emplace_back();
        }
        return {std::move(frames), std::move(errors)};
      },
      [=](cache_atom, const std::string& user, const frame& stats) {
        // Kept only if the user's profile is still the one the statistics
        // were computed from.
        auto& st = self->state;
        auto pending = st.pending_stats.find(user);
        if (pending == st.pending_stats.end())
          return;
        const auto key = pending->second;
        st.pending_stats.erase(pending);
        if (st.data.model.scorer && key == st.key_of(user)
            && st.stats_cache.size() < max_cached_stats)
          st.stats_cache[user] = {stats, key, std::chrono::steady_clock::now()};
      },
      [=](similar_atom, const std::string& item, std::uint32_t n) -> caf::result<frame> {
        auto& st = self->state;
        similar_reply r;
        r.item = item;
        // From the published model, as recommend's item-kNN part: a
        // training run in progress changes neither.
        const auto* lists =
            st.data.model.neighbors ? st.data.model.neighbors->find(item) : nullptr;
        if (!lists) {
          auto known = st.data.store->items().find(item);
          if (!known)
            return fail(core::errc::unknown_id, "unknown item '" + item + "'");
          // Known, but no neighbours: say why when the model cannot know it.
          const auto& scorer = st.data.model.scorer;
          if (!scorer || !st.data.model.neighbors)
            r.note =
                "no item-kNN model yet: run `shardrec train` (--algo all or itemknn)";
          else if (*known >= scorer->n_items())
            r.note = "new item: it arrived after the last training (model version "
                     + std::to_string(st.data.model_version)
                     + "); its similar items come with the next training";
          return encode(r);
        }
        for (const auto& nb : lists->neighbors) {
          if (r.neighbors.size() >= n)
            break;
          r.neighbors.emplace_back(nb.id, nb.similarity);
        }
        return encode(r);
      },
      [=](items_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_item_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        return store_batch(self, record_items, f, std::move(*batch),
                           [self](item_batch b) {
                             self->state.events_since_snapshot += b.items.size();
                             return apply_items(self->state.data, std::move(b));
                           });
      },
      [=](rows_atom, const std::vector<std::string>& users)
          -> caf::result<std::uint32_t, std::vector<float>> {
        auto& st = self->state;
        // The served model's MF part (not a training run's).
        if (!st.data.model.scorer || st.data.model.scorer->models().mf_factors == 0)
          return fail(core::errc::invalid_argument,
                      "no rating model: train with --algo all|mf");
        const auto& m = st.data.model.users;
        auto k = m.mf_factors;
        std::vector<float> rows;
        rows.reserve(users.size() * (k + 1));
        for (const auto& u : users) {
          auto idx = st.data.store->users().find(u);
          // Folded in since the training: the row of the user's events now.
          if (auto f = idx ? m.mf_folded.find(*idx) : m.mf_folded.end();
              f != m.mf_folded.end() && f->second.factors.size() == k) {
            rows.insert(rows.end(), f->second.factors.begin(), f->second.factors.end());
            rows.push_back(f->second.bias);
            continue;
          }
          // A user who arrived after training without events folded in has
          // no row: zeros, as for an unknown one.
          const bool has_row = idx && *idx < m.mf_user_bias.size()
                               && (std::size_t{*idx} + 1) * k <= m.mf_user.size();
          for (std::size_t c = 0; c < k; ++c)
            rows.push_back(has_row ? m.mf_user[*idx * k + c] : 0.0f);
          rows.push_back(has_row ? m.mf_user_bias[*idx] : 0.0f);
        }
        return {static_cast<std::uint32_t>(k), std::move(rows)};
      },
      [=](mrows_atom, std::uint64_t version, const std::vector<std::string>& users)
          -> caf::result<std::uint64_t, std::vector<std::uint32_t>, std::uint32_t,
                         std::vector<float>, std::uint32_t, std::vector<float>> {
        auto& st = self->state;
        const auto& m = st.data.model.users;
        const auto ki = static_cast<std::uint32_t>(m.ials_factors);
        const auto km = static_cast<std::uint32_t>(m.mf_factors);
        std::vector<std::uint32_t> known(users.size(), 0);
        std::vector<float> ials, mf;
        if (version != st.data.model_version || !st.data.model.scorer)
          return {st.data.model_version, known, ki, ials, km, mf};
        ials.reserve(users.size() * ki);
        mf.reserve(users.size() * (km + 1));
        for (std::size_t i = 0; i < users.size(); ++i) {
          auto u = st.data.store->users().find(users[i]);
          // The trained rows: those of the users the model was trained with.
          const bool has_ials = u && (std::size_t{*u} + 1) * ki <= m.ials_user.size();
          const bool has_mf = u && *u < m.mf_user_bias.size()
                              && (std::size_t{*u} + 1) * km <= m.mf_user.size();
          known[i] = (ki == 0 || has_ials) && (km == 0 || has_mf) && (ki + km > 0);
          for (std::uint32_t c = 0; c < ki; ++c)
            ials.push_back(known[i] ? m.ials_user[std::size_t{*u} * ki + c] : 0.0f);
          for (std::uint32_t c = 0; c < km; ++c)
            mf.push_back(known[i] ? m.mf_user[std::size_t{*u} * km + c] : 0.0f);
          if (km > 0)
            mf.push_back(known[i] ? m.mf_user_bias[*u] : 0.0f);
        }
        return {st.data.model_version, known, ki, ials, km, mf};
      },
      [=](peers_atom, const std::vector<caf::actor>& shards) {
        auto& st = self->state;
        if (self->current_sender() != st.host.address())
          return;
        st.directory = shards;
        st.data.live.ask_again(); // rows nobody could be asked for before
        detail::live_changed(self);
      },
      [=](popular_atom, const frame& f) -> caf::result<frame> {
        auto req = decode_popular_request(f);
        if (!req)
          return to_caf_error(req.err());
        auto& st = self->state;
        const auto& store = *st.data.store;
        // Kept per event while a model is served; counted here before (once
        // per change of the store).
        if (!st.data.model.scorer
            && (!st.counted || st.counted_changes != store.changes())) {
          st.counted = dist::live_items::counted(store);
          st.counted_changes = store.changes();
        }
        if (st.data.model.scorer)
          st.counted.reset();
        const auto& live = st.counted ? *st.counted : st.data.live;
        popular_reply r;
        r.trending = req->trending;
        r.now = live.now();
        for (const auto& [row, score] : live.top(store, req->n, req->trending))
          r.items.emplace_back(std::string(store.items().external(row)), score);
        return encode(r);
      },
      [=](peers_atom) {
        // A retry (to itself): the rows that did not come are asked again,
        // of whichever shards the directory names by then.
        if (self->current_sender() != self->address())
          return;
        self->state.data.live.ask_again();
        detail::live_changed(self);
      },
      [=](live_atom) {
        self->state.live_scheduled = false;
        detail::send_live(self);
      },
      [=](live_atom, bool fold_all) {
        if (self->current_sender() != self->address())
          return;
        self->state.fold_scheduled = false;
        detail::send_live(self, fold_all);
      },
      [=](seen_atom, const std::vector<std::string>& users,
          const std::vector<std::string>& items)
          -> caf::result<std::vector<std::uint32_t>> {
        if (users.size() != items.size())
          return fail(core::errc::bad_message, "seen: users and items differ in length");
        const auto& s = *self->state.data.store;
        std::vector<std::uint32_t> out(users.size(), 0);
        for (std::size_t r = 0; r < users.size(); ++r)
          out[r] = s.has_pair(users[r], items[r]) ? 1 : 0;
        return out;
      },
      [=](predict_atom, const std::vector<std::string>& items,
          const std::vector<float>& user_rows) -> caf::result<std::vector<float>> {
        auto& st = self->state;
        if (!st.data.model.scorer || st.data.model.scorer->models().mf_factors == 0)
          return fail(core::errc::invalid_argument,
                      "no rating model: train with --algo all|mf");
        const auto& im = st.data.model.scorer->models();
        auto k = im.mf_factors;
        if (user_rows.size() != items.size() * (k + 1))
          return fail(core::errc::bad_message,
                      "predict: user rows do not match the items");
        std::vector<float> out(items.size());
        for (std::size_t r = 0; r < items.size(); ++r) {
          const float* x = user_rows.data() + r * (k + 1);
          double p = im.mf_mu + x[k];
          // An item that arrived after training has no row yet: mean and
          // user bias only.
          auto i = st.data.store->items().find(items[r]);
          if (i && *i < im.mf_item_bias.size()
              && (std::size_t{*i} + 1) * k <= im.mf_item.size()) {
            p += im.mf_item_bias[*i];
            for (std::size_t c = 0; c < k; ++c)
              p += static_cast<double>(x[c]) * im.mf_item[*i * k + c];
          }
          out[r] =
              std::clamp(static_cast<float>(p), st.data.scale.min, st.data.scale.max);
        }
        return out;
      },
      [=](stats_atom) -> frame {
        const auto& s = *self->state.data.store;
        partition_status st;
        st.partition = s.partition();
        st.node = self->state.node_id;
        st.users = s.users().size();
        st.items = s.items().size();
        st.user_events = s.user_events();
        st.item_events = s.item_events();
        st.ratings_only = self->state.data.ratings_only;
        st.train_bytes = self->state.bytes_sent;
        st.model_version = self->state.data.model_version;
        if (const auto& log = self->state.log) {
          st.log_seq = log->last_seq();
          st.log_bytes = log->disk_bytes();
        }
        st.snapshot_seq = self->state.snapshot_seq;
        if (self->state.data.model.scorer)
          for (const auto& c : self->state.data.model.scorer->spec())
            st.models.push_back(c.name);
        return encode(st);
      },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id, caf::actor host,
                        durability dur, std::shared_ptr<recovered_partition> recovered) {
  return sys.spawn([=](shard_pointer self) {
    auto& st = self->state;
    if (recovered) {
      st.data = std::move(recovered->data);
      st.log = std::move(recovered->log);
      st.snapshot_seq = recovered->snapshot_seq;
      // What the log holds beyond the snapshot counts towards the next one.
      st.events_since_snapshot = recovered->replayed_events;
    }
    if (!st.data.store)
      st.data.store = std::make_unique<dist::partition_store>(partition, partitions);
    st.dur = dur;
    st.node_id = node_id;
    st.host = host;
    // A restored model serves at once (with what came after it).
    detail::send_live(self);
    self->set_down_handler([self](caf::down_msg& dm) {
      auto& st = self->state;
      if (st.run != 0 && dm.source == st.run_owner)
        detail::leave_run(st); // the trainer died without an abort
    });
    st.synced_seq = st.last_seq(); // what recovery found is on disk
    st.stale_epoch = st.data.epochs.last();
    st.primary = !dur.await_role;
    return caf::behavior{shard_queries(self)
                             .or_else(detail::shard_training(self))
                             .or_else(detail::shard_replication(self))};
  });
}

namespace detail {

namespace {
constexpr auto live_interval = std::chrono::milliseconds(5);
}

void send_live(shard_pointer self, bool fold_all) {
  auto& st = self->state;
  st.live_sent = std::chrono::steady_clock::now();
  auto& store = *st.data.store;
  auto scorer = st.data.live.take_scorer(store, fold_all);
  if (scorer && st.host)
    self->send(st.host, scorer_atom::value, store.partition(), shared_scorer{scorer});
  // New items whose folds wait (their cells changed by less than a tenth
  // since the last): all folded a moment after the events stop coming.
  if (st.data.live.folds_waiting() && !st.fold_scheduled) {
    st.fold_scheduled = true;
    self->delayed_send(self, std::chrono::milliseconds(200), live_atom::value, true);
  }
  // The user rows the new items need, one request per owning partition.
  auto users = st.data.live.take_row_requests(store);
  if (users.empty())
    return;
  std::map<std::uint32_t, std::vector<std::string>> by_owner;
  for (auto& u : users)
    by_owner[core::partition_of(u, store.partitions())].push_back(std::move(u));
  const auto version = st.data.model_version;
  for (auto& [p, list] : by_owner) {
    if (p >= st.directory.size() || !st.directory[p]) {
      // Nobody to ask yet: asked again when the host sends the shards.
      continue;
    }
    auto asked = std::make_shared<std::vector<std::string>>(std::move(list));
    self->request(st.directory[p], std::chrono::seconds(5), mrows_atom::value, version,
                  *asked)
        .then(
            [=](std::uint64_t v, const std::vector<std::uint32_t>& known,
                std::uint32_t ki, const std::vector<float>& ials, std::uint32_t km,
                const std::vector<float>& mf) {
              auto& st = self->state;
              // Rows of another model: after this partition's publish its
              // live side starts over (and asks again); an owner behind
              // (restarting, or its publish still to come) is asked again
              // in a second.
              if (v != st.data.model_version || v != version) {
                if (version == st.data.model_version)
                  self->delayed_send(self, std::chrono::seconds(1), peers_atom::value);
                return;
              }
              // Factor counts of this model (the owner serves the same
              // version), sizes in size_t: a reply of other sizes is
              // malformed and taken as no reply.
              const auto& um = st.data.model.users;
              const std::size_t n = asked->size(), kis = ki, kms = km;
              if (known.size() != n || kis != um.ials_factors || kms != um.mf_factors
                  || ials.size() != n * kis || mf.size() != (kms ? n * (kms + 1) : 0)) {
                self->delayed_send(self, std::chrono::seconds(1), peers_atom::value);
                return;
              }
              for (std::size_t i = 0; i < n; ++i)
                st.data.live.add_rows(*st.data.store, (*asked)[i], known[i] != 0,
                                      kis ? ials.data() + i * kis : nullptr, kis,
                                      kms ? mf.data() + i * (kms + 1) : nullptr,
                                      kms ? kms + 1 : 0);
              live_changed(self);
            },
            [=](caf::error&) {
              // Asked again in a second (the owner may be restarting).
              self->delayed_send(self, std::chrono::seconds(1), peers_atom::value);
            });
  }
}

void live_changed(shard_pointer self) {
  auto& st = self->state;
  if (st.live_scheduled)
    return;
  const auto since = std::chrono::steady_clock::now() - st.live_sent;
  if (since >= live_interval)
    return send_live(self);
  st.live_scheduled = true;
  self->delayed_send(
      self, std::chrono::duration_cast<std::chrono::microseconds>(live_interval - since),
      live_atom::value);
}

void snapshot_now(shard_pointer self) {
  auto& st = self->state;
  if (!st.log || st.log->failed())
    return;
  auto written = write_partition_snapshot(st.dur, st.data, *st.log);
  if (written) {
    st.snapshot_seq = st.log->last_seq();
    st.events_since_snapshot = 0;
    st.snapshot_retry.reset();
    return;
  }
  // Not fatal: the log still holds every record. Until a snapshot succeeds
  // a restart replays the log onto the previous one (with the model it
  // had); retried every few seconds.
  st.snapshot_retry = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::fprintf(stderr,
               "shardrec-node: partition %u: snapshot failed (retrying in 5 s; the log "
               "keeps every event): %s\n",
               st.data.store->partition(), written.err().message.c_str());
}

} // namespace detail

} // namespace shardrec::actors
