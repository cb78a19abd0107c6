// The membership actor: one per node. Keeps the partition map and the
// handles of every partition's shard and every node's scorer, and hands that
// view to its node's coordinator after every change. On the cluster's first
// node it also admits joining nodes: it assigns partitions round-robin, asks
// every node to host its share (assign) and installs the new map everywhere.
// Spawned by spawn_node (actors/node.cpp), linked by its coordinator.
//
// Messages:
//   (start_atom, u16 port)                        -> ok_atom   from the node's main
//   (join_atom, frame PartitionMap, actor membership) -> frame PartitionMap
//                                                    first node only; refused
//                                                    while the cluster holds data
//   (assign_atom, frame PartitionMap)             -> vector<u32> partitions,
//                                                    vector<actor> shards, actor scorer
//   (hello_atom)                                  -> u32 node id, vector<u32> partitions,
//                                                    vector<actor> their shards,
//                                                    actor scorer, actor membership
//   (hello_atom, u32 node id, vector<u32> partitions, vector<actor> shards,
//                actor scorer, actor membership)  -> the same of this node: a
//                                                    restarted node's handles
//                                                    replace those of its previous life
//   (install_atom, frame PartitionMap, vector<actor> shards by partition,
//                  vector<actor> scorers by node of the map) -> (nothing)
//   (install_atom, ..., vector<actor> followers)  -> (nothing) from this node's
//                                                    etcd member: also every
//                                                    partition's followers'
//                                                    shards (in map order,
//                                                    flattened); each hosted
//                                                    shard gets its role
//                                                    (role_atom: epoch, primary,
//                                                    followers), the coordinator
//                                                    a follower per partition
//                                                    for queries
//   (lagging_atom, u32 partition, u32 node, u64 epoch) -> (nothing) from a
//                                                    hosted primary: a follower
//                                                    it cannot bring up to date;
//                                                    node = this node: the shard
//                                                    restarted as the primary of
//                                                    an epoch its log holds (it
//                                                    needs a new epoch)
//   (lagging_atom)                                -> vector<u64> those reports
//                                                    (partition, node, epoch)...,
//                                                    for the etcd member
//   (export_atom, u32 partition), (fetch_atom, u32, string, u64)
//                                                 -> to the node host (a partition move)
//   (hello_atom, u64 version)                     -> u32 node id, u64 assigned version,
//                                                    vector<u32> partitions,
//                                                    vector<actor> shards, actor scorer:
//                                                    what this node hosts for the newest
//                                                    map it was assigned (with --etcd,
//                                                    each node installs a map once every
//                                                    live node hosts its share of it)
// TODO(elastic): joins move no data yet, so a join is refused once any
// partition holds events or items; the elastic issue moves partitions.
#include "actors/membership.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/scatter.hpp"
#include "storage/files.hpp"

namespace shardrec::actors {

namespace {

struct peer {
  node_info info;
  caf::actor membership;
};

struct membership_state {
  node_config cfg;
  std::uint16_t port = 0;
  std::uint32_t node_id = 0;
  partition_map map;
  std::vector<caf::actor> shards;    // by partition; empty: unavailable
  std::vector<caf::actor> scorers;   // by partition: the node scorer of its owner
  std::vector<peer> peers;           // first node only: every node, this one included
  std::uint64_t highest_version = 0; // first node: of every map it made
  bool started = false;              // (start_atom) has run
  // The newest map this node hosts its share of (assign), and that share.
  std::uint64_t assigned_version = 0;
  std::vector<std::uint32_t> assigned_parts;
  std::vector<caf::actor> assigned_shards;
  bool joining = false; // first node: a join is being admitted
  // Followers this node's primaries found lagging: partition, follower node,
  // epoch (taken by the etcd member, which tells the controller).
  std::vector<std::uint64_t> lagging;
  caf::actor host, scorer, coordinator;
  static inline const char* name = "membership";
};

using membership_pointer = caf::stateful_actor<membership_state>*;

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

void publish_view(membership_pointer self) {
  auto& st = self->state;
  self->send(st.coordinator, view_atom::value, encode(st.map), st.shards, st.scorers,
             st.node_id);
  // The shards ask each other for rows between trainings (dist/live_items.hpp).
  self->send(st.host, peers_atom::value, st.shards);
}

// This node hosts `parts` (with these shards) for map `version`: what a
// (hello_atom, version) answers. An older version's late reply is ignored.
void record_share(membership_state& st, std::uint64_t version,
                  std::vector<std::uint32_t> parts, std::vector<caf::actor> shards) {
  if (version < st.assigned_version)
    return;
  st.assigned_version = version;
  st.assigned_parts = std::move(parts);
  st.assigned_shards = std::move(shards);
}

// DATA_DIR/node.state: who this node is and the map it installed, for a
// restart. A failure is reported (the node keeps serving; a restart would
// come back as a new node).
void persist(membership_pointer self) {
  auto& st = self->state;
  if (st.cfg.dur.data_dir.empty())
    return;
  const auto f = encode(node_state{st.node_id, st.map});
  const auto path = st.cfg.dur.data_dir + "/node.state";
  auto written = storage::write_blob(
      path,
      std::string_view(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size()));
  if (!written)
    std::fprintf(stderr, "shardrec-node: cannot save the node's identity: %s\n",
                 written.err().message.c_str());
}

// This node's partitions of the map and their shards (for a hello).
std::pair<std::vector<std::uint32_t>, std::vector<caf::actor>>
own_shards(const membership_state& st) {
  std::pair<std::vector<std::uint32_t>, std::vector<caf::actor>> out;
  for (std::uint32_t p = 0; p < st.map.partitions && p < st.map.owner.size(); ++p)
    if (st.map.owner[p] == st.node_id && p < st.shards.size()) {
      out.first.push_back(p);
      out.second.push_back(st.shards[p]);
    }
  return out;
}

// A restarted node's partitions of the map, as its hello says, replace the
// handles of its previous life.
void greeted(membership_pointer self, std::uint32_t id,
             const std::vector<std::uint32_t>& parts,
             const std::vector<caf::actor>& shards, const caf::actor& scorer,
             const caf::actor& membership) {
  auto& st = self->state;
  if (id == st.node_id)
    return;
  for (std::size_t i = 0; i < parts.size() && i < shards.size(); ++i) {
    const auto p = parts[i];
    if (p < st.map.partitions && p < st.map.owner.size() && st.map.owner[p] == id
        && p < st.shards.size()) {
      st.shards[p] = shards[i];
      st.scorers[p] = scorer;
    }
  }
  for (auto& peer : st.peers)
    if (peer.info.id == id)
      peer.membership = membership;
  publish_view(self);
}

// With etcd: every hosted shard's role in the installed map: a primary
// gets its epoch and its followers' shards (`followers`: by partition, in
// the map's order; null: down), a follower its epoch.
void send_roles(membership_pointer self, const partition_map& m,
                const std::vector<std::vector<caf::actor>>& followers) {
  auto& st = self->state;
  if (st.assigned_version != m.version)
    return;
  for (std::size_t i = 0; i < st.assigned_parts.size() && i < st.assigned_shards.size();
       ++i) {
    const auto p = st.assigned_parts[i];
    if (p >= m.partitions || p >= m.owner.size())
      continue;
    const bool primary = m.owner[p] == st.node_id;
    std::vector<caf::actor> handles;
    std::vector<std::uint32_t> nodes;
    if (primary && p < m.followers.size())
      for (std::size_t k = 0; k < m.followers[p].size(); ++k) {
        handles.push_back(p < followers.size() && k < followers[p].size()
                              ? followers[p][k]
                              : caf::actor{});
        nodes.push_back(m.followers[p][k]);
      }
    self->send(st.assigned_shards[i], role_atom::value, m.epoch_of(p), primary, handles,
               nodes);
  }
}

void install(membership_pointer self, const partition_map& m,
             const std::vector<caf::actor>& shards,
             const std::vector<caf::actor>& scorers_by_node) {
  auto& st = self->state;
  if (m.version < st.map.version && st.map.partitions != 0)
    return; // a late install of an older map
  st.map = m;
  st.shards.assign(m.partitions, caf::actor{});
  st.scorers.assign(m.partitions, caf::actor{});
  for (std::uint32_t p = 0; p < m.partitions && p < shards.size(); ++p)
    st.shards[p] = shards[p];
  for (std::uint32_t p = 0; p < m.partitions && p < m.owner.size(); ++p)
    for (std::size_t k = 0; k < m.nodes.size() && k < scorers_by_node.size(); ++k)
      if (m.nodes[k].id == m.owner[p])
        st.scorers[p] = scorers_by_node[k];
  publish_view(self);
  persist(self);
}

// This node hosts the partitions the map gives it: its node host spawns
// them; the reply carries their shards and this node's scorer.
caf::result<std::vector<std::uint32_t>, std::vector<caf::actor>, caf::actor>
assign(membership_pointer self, const partition_map& m) {
  auto& st = self->state;
  for (const auto& n : m.nodes)
    if (n.host == st.cfg.host && n.port == st.port)
      st.node_id = n.id;
  std::vector<std::uint32_t> mine;
  for (std::uint32_t p = 0; p < m.partitions && p < m.owner.size(); ++p)
    if (m.owner[p] == st.node_id || m.follows(p, st.node_id))
      mine.push_back(p);
  auto rp = self->make_response_promise<std::vector<std::uint32_t>,
                                        std::vector<caf::actor>, caf::actor>();
  // A map with epochs (etcd) keeps every partition elsewhere too: a
  // partition this node no longer hosts is let go even with data.
  const bool replicated = !m.epoch.empty();
  self->request(st.host, admin_timeout, assign_atom::value, m.partitions, st.node_id,
                mine, replicated)
      .then(
          [=](const std::vector<caf::actor>& shards) mutable {
            record_share(self->state, m.version, mine, shards);
            rp.deliver(mine, shards, self->state.scorer);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// First node: re-assigns partitions over the peers and installs the new map
// on every node; calls done(map frame, none) when every node hosts its
// share, or done({}, error) when a node did not take its share (nothing is
// installed then).
template <class Done> void rebalance(membership_pointer self, Done done) {
  auto& st = self->state;
  partition_map m = st.map;
  m.nodes.clear();
  for (const auto& p : st.peers)
    m.nodes.push_back(p.info);
  // Versions only grow, also over a failed rebalance.
  m.version = std::max(m.version, st.highest_version);
  assign_round_robin(m);
  st.highest_version = m.version;
  struct gathered {
    std::vector<caf::actor> shards;
    std::vector<caf::actor> scorers; // by peer
  };
  auto g = std::make_shared<gathered>();
  g->shards.resize(m.partitions);
  g->scorers.resize(st.peers.size());
  auto mf = encode(m);
  std::vector<caf::actor> members;
  std::vector<std::uint32_t> ids;
  for (const auto& p : st.peers) {
    members.push_back(p.membership);
    ids.push_back(p.info.id);
  }
  gather_all<std::vector<std::uint32_t>, std::vector<caf::actor>, caf::actor>(
      self, to_each(members, caf::make_message(assign_atom::value, mf)), admin_timeout,
      [g](std::size_t k, std::vector<std::uint32_t>& parts, std::vector<caf::actor>& hs,
          caf::actor& scorer) {
        for (std::size_t i = 0; i < parts.size() && i < hs.size(); ++i)
          if (parts[i] < g->shards.size())
            g->shards[parts[i]] = hs[i];
        g->scorers[k] = scorer;
      },
      [self, g, mf, members, ids, done](std::size_t k, caf::error& err) mutable {
        if (err)
          return done(frame{}, error_of(core::errc::io_error,
                                        "node " + std::to_string(ids[k])
                                            + " did not take its partitions: "
                                            + self->system().render(err)));
        for (const auto& m : members)
          self->send(m, install_atom::value, mf, g->shards, g->scorers);
        done(mf, caf::error{});
      });
}

// First node: refuses a join while any partition holds data (a join moves
// no data yet; the reassigned partitions would be lost), else admits it.
// One join at a time; a join whose rebalance fails is undone (the other
// nodes take back their previous shares) and refused.
void admit(membership_pointer self, node_info info, caf::actor peer_membership,
           caf::typed_response_promise<frame> rp) {
  self->state.joining = true;
  auto refuse = [self, rp](caf::error err) mutable {
    self->state.joining = false;
    rp.deliver(std::move(err));
  };
  struct held {
    std::uint64_t events = 0, items = 0;
  };
  auto h = std::make_shared<held>();
  gather_all<frame>(
      self, to_each(self->state.shards, caf::make_message(stats_atom::value)),
      admin_timeout,
      [h](std::size_t, frame& f) {
        if (auto ps = decode_partition_status(f)) {
          h->events += ps->user_events;
          h->items += ps->items;
        }
      },
      [=](std::size_t p, caf::error& err) mutable {
        auto& st = self->state;
        if (err)
          return refuse(error_of(core::errc::io_error,
                                 "cannot tell whether the cluster holds data: partition "
                                     + std::to_string(p) + " did not answer ("
                                     + self->system().render(err) + ")"));
        if (h->events > 0 || h->items > 0)
          return refuse(error_of(
              core::errc::invalid_argument,
              "the cluster holds data (" + std::to_string(h->events) + " events, "
                  + std::to_string(h->items)
                  + " items) and a join would lose the partitions it moves: this "
                    "release moves no data between nodes. Start every node before "
                    "loading, or start a new cluster with the nodes you need and load "
                    "the data again"));
        std::uint32_t next = 0;
        for (const auto& q : st.peers)
          next = std::max(next, q.info.id + 1);
        info.id = next;
        st.peers.push_back({info, peer_membership});
        rebalance(self, [self, rp, refuse](frame mf, caf::error err) mutable {
          if (!err) {
            self->state.joining = false;
            return (void)rp.deliver(std::move(mf));
          }
          // Undo: the previous nodes take back their shares.
          self->state.peers.pop_back();
          rebalance(self, [refuse, err](frame, caf::error) mutable { refuse(err); });
        });
      });
}

// A node restarted with its data folder: the map and identity it had; it
// hosts its partitions again (recovered from disk) and installs the map with
// its own shards; the other nodes' handles come with their hellos.
caf::result<ok_atom> restart(membership_pointer self) {
  auto& st = self->state;
  const auto m = st.cfg.restored->map;
  st.node_id = st.cfg.restored->node_id;
  bool found = false;
  for (const auto& n : m.nodes)
    if (n.id == st.node_id) {
      found = true;
      if (n.port != st.port)
        return error_of(core::errc::invalid_argument,
                        "this node was node " + std::to_string(n.id) + " at " + n.host
                            + ":" + std::to_string(n.port) + "; restart it on port "
                            + std::to_string(n.port));
    }
  if (!found || m.partitions == 0 || m.owner.size() != m.partitions)
    return error_of(core::errc::invalid_argument, "node.state does not list node "
                                                      + std::to_string(st.node_id)
                                                      + " in a valid map");
  for (const auto& n : m.nodes)
    st.peers.push_back(
        {n, n.id == st.node_id ? caf::actor_cast<caf::actor>(self) : caf::actor{}});
  st.highest_version = m.version;
  std::vector<std::uint32_t> mine;
  for (std::uint32_t p = 0; p < m.partitions; ++p)
    if (m.owner[p] == st.node_id || m.follows(p, st.node_id))
      mine.push_back(p);
  auto rp = self->make_response_promise<ok_atom>();
  self->request(st.host, caf::infinite, assign_atom::value, m.partitions, st.node_id,
                mine)
      .then(
          [=](const std::vector<caf::actor>& hosted) mutable {
            std::vector<caf::actor> shards(m.partitions);
            for (std::size_t i = 0; i < mine.size() && i < hosted.size(); ++i)
              if (m.owner[mine[i]] == self->state.node_id)
                shards[mine[i]] = hosted[i];
            record_share(self->state, m.version, mine, hosted);
            std::vector<caf::actor> scorers(m.nodes.size());
            for (std::size_t k = 0; k < m.nodes.size(); ++k)
              if (m.nodes[k].id == self->state.node_id)
                scorers[k] = self->state.scorer;
            install(self, m, shards, scorers);
            rp.deliver(ok_atom::value);
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

caf::behavior membership(membership_pointer self) {
  return {
      [=](start_atom, std::uint16_t port) -> caf::result<ok_atom> {
        auto& st = self->state;
        if (st.started)
          return error_of(core::errc::invalid_argument, "this node has started already");
        st.started = true;
        st.port = port;
        if (st.cfg.restored)
          return restart(self);
        if (!st.cfg.first)
          return ok_atom::value;
        node_info me{0, st.cfg.host, port, {}, false};
        st.peers = {{me, caf::actor_cast<caf::actor>(self)}};
        partition_map m;
        m.partitions = st.cfg.partitions;
        m.nodes.push_back(me);
        assign_round_robin(m);
        auto rp = self->make_response_promise<ok_atom>();
        std::vector<std::uint32_t> all(m.partitions);
        for (std::uint32_t p = 0; p < m.partitions; ++p)
          all[p] = p;
        self->request(st.host, admin_timeout, assign_atom::value, m.partitions,
                      std::uint32_t{0}, all)
            .then(
                [=](const std::vector<caf::actor>& shards) mutable {
                  record_share(self->state, m.version, all, shards);
                  install(self, m, shards, {self->state.scorer});
                  rp.deliver(ok_atom::value);
                },
                [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](join_atom, const frame& f, const caf::actor& peer) -> caf::result<frame> {
        auto& st = self->state;
        if (!st.cfg.first)
          return error_of(core::errc::invalid_argument,
                          "this node is not the cluster's first node; join that one");
        if (!st.started || st.map.partitions == 0)
          return error_of(core::errc::invalid_argument,
                          "the first node is still starting; retry in a moment");
        if (st.joining)
          return error_of(core::errc::invalid_argument,
                          "another node is joining; retry in a moment");
        auto m = decode_partition_map(f);
        if (!m)
          return to_caf_error(m.err());
        if (m->nodes.size() != 1 || !peer)
          return error_of(core::errc::bad_message, "join: expected exactly one node");
        auto rp = self->make_response_promise<frame>();
        admit(self, m->nodes.front(), peer, rp);
        return rp;
      },
      [=](assign_atom,
          const frame& f) -> caf::result<std::vector<std::uint32_t>,
                                         std::vector<caf::actor>, caf::actor> {
        auto m = decode_partition_map(f);
        if (!m)
          return to_caf_error(m.err());
        return assign(self, *m);
      },
      [=](hello_atom) {
        auto& st = self->state;
        auto [parts, shards] = own_shards(st);
        return caf::make_message(st.node_id, parts, shards, st.scorer,
                                 caf::actor_cast<caf::actor>(self));
      },
      [=](hello_atom, std::uint32_t id, const std::vector<std::uint32_t>& parts,
          const std::vector<caf::actor>& shards, const caf::actor& scorer,
          const caf::actor& membership) {
        greeted(self, id, parts, shards, scorer, membership);
        auto& st = self->state;
        auto [mine, handles] = own_shards(st);
        return caf::make_message(st.node_id, mine, handles, st.scorer,
                                 caf::actor_cast<caf::actor>(self));
      },
      [=](export_atom, std::uint32_t p) {
        return self->delegate(self->state.host, export_atom::value, p);
      },
      [=](export_atom, std::uint32_t p, bool) {
        // From this node's etcd member only (anon_send: no sender).
        if (!self->current_sender())
          self->send(self->state.host, export_atom::value, p, false);
      },
      [=](fetch_atom, std::uint32_t p, const std::string& file, std::uint64_t offset) {
        return self->delegate(self->state.host, fetch_atom::value, p, file, offset);
      },
      [=](hello_atom, std::uint64_t) {
        auto& st = self->state;
        return caf::make_message(st.node_id, st.assigned_version, st.assigned_parts,
                                 st.assigned_shards, st.scorer);
      },
      [=](install_atom, const frame& f, const std::vector<caf::actor>& shards,
          const std::vector<caf::actor>& scorers) {
        if (auto m = decode_partition_map(f))
          install(self, *m, shards, scorers);
      },
      [=](install_atom, const frame& f, const std::vector<caf::actor>& shards,
          const std::vector<caf::actor>& scorers,
          const std::vector<caf::actor>& followers) {
        // From this node's etcd member: with the followers' shards, by
        // partition in the map's order, flattened.
        auto m = decode_partition_map(f);
        if (!m || self->current_sender())
          return;
        if (m->version < self->state.map.version)
          return;
        install(self, *m, shards, scorers);
        std::vector<std::vector<caf::actor>> by_partition(m->partitions);
        std::size_t k = 0;
        for (std::uint32_t p = 0; p < m->partitions && p < m->followers.size(); ++p)
          for (std::size_t i = 0; i < m->followers[p].size() && k < followers.size(); ++i)
            by_partition[p].push_back(followers[k++]);
        send_roles(self, *m, by_partition);
        // The coordinator's stand-ins: per partition its first follower
        // with a handle, and that node's scorer.
        std::vector<caf::actor> stand_in(m->partitions), stand_in_scorer(m->partitions);
        for (std::uint32_t p = 0; p < m->partitions && p < m->followers.size(); ++p)
          for (std::size_t i = 0; i < by_partition[p].size(); ++i) {
            if (!by_partition[p][i])
              continue;
            stand_in[p] = by_partition[p][i];
            for (std::size_t n = 0; n < m->nodes.size() && n < scorers.size(); ++n)
              if (m->nodes[n].id == m->followers[p][i])
                stand_in_scorer[p] = scorers[n];
            break;
          }
        self->send(self->state.coordinator, role_atom::value, stand_in, stand_in_scorer);
      },
      [=](lagging_atom, std::uint32_t p, std::uint32_t node, std::uint64_t epoch) {
        // A hosted primary's follower that cannot catch up from its tail.
        auto& l = self->state.lagging;
        if (l.size() < 3 * 4096)
          l.insert(l.end(), {std::uint64_t{p}, std::uint64_t{node}, epoch});
      },
      [=](lagging_atom) {
        auto out = std::move(self->state.lagging);
        self->state.lagging.clear();
        return out;
      },
  };
}

} // namespace

caf::actor spawn_membership(caf::actor_system& sys, const node_config& cfg,
                            caf::actor host, caf::actor scorer, caf::actor coordinator) {
  return sys.spawn([=](membership_pointer self) {
    self->state.cfg = cfg;
    self->state.host = host;
    self->state.scorer = scorer;
    self->state.coordinator = coordinator;
    return membership(self);
  });
}

} // namespace shardrec::actors
