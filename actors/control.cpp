#include "actors/control.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/local_messages.hpp"
#include "actors/query.hpp"
#include "actors/shard.hpp"
#include "actors/trainer.hpp"
#include "dist/node_query.hpp"
#include "core/partition.hpp"

namespace shardrec::actors {

namespace {

struct peer {
  node_info info;
  caf::actor control;
};

struct control_state {
  control_config cfg;
  std::uint32_t node_id = 0;
  partition_map map;
  std::vector<shard_actor> shards;            // by partition; empty handle = unavailable
  std::map<std::uint32_t, shard_actor> local; // partitions hosted here
  std::vector<peer> peers;                    // leader only: every node, self included
  std::uint64_t next_query = 0;
  std::vector<caf::actor> node_of; // by partition: its node's control actor
  // This node's share of every query: the scorers of its partitions.
  dist::node_query_engine engine;
  // Recommend requests since the last flush (answered together).
  std::vector<queued_recommend> queued;
  bool flush_sent = false;
  static inline const char* name = "control";
};

using control_pointer = caf::stateful_actor<control_state>*;

caf::error error_of(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

// Round-robin assignment of partitions to the nodes, in node-id order.
void assign_round_robin(partition_map& m) {
  m.owner.resize(m.partitions);
  for (std::uint32_t p = 0; p < m.partitions; ++p)
    m.owner[p] = m.nodes[p % m.nodes.size()].id;
  ++m.version;
}

// Makes this node host exactly the partitions the map gives it.
std::pair<std::vector<std::uint32_t>, std::vector<caf::actor>>
host_partitions(control_pointer self, const partition_map& m) {
  auto& st = self->state;
  std::vector<std::uint32_t> parts;
  std::vector<caf::actor> handles;
  for (std::uint32_t p = 0; p < m.partitions; ++p) {
    if (m.owner[p] != st.node_id) {
      auto it = st.local.find(p);
      if (it != st.local.end()) {
        self->send_exit(it->second, caf::exit_reason::user_shutdown);
        st.engine.set_scorer(p, nullptr);
        st.local.erase(it);
      }
      continue;
    }
    auto it = st.local.find(p);
    if (it == st.local.end()) {
      auto s = spawn_shard(self->system(), p, m.partitions, st.node_id,
                           caf::actor_cast<caf::actor>(self));
      self->monitor(s);
      self->link_to(s); // shards die with their node's control actor
      it = st.local.emplace(p, s).first;
    }
    parts.push_back(p);
    handles.push_back(caf::actor_cast<caf::actor>(it->second));
  }
  return {parts, handles};
}

void install(control_pointer self, const partition_map& m,
             const std::vector<caf::actor>& handles,
             const std::vector<caf::actor>& controls) {
  auto& st = self->state;
  st.map = m;
  st.shards.assign(m.partitions, shard_actor{});
  for (std::uint32_t p = 0; p < m.partitions && p < handles.size(); ++p) {
    st.shards[p] = caf::actor_cast<shard_actor>(handles[p]);
    if (st.local.count(p) == 0 && st.shards[p])
      self->monitor(st.shards[p]);
  }
  // Each partition's node's control actor (the node-level fan-out of queries).
  st.node_of.assign(m.partitions, caf::actor{});
  for (std::uint32_t p = 0; p < m.partitions && p < m.owner.size(); ++p)
    for (std::size_t k = 0; k < m.nodes.size() && k < controls.size(); ++k)
      if (m.nodes[k].id == m.owner[p])
        st.node_of[p] = controls[k];
  for (const auto& c : controls)
    if (c && c != self)
      self->monitor(c);
}

// Leader: re-assigns partitions over st.peers and installs the new map on
// every node; delivers the map to `rp` when all nodes have it.
void rebalance(control_pointer self, caf::typed_response_promise<frame> rp) {
  auto& st = self->state;
  partition_map m = st.map;
  m.nodes.clear();
  for (const auto& p : st.peers)
    m.nodes.push_back(p.info);
  assign_round_robin(m);
  struct gather {
    std::vector<caf::actor> handles;
    std::size_t left = 0;
    bool failed = false;
  };
  auto g = std::make_shared<gather>();
  g->handles.resize(m.partitions);
  g->left = st.peers.size();
  auto mf = encode(m);
  for (const auto& p : st.peers) {
    self->request(p.control, admin_timeout, assign_atom::value, mf)
        .then(
            [=](const std::vector<std::uint32_t>& parts,
                const std::vector<caf::actor>& hs) mutable {
              for (std::size_t k = 0; k < parts.size() && k < hs.size(); ++k)
                if (parts[k] < g->handles.size())
                  g->handles[parts[k]] = hs[k];
              if (--g->left > 0 || g->failed)
                return;
              std::vector<caf::actor> controls;
              for (const auto& q : self->state.peers)
                controls.push_back(q.control);
              for (const auto& q : self->state.peers)
                self->send(q.control, install_atom::value, mf, g->handles, controls);
              rp.deliver(mf);
            },
            [=](caf::error& err) mutable {
              if (!g->failed)
                rp.deliver(std::move(err));
              g->failed = true;
            });
  }
}

// Sends each non-empty per-partition frame to its shard with `Atom` and
// delivers `total` once all are stored (when count_replies, the shards'
// accepted/rejected counts are added to it), or the first error.
template <class Atom>
caf::result<frame>
route_to_shards(control_pointer self, std::vector<std::optional<frame>> per,
                std::shared_ptr<ingest_result> total, bool count_replies) {
  auto& st = self->state;
  auto left = std::make_shared<std::size_t>(0);
  for (std::uint32_t p = 0; p < per.size(); ++p) {
    if (!per[p])
      continue;
    if (p >= st.shards.size() || !st.shards[p])
      return error_of(core::errc::io_error, "partition " + std::to_string(p)
                                                + " is unavailable; batch not stored");
    ++*left;
  }
  if (*left == 0)
    return encode(*total);
  auto rp = self->make_response_promise<frame>();
  auto failed = std::make_shared<bool>(false);
  for (std::uint32_t p = 0; p < per.size(); ++p) {
    if (!per[p])
      continue;
    self->request(st.shards[p], ingest_timeout, Atom::value, std::move(*per[p]))
        .then(
            [=](const frame& r) mutable {
              if (count_replies)
                if (auto d = decode_ingest_result(r)) {
                  total->accepted += d->accepted;
                  total->rejected += d->rejected;
                }
              if (--*left == 0 && !*failed)
                rp.deliver(encode(*total));
            },
            [=](caf::error& err) mutable {
              if (!*failed)
                rp.deliver(
                    error_of(core::errc::io_error, "partition " + std::to_string(p)
                                                       + " did not store its part: "
                                                       + self->system().render(err)));
              *failed = true;
            });
  }
  return rp;
}

caf::behavior control_behavior(control_pointer self) {
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& s : st.shards)
      if (s && s.address() == dm.source)
        s = shard_actor{};
    for (auto& c : st.node_of)
      if (c && c.address() == dm.source)
        c = caf::actor{};
    for (auto it = st.local.begin(); it != st.local.end();) {
      if (it->second.address() == dm.source) {
        st.engine.set_scorer(it->first, nullptr);
        it = st.local.erase(it);
      } else {
        ++it;
      }
    }
  });
  return {
      [=](status_atom) -> caf::result<frame> {
        auto rp = self->make_response_promise<frame>();
        auto reply = std::make_shared<status_reply>();
        reply->map = self->state.map;
        auto left = std::make_shared<std::size_t>(self->state.shards.size());
        auto finish = [=]() mutable {
          if (--*left > 0)
            return;
          std::sort(
              reply->partitions.begin(), reply->partitions.end(),
              [](const auto& a, const auto& b) { return a.partition < b.partition; });
          std::sort(reply->missing.begin(), reply->missing.end());
          rp.deliver(encode(*reply));
        };
        if (*left == 0)
          return encode(*reply);
        for (std::uint32_t p = 0; p < self->state.shards.size(); ++p) {
          auto s = self->state.shards[p];
          if (!s) {
            reply->missing.push_back(p);
            finish();
            continue;
          }
          self->request(s, admin_timeout, stats_atom::value)
              .then(
                  [=](const frame& f) mutable {
                    if (auto ps = decode_partition_status(f))
                      reply->partitions.push_back(*ps);
                    else
                      reply->missing.push_back(p);
                    finish();
                  },
                  [=](caf::error&) mutable {
                    reply->missing.push_back(p);
                    finish();
                  });
        }
        return rp;
      },
      [=](ingest_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_event_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        auto& st = self->state;
        auto parts = st.map.partitions;
        if (parts == 0)
          return error_of(core::errc::invalid_argument,
                          "the cluster has no partition map yet");
        std::vector<event_batch> per(parts);
        auto total = std::make_shared<ingest_result>();
        for (std::size_t k = 0; k < batch->events.size(); ++k) {
          auto& e = batch->events[k];
          if (auto v = dist::validate(e); !v) {
            ++total->rejected;
            if (total->problems.size() < 10)
              total->problems.push_back("event " + std::to_string(k) + ": "
                                        + v.err().message);
            continue;
          }
          ++total->accepted;
          auto pu = core::partition_of(e.user, parts);
          auto pi = core::partition_of(e.item, parts);
          per[pu].events.push_back(e);
          if (pi != pu)
            per[pi].events.push_back(std::move(e));
        }
        std::vector<std::optional<frame>> frames(parts);
        for (std::uint32_t p = 0; p < parts; ++p)
          if (!per[p].events.empty()) {
            per[p].scale = batch->scale;
            frames[p] = encode(per[p]);
          }
        return route_to_shards<ingest_atom>(self, std::move(frames), total, false);
      },
      [=](items_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_item_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        auto& st = self->state;
        auto parts = st.map.partitions;
        if (parts == 0)
          return error_of(core::errc::invalid_argument,
                          "the cluster has no partition map yet");
        std::vector<item_batch> per(parts);
        for (auto& it : batch->items)
          per[core::partition_of(it.first, parts)].items.push_back(std::move(it));
        std::vector<std::optional<frame>> frames(parts);
        for (std::uint32_t p = 0; p < parts; ++p)
          if (!per[p].items.empty())
            frames[p] = encode(per[p]);
        return route_to_shards<items_atom>(self, std::move(frames),
                                           std::make_shared<ingest_result>(), true);
      },
      [=](join_atom, const frame& f,
          const caf::actor& peer_control) -> caf::result<frame> {
        auto& st = self->state;
        if (!st.cfg.leader)
          return error_of(core::errc::invalid_argument,
                          "this node is not the cluster's first node; join that one");
        auto m = decode_partition_map(f);
        if (!m)
          return to_caf_error(m.err());
        if (m->nodes.size() != 1)
          return error_of(core::errc::bad_message, "join: expected exactly one node");
        node_info info = m->nodes.front();
        std::uint32_t next = 0;
        for (const auto& p : st.peers)
          next = std::max(next, p.info.id + 1);
        info.id = next;
        st.peers.push_back({info, peer_control});
        auto rp = self->make_response_promise<frame>();
        rebalance(self, rp);
        return rp;
      },
      [=](assign_atom, const frame& f)
          -> caf::result<std::vector<std::uint32_t>, std::vector<caf::actor>> {
        auto m = decode_partition_map(f);
        if (!m)
          return to_caf_error(m.err());
        auto& st = self->state;
        // A joining node learns its id from the map: the node with its address.
        for (const auto& n : m->nodes)
          if (n.host == st.cfg.host && n.port == st.cfg.port)
            st.node_id = n.id;
        auto hosted = host_partitions(self, *m);
        return {std::move(hosted.first), std::move(hosted.second)};
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
          run_recommend_batch(self, st.shards, st.node_of, std::move(batch));
      },
      [=](nquery_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_node_query_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        return encode(self->state.engine.answer(*batch, max_because));
      },
      [=](scorer_atom, std::uint32_t partition, const shared_scorer& s) {
        // Only from the shard now hosting the partition (not a late message
        // of one it replaced).
        auto& st = self->state;
        auto it = st.local.find(partition);
        if (it != st.local.end() && self->current_sender() == it->second.address())
          st.engine.set_scorer(partition, s);
      },
      [=](predict_atom, std::vector<std::string> users,
          std::vector<std::string> items) -> caf::result<std::vector<float>> {
        auto rp = self->make_response_promise<std::vector<float>>();
        run_predict(self, self->state.shards, std::move(users), std::move(items), rp);
        return rp;
      },
      [=](similar_atom, const frame& f) -> caf::result<frame> {
        auto req = decode_similar_request(f);
        if (!req)
          return to_caf_error(req.err());
        auto rp = self->make_response_promise<frame>();
        run_similar(self, self->state.shards, std::move(*req), rp);
        return rp;
      },
      [=](install_atom, const frame& f, const std::vector<caf::actor>& handles,
          const std::vector<caf::actor>& controls) {
        if (auto m = decode_partition_map(f))
          install(self, *m, handles, controls);
      },
  };
}

} // namespace

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<frame>("shardrec_frame");
  cfg.add_message_type<std::vector<caf::actor>>("std::vector<@actor>");
  cfg.add_message_type<std::vector<std::uint32_t>>("std::vector<@u32>");
  cfg.add_message_type<std::vector<frame>>("std::vector<shardrec_frame>");
  cfg.add_message_type<std::vector<std::string>>("std::vector<@str>");
  cfg.add_message_type<std::vector<float>>("std::vector<float>");
}

caf::actor spawn_control(caf::actor_system& sys, const control_config& cfg) {
  return sys.spawn([cfg](control_pointer self) {
    auto& st = self->state;
    st.cfg = cfg;
    if (cfg.leader) {
      node_info me{0, cfg.host, cfg.port};
      st.peers.push_back({me, caf::actor_cast<caf::actor>(self)});
      partition_map m;
      m.partitions = cfg.partitions;
      m.nodes.push_back(me);
      assign_round_robin(m);
      auto hosted = host_partitions(self, m);
      install(self, m, hosted.second, {caf::actor_cast<caf::actor>(self)});
    }
    return control_behavior(self);
  });
}

} // namespace shardrec::actors
