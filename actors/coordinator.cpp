// The coordinator: one per node, published on the node's port. The entry
// point of the admin CLI, the load client and joining nodes. It routes event
// and item batches to the shards that own them, runs queries (recommend:
// actors/query.cpp; similar; predict) and spawns a trainer per `train`. It
// merges what shards and node scorers return with dist/ functions and
// computes nothing itself. Its view of the cluster (partition map, shards,
// node scorers) comes from the node's membership actor; it monitors every
// shard and node scorer in that view and treats a dead one as unavailable.
//
// Messages (payload frames per schema/admin.capnp):
//   (start_atom, u16 port)                 -> ok_atom            to membership
//   (join_atom, frame PartitionMap, actor) -> frame PartitionMap to membership
//   (hello_atom ...)                       -> to membership (a restarted node)
//   (view_atom, frame PartitionMap, vector<actor> shards, vector<actor> scorers,
//    u32 node id)                          -> (nothing)          from membership
//   (role_atom, vector<actor> shards, vector<actor> scorers) -> (nothing) from
//                                          membership: by partition a follower's shard
//                                          and node scorer, for queries while its
//                                          primary's node is lost
//   (status_atom)                          -> frame StatusReply
//   (ingest_atom, frame EventBatch)        -> frame IngestReply
//   (items_atom, frame ItemBatch)          -> frame IngestReply
//   (shards_atom)                          -> u32 partitions, vector<actor> shards
//   (train_atom, frame TrainRequest)       -> frame TrainReply
//   (recommend_atom, frame RecommendRequest) -> frame RecommendReply
//   (similar_atom, frame SimilarRequest)   -> frame SimilarReply
//   (popular_atom, frame PopularRequest)   -> frame PopularReply
//   (predict_atom, vector<string> users, vector<string> items) -> vector<float>
//   (seen_atom, vector<string> users, vector<string> items) -> vector<u32>: 1 per
//                                          pair the cluster holds an event of
//   (hello_atom, u64 version)              -> to membership (an etcd member)
//   (export_atom, u32), (fetch_atom, u32, string, u64) -> to membership: a partition
//                                          move's source (actors/node_host.hpp)
//   (drain_atom, u32 node)                 -> string: node is to be drained (--etcd)
//   (drain_atom)                           -> vector<u32>: the drains asked for since,
//                                          for this node's etcd member
//   (retry_atom, u64 id)                   -> (nothing) to itself: send a write again
//   (nodes_atom, frame PartitionMap)       -> (nothing)          the nodes etcd knows,
//                                                                with their states
//   (membership_atom, actor)               -> (nothing)          its node's membership,
//                                                                once, before it serves
#include "actors/coordinator.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/membership.hpp"
#include "actors/query.hpp"
#include "actors/scatter.hpp"
#include "actors/trainer.hpp"
#include "core/partition.hpp"
#include "dist/routing.hpp"

namespace shardrec::actors {

namespace {

struct coordinator_state {
  node_config cfg;
  std::uint64_t retrained_at = 0; // events + items when a scheduled run last trained
  std::uint32_t node_id = 0;
  partition_map map;
  std::vector<caf::actor> shards;  // by partition; empty handle = unavailable
  std::vector<caf::actor> node_of; // by partition: the node scorer of its owner
  // With replicas: by partition, a follower's shard and its node's scorer,
  // which answer queries while the primary's node is lost (until the
  // failover flips the map). Empty handles: none.
  std::vector<caf::actor> follower_shards, follower_scorers;
  // `primary` with each lost entry replaced by its follower's.
  std::vector<caf::actor> or_follower(const std::vector<caf::actor>& primary,
                                      const std::vector<caf::actor>& follower) const {
    auto out = primary;
    for (std::size_t p = 0; p < out.size() && p < follower.size(); ++p)
      if (!out[p])
        out[p] = follower[p];
    return out;
  }
  caf::actor membership;
  std::vector<node_info> registry;     // with --etcd: every node etcd knows, with states
  std::vector<std::uint32_t> drains;   // asked for here, not yet taken by the etcd member
  std::set<caf::actor_addr> monitored; // every handle of a view, monitored once
  std::uint64_t next_query = 0;
  // Writes to a moving partition, sent again after a pause (retry_atom).
  std::map<std::uint64_t, std::function<void()>> retries;
  std::uint64_t next_retry = 0;
  // Recommend requests since the last flush (answered together).
  std::vector<queued_recommend> queued;
  bool flush_sent = false;
  static inline const char* name = "coordinator";
};

using coordinator_pointer = caf::stateful_actor<coordinator_state>*;

caf::error error_of(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

// With --etcd, the map's nodes get their states from etcd (a node of the
// map that etcd does not know is down) and the nodes etcd knows but the map
// does not list yet (joining) are added.
void merge_registry(partition_map& m, const std::vector<node_info>& registry) {
  if (registry.empty())
    return;
  for (auto& n : m.nodes) {
    n.state = "down";
    for (const auto& r : registry)
      if (r.id == n.id) {
        n.state = r.state;
        n.controller = r.controller;
      }
  }
  for (const auto& r : registry)
    if (std::none_of(m.nodes.begin(), m.nodes.end(),
                     [&](const node_info& n) { return n.id == r.id; }))
      m.nodes.push_back(r);
}

// Frames of the non-empty per-partition batches (the others stay unset);
// make(items) builds the batch message of one partition.
template <class T, class Make>
std::vector<std::optional<frame>> encode_each(std::vector<std::vector<T>>& per,
                                              Make make) {
  std::vector<std::optional<frame>> frames(per.size());
  for (std::size_t p = 0; p < per.size(); ++p)
    if (!per[p].empty())
      frames[p] = encode(make(std::move(per[p])));
  return frames;
}

caf::error no_map_yet() {
  return error_of(core::errc::invalid_argument, "the cluster has no partition map yet");
}

// One write split over partitions: answered once every part is stored.
struct write_job {
  std::shared_ptr<ingest_result> total;
  bool count_replies = false;
  std::size_t pending = 0;
  bool done = false;
  caf::typed_response_promise<frame> rp;
  std::chrono::steady_clock::time_point deadline;
};

// How long a write keeps being sent again to a moving partition, and how
// often: the move flips the map within a few seconds.
constexpr std::chrono::seconds moved_budget{30};
constexpr std::chrono::milliseconds moved_pause{100};

template <class Atom>
void send_part(coordinator_pointer self, std::shared_ptr<write_job> job, std::uint32_t p,
               frame f) {
  auto& st = self->state;
  if (job->done)
    return;
  if (p >= st.shards.size() || !st.shards[p]) {
    job->done = true;
    job->rp.deliver(
        error_of(core::errc::io_error, "partition " + std::to_string(p)
                                           + " is unavailable; its part was not stored"));
    return;
  }
  self->request(st.shards[p], part_timeout, Atom::value, f)
      .then(
          [self, job](const frame& r) {
            if (job->count_replies)
              if (auto d = decode_ingest_result(r)) {
                job->total->accepted += d->accepted;
                job->total->rejected += d->rejected;
              }
            if (--job->pending == 0 && !job->done) {
              job->done = true;
              job->rp.deliver(encode(*job->total));
            }
          },
          [self, job, p, f](caf::error& err) {
            if (job->done)
              return;
            // Moving, a new primary, or its node did not answer (lost,
            // frozen: a follower takes over): sent again once the view names
            // the partition's new owner; its batch id keeps it from being
            // stored twice.
            if ((is_moved(err) || err.category() != caf::atom("shardrec"))
                && std::chrono::steady_clock::now() < job->deadline) {
              auto& st = self->state;
              const auto id = ++st.next_retry;
              st.retries[id] = [self, job, p, f] { send_part<Atom>(self, job, p, f); };
              self->delayed_send(self, moved_pause, retry_atom::value, id);
              return;
            }
            job->done = true;
            job->rp.deliver(
                error_of(core::errc::io_error,
                         "partition " + std::to_string(p)
                             + " did not store its part: " + self->system().render(err)));
          });
}

// Sends each partition's frame (unset: nothing for it) to its shard; the
// reply is `total` (with the shards' counts added if count_replies) once
// every one has stored its part, or the first failure. A part refused
// because its partition is moving is sent again until the map names the
// new owner (moved_budget).
template <class Atom>
caf::result<frame>
route_to_shards(coordinator_pointer self, std::vector<std::optional<frame>> per,
                std::shared_ptr<ingest_result> total, bool count_replies) {
  auto& st = self->state;
  for (std::uint32_t p = 0; p < per.size(); ++p)
    if (per[p] && (p >= st.shards.size() || !st.shards[p]))
      return error_of(core::errc::io_error, "partition " + std::to_string(p)
                                                + " is unavailable; batch not stored");
  auto job = std::make_shared<write_job>();
  job->total = std::move(total);
  job->count_replies = count_replies;
  job->rp = self->make_response_promise<frame>();
  job->deadline = std::chrono::steady_clock::now() + moved_budget;
  for (const auto& f : per)
    job->pending += f.has_value();
  auto rp = job->rp;
  if (job->pending == 0) {
    job->done = true;
    rp.deliver(encode(*job->total));
    return rp;
  }
  for (std::uint32_t p = 0; p < per.size(); ++p)
    if (per[p])
      send_part<Atom>(self, job, p, std::move(*per[p]));
  return rp;
}

// Monitors every handle in `lists` not monitored yet (its down message
// empties it wherever the coordinator keeps it).
void monitor_each(coordinator_pointer self,
                  std::initializer_list<const std::vector<caf::actor>*> lists) {
  auto& st = self->state;
  for (const auto* v : lists)
    for (const auto& a : *v)
      if (a && st.monitored.insert(a.address()).second)
        self->monitor(a);
}

// --retrain-every: on the cluster's first node (with etcd: on the node that
// is the controller when the period ends), a training run (the default
// request) every cfg.retrain_every, when the cluster holds events and
// something changed since the last run this schedule started.
void schedule_retrain(coordinator_pointer self) {
  if (self->state.cfg.retrain_every.count() > 0)
    self->delayed_send(self, self->state.cfg.retrain_every, retrain_atom::value);
}

void retrain(coordinator_pointer self) {
  auto& reg = self->state.registry;
  if (!reg.empty() && std::none_of(reg.begin(), reg.end(), [&](const node_info& n) {
        return n.controller && n.id == self->state.node_id;
      })) {
    schedule_retrain(self); // another node is the controller now
    return;
  }
  self->request(caf::actor_cast<caf::actor>(self), admin_timeout, status_atom::value)
      .then(
          [=](const frame& f) {
            auto s = decode_status_reply(f);
            std::uint64_t changes = 0, version = 0;
            if (s)
              for (const auto& p : s->partitions) {
                changes += p.user_events + p.items;
                version = std::max(version, p.model_version);
              }
            auto& st = self->state;
            if (!s || !s->missing.empty() || changes == 0
                || (version > 0 && changes == st.retrained_at)) {
              schedule_retrain(self);
              return;
            }
            const auto t0 = std::chrono::steady_clock::now();
            self->request(caf::actor_cast<caf::actor>(self), train_timeout,
                          train_atom::value, encode(train_request{}))
                .then(
                    [=](const frame&) {
                      self->state.retrained_at = changes;
                      std::fprintf(stderr,
                                   "shardrec-node: scheduled training done in %.1f s\n",
                                   std::chrono::duration<double>(
                                       std::chrono::steady_clock::now() - t0)
                                       .count());
                      schedule_retrain(self);
                    },
                    [=](caf::error& err) {
                      std::fprintf(stderr,
                                   "shardrec-node: scheduled training failed: %s\n",
                                   self->system().render(err).c_str());
                      schedule_retrain(self);
                    });
          },
          [=](caf::error&) { schedule_retrain(self); });
}

caf::behavior coordinator(coordinator_pointer self) {
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto* v : {&st.shards, &st.node_of, &st.follower_shards, &st.follower_scorers})
      for (auto& a : *v)
        if (a && a.address() == dm.source)
          a = caf::actor{};
  });
  if (self->state.cfg.first || self->state.cfg.etcd)
    schedule_retrain(self);
  return {
      [=](retrain_atom) { retrain(self); },
      [=](retry_atom, std::uint64_t id) {
        auto& st = self->state;
        auto it = st.retries.find(id);
        if (it == st.retries.end())
          return;
        auto again = std::move(it->second);
        st.retries.erase(it);
        again();
      },
      [=](start_atom, std::uint16_t port) {
        return self->delegate(self->state.membership, start_atom::value, port);
      },
      [=](join_atom, const frame& f, const caf::actor& peer) {
        return self->delegate(self->state.membership, join_atom::value, f, peer);
      },
      [=](hello_atom) {
        return self->delegate(self->state.membership, hello_atom::value);
      },
      [=](export_atom, std::uint32_t p) {
        return self->delegate(self->state.membership, export_atom::value, p);
      },
      [=](fetch_atom, std::uint32_t p, const std::string& file, std::uint64_t offset) {
        return self->delegate(self->state.membership, fetch_atom::value, p, file, offset);
      },
      [=](hello_atom, std::uint64_t version) {
        return self->delegate(self->state.membership, hello_atom::value, version);
      },
      [=](drain_atom, std::uint32_t node) -> caf::result<std::string> {
        // shardrec drain NODE: recorded in etcd by this node's etcd member.
        auto& st = self->state;
        if (st.registry.empty())
          return error_of(core::errc::invalid_argument,
                          "drain needs a cluster whose nodes run with --etcd");
        std::size_t others = 0;
        bool known = false;
        for (const auto& n : st.registry) {
          known |= n.id == node;
          others += n.id != node && n.state == "serving";
        }
        if (!known)
          return error_of(core::errc::unknown_id,
                          "no live node " + std::to_string(node) + " (see `nodes`)");
        if (others == 0)
          return error_of(core::errc::invalid_argument,
                          "node " + std::to_string(node)
                              + " is the only serving node: its partitions have nowhere "
                                "to go");
        st.drains.push_back(node);
        return "node " + std::to_string(node)
               + " drains: its partitions move to the other nodes, then it leaves";
      },
      [=](drain_atom) {
        auto out = std::move(self->state.drains);
        self->state.drains.clear();
        return out;
      },
      [=](nodes_atom, const frame& f) {
        // The nodes as etcd knows them (their states, the controller), from
        // this node's etcd member; status replies show them.
        if (auto m = decode_partition_map(f))
          self->state.registry = std::move(m->nodes);
      },
      [=](hello_atom, std::uint32_t id, const std::vector<std::uint32_t>& parts,
          const std::vector<caf::actor>& shards, const caf::actor& scorer,
          const caf::actor& membership) {
        return self->delegate(self->state.membership, hello_atom::value, id, parts,
                              shards, scorer, membership);
      },
      [=](view_atom, const frame& f, const std::vector<caf::actor>& shards,
          const std::vector<caf::actor>& scorers, std::uint32_t node_id) {
        auto& st = self->state;
        if (self->current_sender() != st.membership.address())
          return;
        auto m = decode_partition_map(f);
        if (!m)
          return;
        st.map = std::move(*m);
        st.node_id = node_id;
        st.shards = shards;
        st.node_of = scorers;
        monitor_each(self, {&st.shards, &st.node_of});
      },
      [=](role_atom, const std::vector<caf::actor>& shards,
          const std::vector<caf::actor>& scorers) {
        // From membership, after each install of a map with followers.
        auto& st = self->state;
        if (self->current_sender() != st.membership.address())
          return;
        st.follower_shards = shards;
        st.follower_scorers = scorers;
        monitor_each(self, {&st.follower_shards, &st.follower_scorers});
      },
      [=](status_atom) -> caf::result<frame> {
        // Every partition's status; one that does not answer is missing.
        auto reply = std::make_shared<status_reply>();
        reply->map = self->state.map;
        merge_registry(reply->map, self->state.registry);
        auto rp = self->make_response_promise<frame>();
        // Half the client's timeout: a frozen node's partitions are
        // reported missing before the client gives up on the whole reply.
        scatter<frame>(
            self, to_each(self->state.shards, caf::make_message(stats_atom::value)),
            admin_timeout / 2,
            [reply](std::size_t p, frame& f) {
              if (auto ps = decode_partition_status(f))
                reply->partitions.push_back(*ps);
              else
                reply->missing.push_back(static_cast<std::uint32_t>(p));
            },
            [reply](std::size_t p, caf::error&) {
              reply->missing.push_back(static_cast<std::uint32_t>(p));
            },
            [reply, rp]() mutable {
              std::sort(
                  reply->partitions.begin(), reply->partitions.end(),
                  [](const auto& a, const auto& b) { return a.partition < b.partition; });
              std::sort(reply->missing.begin(), reply->missing.end());
              rp.deliver(encode(*reply));
            });
        return rp;
      },
      [=](membership_atom, const caf::actor& m) {
        // Sent by spawn_node before this actor's handle is given to anyone.
        auto& st = self->state;
        if (st.membership || !m)
          return;
        st.membership = m;
        self->link_to(m); // the node lives and dies as one
      },
      [=](ingest_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_event_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        const auto parts = self->state.map.partitions;
        if (parts == 0)
          return no_map_yet();
        auto routed = dist::route_events(std::move(batch->events), parts);
        auto total = std::make_shared<ingest_result>(
            ingest_result{routed.accepted, routed.rejected, std::move(routed.problems)});
        const auto scale = batch->scale;
        const bool has_scale = batch->has_scale;
        auto frames = encode_each(routed.per_partition, [scale, has_scale](auto events) {
          return event_batch{std::move(events), scale, has_scale, new_batch_id()};
        });
        return route_to_shards<ingest_atom>(self, std::move(frames), total, false);
      },
      [=](items_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_item_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        const auto parts = self->state.map.partitions;
        if (parts == 0)
          return no_map_yet();
        auto per = dist::route_items(std::move(batch->items), parts);
        auto frames = encode_each(per, [](auto items) {
          return item_batch{std::move(items), new_batch_id()};
        });
        return route_to_shards<items_atom>(self, std::move(frames),
                                           std::make_shared<ingest_result>(), true);
      },
      [=](shards_atom) -> caf::result<std::uint32_t, std::vector<caf::actor>> {
        // Every partition's shard, for clients that send batches straight to
        // the owners (bulk load). Empty handles: unavailable partitions.
        return {self->state.map.partitions,
                std::vector<caf::actor>(self->state.shards.begin(),
                                        self->state.shards.end())};
      },
      [=](train_atom, const frame& f) -> caf::result<frame> {
        auto rp = self->make_response_promise();
        std::vector<caf::actor> shards(self->state.shards.begin(),
                                       self->state.shards.end());
        spawn_trainer(self->system(), std::move(shards), f, rp);
        return caf::delegated<frame>();
      },
      [=](recommend_atom, const frame& f) -> caf::result<frame> {
        auto req = decode_recommend_request(f);
        if (!req)
          return to_caf_error(req.err());
        auto& st = self->state;
        auto rp = self->make_response_promise<frame>();
        if (!check_recommend(*req, static_cast<std::uint32_t>(st.shards.size()), rp))
          return rp;
        // Query ids: node id in the high bits, a counter below.
        auto qid = (std::uint64_t{st.node_id} << 48) | ++st.next_query;
        st.queued.push_back({std::move(*req), qid, rp});
        // The flush lands behind the requests already in the mailbox: those
        // that arrived together are answered together.
        if (!st.flush_sent) {
          st.flush_sent = true;
          self->send(self, flush_atom::value);
        }
        return rp;
      },
      [=](flush_atom) {
        auto& st = self->state;
        st.flush_sent = false;
        // At most max_batch per flush: frames and kept scores stay bounded;
        // the rest goes at the next flush.
        constexpr std::size_t max_batch = 128;
        std::vector<queued_recommend> batch;
        if (st.queued.size() <= max_batch) {
          batch = std::move(st.queued);
          st.queued.clear();
        } else {
          auto cut = st.queued.begin() + static_cast<std::ptrdiff_t>(max_batch);
          batch.assign(std::make_move_iterator(st.queued.begin()),
                       std::make_move_iterator(cut));
          st.queued.erase(st.queued.begin(), cut);
          st.flush_sent = true;
          self->send(self, flush_atom::value);
        }
        if (!batch.empty())
          run_recommend_batch(self, st.or_follower(st.shards, st.follower_shards),
                              st.or_follower(st.node_of, st.follower_scorers),
                              std::move(batch), &st.queued);
      },
      [=](predict_atom, std::vector<std::string> users,
          std::vector<std::string> items) -> caf::result<std::vector<float>> {
        auto rp = self->make_response_promise<std::vector<float>>();
        run_predict(self, self->state.shards, std::move(users), std::move(items), rp);
        return rp;
      },
      [=](seen_atom, std::vector<std::string> users,
          std::vector<std::string> items) -> caf::result<std::vector<std::uint32_t>> {
        auto rp = self->make_response_promise<std::vector<std::uint32_t>>();
        run_seen(self, self->state.shards, std::move(users), std::move(items), rp);
        return rp;
      },
      [=](popular_atom, const frame& f) -> caf::result<frame> {
        auto req = decode_popular_request(f);
        if (!req)
          return to_caf_error(req.err());
        auto rp = self->make_response_promise<frame>();
        run_popular(self, self->state.shards, *req, rp);
        return rp;
      },
      [=](similar_atom, const frame& f) -> caf::result<frame> {
        auto req = decode_similar_request(f);
        if (!req)
          return to_caf_error(req.err());
        auto rp = self->make_response_promise<frame>();
        const auto& st = self->state;
        run_similar(self, st.or_follower(st.shards, st.follower_shards), std::move(*req),
                    rp);
        return rp;
      },
  };
}

} // namespace

caf::actor spawn_coordinator(caf::actor_system& sys, const node_config& cfg,
                             caf::actor host, caf::actor scorer) {
  return sys.spawn([cfg, host, scorer](coordinator_pointer self) {
    self->state.cfg = cfg;
    // The node lives and dies as one.
    self->link_to(host);
    self->link_to(scorer);
    return coordinator(self);
  });
}

} // namespace shardrec::actors
